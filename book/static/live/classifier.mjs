// One onnxruntime-web session per model, created once and reused for every image.
// Taught in notebooks/10_in_the_browser.ipynb.

import { parseDeployment, readModelInfo } from './onnx-metadata.mjs';

/**
 * How many threads the WebAssembly provider may use on this page, and why.
 *
 * Threads share memory (SharedArrayBuffer), which a browser allows only on a cross-origin
 * isolated page: one served with Cross-Origin-Opener-Policy: same-origin and
 * Cross-Origin-Embedder-Policy: require-corp. Elsewhere there is one thread.
 */
export function threadPlan(requested = 0) {
  if (!self.crossOriginIsolated) {
    return {
      threads: 1,
      isolated: false,
      note: '1 thread: this page is not cross-origin isolated (its server sends no COOP/COEP ' +
        'headers), so the browser allows no shared memory between threads',
    };
  }
  const threads = requested > 0 ? requested : Math.min(4, navigator.hardwareConcurrency || 1);
  const note = `${threads} thread${threads === 1 ? '' : 's'} (cross-origin isolated)`;
  return { threads, isolated: true, note };
}

/**
 * Import onnxruntime-web from the site's own copy and set its threads before any session starts.
 * `urls` names a build per provider: the page loads the one for `provider`, once.
 */
let ortModule;
export function loadOrt(urls, provider, threads) {
  ortModule ??= import(urls[provider]).then((ort) => {
    ort.env.wasm.numThreads = threads;
    ort.env.logLevel = 'error';
    return ort;
  });
  return ortModule;
}

/**
 * Which execution provider to ask for: 'webgpu' where the browser offers a WebGPU adapter
 * (and 'auto' or 'webgpu' was requested), else 'wasm' (WebAssembly on the CPU). Returns the
 * provider and a note that says why. The page then loads the onnxruntime-web build for it:
 * the WebGPU build's runtime is larger, and slower on the CPU, than the WebAssembly-only one.
 */
export async function chooseProvider(requested = 'auto') {
  if (requested === 'wasm') {
    return { provider: 'wasm', note: 'wasm (as requested)' };
  }
  if (!('gpu' in navigator)) {
    return { provider: 'wasm', note: 'wasm (this browser has no WebGPU)' };
  }
  const adapter = await navigator.gpu.requestAdapter().catch(() => null);
  if (!adapter) {
    const note = 'wasm (WebGPU offers no adapter here: no GPU, or the GPU is disabled)';
    return { provider: 'wasm', note };
  }
  return { provider: 'webgpu', note: 'webgpu' };
}

/**
 * Download a model, read its deployment metadata and create its session.
 *
 * The bytes are fetched here (not by onnxruntime-web) so that the metadata can be read from
 * them; the session is created from the same bytes. If WebGPU was chosen but cannot run this
 * model, the session falls back to wasm, and `providerNote` says so. `loadMs` covers the
 * download and the session's creation; for the page's first session it also covers starting
 * onnxruntime-web (fetching and compiling its WebAssembly file), and `startsRuntime` says so.
 */
let sessionsCreated = 0;
export async function createClassifier(ort, url, provider, providerNote = provider) {
  const startsRuntime = sessionsCreated++ === 0;  // the first session also starts onnxruntime-web
  const started = performance.now();
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`Cannot load the model ${url}: HTTP ${response.status}.`);
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  const downloadMs = performance.now() - started;
  const info = readModelInfo(bytes);
  const deployment = parseDeployment(info.metadata, url);
  const options = (name) => ({ executionProviders: [name], graphOptimizationLevel: 'all' });
  let session;
  let note = providerNote;
  try {
    session = await ort.InferenceSession.create(bytes, options(provider));
  } catch (error) {
    if (provider === 'wasm') throw error;
    note = `wasm (webgpu failed for this model: ${error.message})`;
    provider = 'wasm';
    session = await ort.InferenceSession.create(bytes, options('wasm'));
  }
  const loadMs = performance.now() - started;
  return {
    url, bytes: bytes.length, info, deployment, session, provider, providerNote: note,
    downloadMs, loadMs, startsRuntime,
  };
}

/** Run one preprocessed image (a Float32Array, C x H x W) through the session; time only session.run. */
export async function runClassifier(ort, classifier, chw) {
  const crop = classifier.deployment.preprocess.center_crop;
  const input = new ort.Tensor('float32', chw, [1, 3, crop, crop]);
  const { session } = classifier;
  const started = performance.now();
  const outputs = await session.run({ [session.inputNames[0]]: input });
  const ms = performance.now() - started;
  const logits = Float32Array.from(outputs[session.outputNames[0]].data);
  for (const output of Object.values(outputs)) output.dispose();
  return { logits, ms };
}

/** Probabilities from logits (the largest logit is subtracted first, so exp cannot overflow). */
export function softmax(logits) {
  const largest = Math.max(...logits);
  const exps = Array.from(logits, (value) => Math.exp(value - largest));
  const total = exps.reduce((sum, value) => sum + value, 0);
  return exps.map((value) => value / total);
}

/** The k largest entries' indices, largest first; ties keep the lower index first, as in Python. */
export function topK(values, k = 5) {
  return Array.from(values.keys())
    .sort((a, b) => values[b] - values[a] || a - b)
    .slice(0, k);
}
