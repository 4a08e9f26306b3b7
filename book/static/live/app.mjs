// The live classifier page of the course website: pick a photo (file input, drag-and-drop or a
// sample) and see its top-5 classes, computed in this browser with onnxruntime-web.
//
// The page is an element <div id="course-live" data-config="URL of live-config.json"> and this
// module. The configuration lists the models and the sample images; everything else (the
// preprocessing constants, the labels, the weights' description) is read from each model file.
//
// For scripts and tests the page defines one function:
//
//   await window.courseClassify(source, {model})
//
// `source` is an image URL, a File or a Blob; `model` (optional) names a model of the
// configuration, by default the one selected on the page. It resolves to
//   {model, weights, isStandin, provider, providerNote, threads, ms, preprocessMs, loadMs,
//    downloadMs, startsRuntime, width, height, fileName, logits,
//    top5: [{id, english, chinese, probability}]}
// where `ms` is the duration of session.run alone, and rejects with an Error whose message the
// page also shows when the image cannot be used. After each call, successful or not, the page
// increments the element's data-finished attribute (scripts that drive the page's own controls
// wait for it).
//
// Query parameters: ?model=NAME, ?threads=N (used only on a cross-origin isolated page),
// ?provider=auto|wasm|webgpu, ?autorun=0 (do not classify the first sample on opening).

import {
  chooseProvider, createClassifier, loadOrt, runClassifier, softmax, threadPlan, topK,
} from './classifier.mjs';
import { decodeRgba, preprocess, toRgb } from './preprocess.mjs';

const root = document.getElementById('course-live');
const params = new URLSearchParams(location.search);
const configUrl = new URL(root.dataset.config, document.baseURI);
const config = await (await fetch(configUrl)).json();
const resolve = (path) => new URL(path, configUrl).href;
const plan = threadPlan(Number(params.get('threads')) || 0);
const providerReady = chooseProvider(params.get('provider') || 'auto');
const builds = Object.fromEntries(Object.entries(config.ort).map(([name, url]) => [name, resolve(url)]));
const ortReady = providerReady.then(({ provider }) => loadOrt(builds, provider, plan.threads));
const classifiers = new Map();  // model name -> Promise of its classifier: one session per model
let queue = Promise.resolve();  // one image at a time
let lastSource = null;  // classified again when another model is chosen

/** Create an element with attributes and children. */
function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'class') node.className = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

const ui = {
  model: element('select', { id: 'course-live-model' }),
  file: element('input', { type: 'file', accept: 'image/*', id: 'course-live-file' }),
  drop: element('div', { class: 'live-drop', tabindex: '0', role: 'button' }, 'Drop a photo here, or click'),
  samples: element('div', { class: 'live-samples' }),
  status: element('p', { class: 'live-status', role: 'status' }, 'Loading onnxruntime-web…'),
  error: element('p', { class: 'live-error', role: 'alert', hidden: '' }),
  result: element('div', { class: 'live-result', hidden: '' }),
};
for (const model of config.models) {
  ui.model.append(element('option', { value: model.name }, `${model.title} (${model.megabytes} MB)`));
}
const requested = config.models.find((m) => m.name === params.get('model'));
ui.model.value = (requested ?? config.models[0]).name;
for (const sample of config.samples) {
  const button = element('button', { type: 'button', title: sample.name },
    element('img', { src: resolve(sample.url), alt: sample.name, loading: 'lazy' }));
  button.addEventListener('click', () => classifyFromPage(resolve(sample.url)));
  ui.samples.append(button);
}
root.replaceChildren(
  element('div', { class: 'live-controls' },
    element('label', {}, 'Model ', ui.model),
    element('label', { class: 'live-file' }, 'Choose a photo ', ui.file)),
  ui.drop,
  element('p', { class: 'live-hint' }, 'or try a sample image:'),
  ui.samples, ui.status, ui.error, ui.result);

/** The classifier of a model, created on first use and then reused. */
function classifierFor(name) {
  if (!classifiers.has(name)) {
    const model = config.models.find((m) => m.name === name);
    if (!model) {
      throw new Error(`No model ${name} on this page; choose one of ${config.models.map((m) => m.name)}.`);
    }
    classifiers.set(name, (async () => {
      const [ort, { provider, note }] = await Promise.all([ortReady, providerReady]);
      return createClassifier(ort, resolve(model.url), provider, note);
    })());
    classifiers.get(name).catch(() => classifiers.delete(name));  // a failed load may be retried
  }
  return classifiers.get(name);
}

/** Turn an image URL, File or Blob into a Blob and the name messages use. */
async function asBlob(source) {
  if (source instanceof Blob) return [source, source.name || 'the image'];
  const url = new URL(String(source), document.baseURI);
  const name = decodeURIComponent(url.pathname.split('/').pop() || url.href);
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`Cannot read image ${name}: HTTP ${response.status}. Check the URL.`);
  }
  return [await response.blob(), name];
}

