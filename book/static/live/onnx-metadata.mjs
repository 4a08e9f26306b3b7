// Read what a deployed model carries besides its graph: the IR version, the opsets and the
// metadata_props that course_utils.export.export_onnx writes (model, weights, preprocessing,
// labels; see course_utils/metadata.py). Taught in notebooks/10_in_the_browser.ipynb.
//
// onnxruntime-web does not expose metadata_props (Python's
// session.get_modelmeta().custom_metadata_map), so the page reads them from the bytes it is about
// to hand to the session. An .onnx file is a protocol-buffer ModelProto; its top-level fields are
// read here; the graph (field 7), the bulk of the file, is skipped without being parsed.

const FIELD_IR_VERSION = 1;
const FIELD_OPSET_IMPORT = 8;
const FIELD_METADATA_PROPS = 14;
const PREFIX = 'course.';
const KEYS = ['model', 'weights', 'weights_standin', 'preprocess', 'labels', 'labels_source'];

/** Iterate over the fields of one protocol-buffer message: {field, wireType, value}. */
function* fields(bytes, start = 0, end = bytes.length) {
  let position = start;
  const varint = () => {
    let value = 0;
    let factor = 1;
    for (;;) {
      if (position >= end) {
        throw new Error('the file ends in the middle of a field: it is not a complete ONNX model');
      }
      const byte = bytes[position++];
      value += (byte & 0x7f) * factor;
      if (byte < 0x80) return value;
      factor *= 128;
    }
  };
  while (position < end) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (wireType === 0) {
      yield { field, wireType, value: varint() };
    } else if (wireType === 2) {
      const length = varint();
      if (position + length > end) {
        throw new Error('a field runs past the end of the file: it is not a complete ONNX model');
      }
      yield { field, wireType, value: [position, position + length] };
      position += length;
    } else if (wireType === 1 || wireType === 5) {
      position += wireType === 1 ? 8 : 4;
    } else {
      throw new Error(`unexpected protocol-buffer wire type ${wireType}: this is not an ONNX model`);
    }
  }
}

/** Return {irVersion, opsets: {domain: version}, metadata: {key: value}} of an .onnx file's bytes. */
export function readModelInfo(bytes) {
  const text = new TextDecoder('utf-8');
  const string = ([from, to]) => text.decode(bytes.subarray(from, to));
  const info = { irVersion: 0, opsets: {}, metadata: {} };
  for (const { field, value } of fields(bytes)) {
    if (field === FIELD_IR_VERSION) {
      info.irVersion = value;
    } else if (field === FIELD_OPSET_IMPORT || field === FIELD_METADATA_PROPS) {
      const pair = ['', 0];  // (domain, version) of an opset, (key, value) of a metadata entry
      for (const inner of fields(bytes, value[0], value[1])) {
        if (inner.field === 1) pair[0] = string(inner.value);
        if (inner.field === 2) pair[1] = inner.wireType === 2 ? string(inner.value) : inner.value;
      }
      if (field === FIELD_OPSET_IMPORT) info.opsets[pair[0] || 'ai.onnx'] = pair[1];
      else info.metadata[pair[0]] = pair[1];
    }
  }
  return info;
}

/**
 * The deployment metadata of a classifier, as course_utils.metadata.parse_metadata returns it:
 * {model, weights, isStandin, preprocess, labels: [[english, chinese], ...], labelsSource}.
 */
export function parseDeployment(metadata, source = 'the model') {
  const missing = KEYS.map((key) => PREFIX + key).filter((key) => !(key in metadata));
  if (missing.length) {
    throw new Error(`${source} lacks the deployment metadata ${JSON.stringify(missing)}: export it with ` +
      'course_utils.export.export_onnx(loaded_model, ...), which writes it.');
  }
  return {
    model: metadata[`${PREFIX}model`],
    weights: metadata[`${PREFIX}weights`],
    isStandin: JSON.parse(metadata[`${PREFIX}weights_standin`]),
    preprocess: JSON.parse(metadata[`${PREFIX}preprocess`]),
    labels: JSON.parse(metadata[`${PREFIX}labels`]),
    labelsSource: metadata[`${PREFIX}labels_source`],
  };
}