/** Decode, preprocess, run, and describe the result (see the comment at the top). */
async function classify(source, options = {}) {
  const name = options.model || ui.model.value;
  const [ort, classifier, [blob, fileName]] = await Promise.all([
    ortReady, classifierFor(name), asBlob(source)]);
  const spec = classifier.deployment.preprocess;
  const started = performance.now();
  const rgb = toRgb(await decodeRgba(blob, fileName), spec.background);
  let cropped, tensor;
  try {
    ({ cropped, tensor } = preprocess(rgb, spec));
  } catch (error) {  // decoded, but its shape is too extreme to resize safely
    throw new Error(`Cannot preprocess image ${fileName}: ${error.message}`);
  }
  const preprocessMs = performance.now() - started;
  const { logits, ms } = await runClassifier(ort, classifier, tensor);
  const probabilities = softmax(logits);
  const { labels } = classifier.deployment;
  return {
    model: classifier.deployment.model,
    weights: classifier.deployment.weights,
    isStandin: classifier.deployment.isStandin,
    provider: classifier.provider,
    providerNote: classifier.providerNote,
    threads: plan.threads,
    ms, preprocessMs, loadMs: classifier.loadMs, downloadMs: classifier.downloadMs,
    startsRuntime: classifier.startsRuntime,
    width: rgb.width, height: rgb.height, fileName, cropped,
    logits: Array.from(logits),
    top5: topK(probabilities, 5).map((id) => ({
      id, english: labels[id][0], chinese: labels[id][1], probability: probabilities[id],
    })),
  };
}

/** A bar as wide as a probability (of the cell's width). */
function bar(probability) {
  return element('span', { class: 'live-bar', style: `width: ${(100 * probability).toFixed(1)}%` });
}

/** Show a result: the image as the model saw it, beside its top-5 and how it was computed. */
function show(result) {
  const { width, height, data } = result.cropped;
  const canvas = element('canvas', { width, height });
  const pixels = new ImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    pixels.data.set(data.subarray(i * 3, i * 3 + 3), i * 4);
    pixels.data[i * 4 + 3] = 255;
  }
  canvas.getContext('2d').putImageData(pixels, 0, 0);
  const rows = result.top5.map(({ id, english, chinese, probability }, rank) => element('tr', {},
    element('td', {}, String(rank + 1)),
    element('td', {}, english),
    element('td', { lang: 'zh' }, chinese),
    element('td', { class: 'live-number' }, probability.toFixed(4)),
    element('td', {}, bar(probability)),
    element('td', { class: 'live-number live-id' }, String(id))));
  const fact = (term, value) => [element('dt', {}, term), element('dd', {}, value)];
  const headings = ['#', 'English', '中文', 'probability', '', 'class id'];
  ui.result.replaceChildren(
    element('figure', {}, canvas, element('figcaption', {},
      `${result.fileName} (${result.width}×${result.height}) as the model sees it: ` +
      `the centre ${width}×${height} after resizing`)),
    element('div', {},
      element('p', { class: `live-weights${result.isStandin ? ' live-standin' : ''}` }, result.weights),
      element('table', { class: 'live-top5' },
        element('thead', {}, element('tr', {}, ...headings.map((text) => element('th', {}, text)))),
        element('tbody', {}, ...rows)),
      element('dl', { class: 'live-facts' },
        ...fact('model', result.model),
        ...fact('execution provider', `${result.providerNote}, ${plan.note}`),
        ...fact('latency', `${result.ms.toFixed(1)} ms for session.run, ` +
          `${result.preprocessMs.toFixed(1)} ms to decode and preprocess`),
        ...fact('model load', `${result.loadMs.toFixed(0)} ms once per model ` +
          `(${result.downloadMs.toFixed(0)} ms of it to download` +
          `${result.startsRuntime ? '; it includes starting onnxruntime-web' : ''})`))));
  ui.result.hidden = false;
}

/** Classify from the page's controls or from a script; the page shows the result or the error. */
function courseClassify(source, options = {}) {
  const task = queue.then(async () => {
    ui.error.hidden = true;
    ui.status.textContent = `Classifying with ${options.model || ui.model.value}…`;
    try {
      const result = await classify(source, options);
      show(result);
      lastSource = source;
      return result;
    } catch (error) {
      ui.error.textContent = error.message;
      ui.error.hidden = false;
      throw error;
    } finally {
      const ort = await ortReady;
      const { note } = await providerReady;
      ui.status.textContent = `onnxruntime-web ${ort.env.versions.web} · ${note} · ${plan.note}`;
      root.dataset.finished = Number(root.dataset.finished || 0) + 1;  // scripts wait for it
    }
  });
  queue = task.catch(() => {});
  return task.then(({ cropped, ...result }) => result);  // the cropped pixels stay on the page
}

function classifyFromPage(source) {
  courseClassify(source).catch(() => {});  // the page shows the error
}

ui.drop.addEventListener('click', () => ui.file.click());
ui.drop.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' || event.key === ' ') ui.file.click();
});
ui.file.addEventListener('change', () => {
  if (ui.file.files.length) classifyFromPage(ui.file.files[0]);
  ui.file.value = '';
});
ui.model.addEventListener('change', () => {
  if (lastSource) classifyFromPage(lastSource);
});
for (const target of [ui.drop, root]) {
  target.addEventListener('dragover', (event) => {
    event.preventDefault();
    ui.drop.classList.add('live-over');
  });
  target.addEventListener('dragleave', () => ui.drop.classList.remove('live-over'));
  target.addEventListener('drop', (event) => {
    event.preventDefault();
    ui.drop.classList.remove('live-over');
    const file = event.dataTransfer.files[0];
    if (file) classifyFromPage(file);
  });
}
window.courseClassify = courseClassify;
if (params.get('autorun') !== '0' && config.samples.length) {
  classifyFromPage(resolve(config.samples[0].url));
}
