"""Tests of course_utils.browser and of the live page's JavaScript modules (book/static/live/).

The JavaScript that needs no browser (everything but decoding) runs in Node.js, where it is
compared with Pillow and with course_utils.preprocess; those tests skip where ``node`` is missing.
The page in a real browser is checked by notebook 10 and by tests/test_live_page.py.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image

from course_utils import browser
from hostile_folder import build as build_hostile_folder
from course_utils.metadata import PREFIX, preprocessing_spec
from course_utils.preprocess import (MAX_PIXELS, center_crop, center_crop_box, resize_short_side,
                                     resized_short_side_size, to_normalized_chw)

LIVE = browser.LIVE_SOURCE
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")

# Runs named exports of a module on JSON arguments: {"b64": ...} becomes a Uint8Array, and with
# "width" and "height" an image {width, height, data}; typed arrays come back as base64.
RUNNER = """
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const module = await import(pathToFileURL(process.argv[1]));
const decode = (v) => {
  if (v === null || typeof v !== 'object' || v.b64 === undefined) return v;
  const data = new Uint8Array(Buffer.from(v.b64, 'base64'));
  return v.width === undefined ? data : { width: v.width, height: v.height, data };
};
const encode = (v) => {
  if (ArrayBuffer.isView(v)) {
    const bytes = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    return { b64: bytes.toString('base64'), type: v.constructor.name };
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, encode(x)]));
};
const calls = JSON.parse(readFileSync(0, 'utf8'));
const results = calls.map(([name, args]) => {
  try {
    return { value: encode(module[name](...args.map(decode))) };
  } catch (error) {
    return { error: error.message };
  }
});
process.stdout.write(JSON.stringify(results));
"""


def run_js(module: str, calls: list[tuple[str, list]]) -> list:
    """Call exported functions of ``book/static/live/<module>`` in Node.js; return their results."""
    completed = subprocess.run([NODE, "--input-type=module", "-e", RUNNER, str(LIVE / module)],
                               input=json.dumps(calls), capture_output=True, text=True, timeout=120,
                               check=True)
    return [_decode(result) for result in json.loads(completed.stdout)]


def _decode(result: dict) -> object:
    if "error" in result:
        return RuntimeError(result["error"])
    value = result["value"]

    def typed(v: object) -> object:
        if isinstance(v, dict) and "b64" in v:
            dtype = {"Float32Array": np.float32, "Int32Array": np.int32}.get(v["type"], np.uint8)
            return np.frombuffer(base64.b64decode(v["b64"]), dtype=dtype)
        if isinstance(v, dict):
            return {k: typed(x) for k, x in v.items()}
        return v

    return typed(value)


def image_arg(array: np.ndarray) -> dict:
    """An (H, W, C) uint8 array as the runner's image argument."""
    data = base64.b64encode(array.tobytes()).decode()
    return {"width": array.shape[1], "height": array.shape[0], "b64": data}


def as_image(result: dict, channels: int = 3) -> np.ndarray:
    return result["data"].reshape(result["height"], result["width"], channels)


# ---- the JavaScript preprocessing against Pillow and course_utils.preprocess ----

@needs_node
def test_js_limits_and_sizes_match_python() -> None:
    sizes = [(451, 300), (300, 451), (256, 256), (100, 80), (17, 900), (4000, 3000), (1000, 999)]
    boxes = sizes + [(341, 256), (256, 343), (200, 100)]  # half-pixel offsets, and padding
    results = run_js("preprocess.mjs", [("resizedShortSideSize", [w, h, 256]) for w, h in sizes]
                     + [("centerCropBox", [w, h, 224]) for w, h in boxes])
    assert results[:len(sizes)] == [list(resized_short_side_size(w, h, 256)) for w, h in sizes]
    assert results[len(sizes):] == [list(center_crop_box(w, h, 224)) for w, h in boxes]
    source = (LIVE / "preprocess.mjs").read_text()
    assert f"export const MAX_PIXELS = {MAX_PIXELS:_};" in source


@needs_node
@pytest.mark.parametrize("size", [(451, 300), (512, 600), (300, 3000), (3000, 300), (257, 256),
                                  (256, 256), (100, 80), (17, 900), (255, 1021)])
def test_js_resize_is_pillows_bilinear_bit_for_bit(size: tuple[int, int]) -> None:
    """Shrinking, enlarging, and both pass orders (a tall image is resized vertically first)."""
    rng = np.random.default_rng(sum(size))
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    [resized] = run_js("preprocess.mjs", [("resizeShortSide", [image_arg(pixels), 256])])
    expected = np.asarray(resize_short_side(Image.fromarray(pixels, "RGB"), 256))
    np.testing.assert_array_equal(as_image(resized), expected)


@needs_node
def test_js_composite_is_pillows_alpha_composite_for_every_alpha() -> None:
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (256, 64, 4), dtype=np.uint8)
    rgba[:, :, 3] = np.arange(256, dtype=np.uint8)[:, np.newaxis]  # every alpha, 64 colours each
    [rgb] = run_js("preprocess.mjs", [("toRgb", [image_arg(rgba)])])
    white = Image.new("RGBA", (64, 256), (255, 255, 255, 255))
    expected = np.asarray(Image.alpha_composite(white, Image.fromarray(rgba, "RGBA")).convert("RGB"))
    np.testing.assert_array_equal(as_image(rgb), expected)


@needs_node
@pytest.mark.parametrize("size", [(384, 256), (256, 300), (200, 150)])
def test_js_crop_and_tensor_match_python(size: tuple[int, int]) -> None:
    """Crops with a half-pixel offset and with padding (smaller than the crop), then float32 values."""
    pixels = np.random.default_rng(1).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    spec = preprocessing_spec()
    [cropped, tensor] = run_js("preprocess.mjs", [
        ("centerCrop", [image_arg(pixels), 224]),
        ("toNormalizedChw", [image_arg(np.asarray(center_crop(Image.fromarray(pixels), 224))),
                             spec["mean"], spec["std"], spec["scale"]]),
    ])
    expected = center_crop(Image.fromarray(pixels), 224)
    np.testing.assert_array_equal(as_image(cropped), np.asarray(expected))
    np.testing.assert_array_equal(tensor.reshape(3, 224, 224), to_normalized_chw(expected))


def encoded(image: Image.Image, format: str, **options: object) -> dict:  # noqa: A002
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return {"b64": base64.b64encode(buffer.getvalue()).decode()}


@needs_node
def test_js_reads_the_size_from_the_header_of_each_format(tmp_path: Path) -> None:
    """The size check that runs before decoding (a decompression bomb is refused unread)."""
    photo = Image.new("RGB", (301, 123), (200, 100, 50))
    exif = Image.Exif()
    exif[0x010E] = "x" * 5000  # a large APP1 segment before the frame header
    files = {
        "png": encoded(photo, "PNG"), "jpeg": encoded(photo, "JPEG", exif=exif),
        "progressive jpeg": encoded(photo, "JPEG", progressive=True), "gif": encoded(photo, "GIF"),
        "bmp": encoded(photo, "BMP"), "webp lossy": encoded(photo, "WEBP"),
        "webp lossless": encoded(photo, "WEBP", lossless=True),
        "webp with alpha": encoded(photo.convert("RGBA"), "WEBP", exif=exif),
    }
    results = run_js("preprocess.mjs", [("imageSize", [data]) for data in files.values()])
    assert dict(zip(files, results)) == dict.fromkeys(files, [301, 123])
    hostile = build_hostile_folder(tmp_path / "hostile")
    bomb, notes = ({"b64": base64.b64encode((hostile / name).read_bytes()).decode()}
                   for name in ("bomb.png", "notes.jpg"))
    assert run_js("preprocess.mjs", [("imageSize", [bomb]), ("imageSize", [notes])]) == [
        [60_000, 60_000], None]


# ---- reading metadata_props in JavaScript ----

def tiny_model_bytes(props: dict[str, str]) -> bytes:
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    opsets = [helper.make_opsetid("", 20), helper.make_opsetid("x.y", 3)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=10)
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    return model.SerializeToString()


@needs_node
def test_js_reads_ir_version_opsets_and_metadata() -> None:
    props = {f"{PREFIX}model": "tiny", f"{PREFIX}weights": "STAND-IN weights (test)",
             f"{PREFIX}weights_standin": "true", f"{PREFIX}preprocess": json.dumps(preprocessing_spec()),
             f"{PREFIX}labels": json.dumps([["tabby cat", "虎斑猫"]], ensure_ascii=False),
             f"{PREFIX}labels_source": "test", "other": "kept"}
    data = {"b64": base64.b64encode(tiny_model_bytes(props)).decode()}
    [info] = run_js("onnx-metadata.mjs", [("readModelInfo", [data])])
    assert info["irVersion"] == 10 and info["opsets"] == {"ai.onnx": 20, "x.y": 3}
    assert info["metadata"] == props
    [deployment, missing] = run_js("onnx-metadata.mjs", [("parseDeployment", [props]),
                                                          ("parseDeployment", [{"other": "x"}, "tiny.onnx"])])
    assert deployment["labels"] == [["tabby cat", "虎斑猫"]] and deployment["isStandin"] is True
    assert deployment["preprocess"] == preprocessing_spec()
    assert isinstance(missing, RuntimeError) and "tiny.onnx lacks the deployment metadata" in str(missing)


@needs_node
def test_js_metadata_reader_refuses_a_truncated_file() -> None:
    data = tiny_model_bytes({"k": "v" * 300})[:-100]
    [result] = run_js("onnx-metadata.mjs", [("readModelInfo", [{"b64": base64.b64encode(data).decode()}])])
    assert isinstance(result, RuntimeError) and "not a complete ONNX model" in str(result)


@needs_node
def test_js_top_k_keeps_the_lower_index_on_ties() -> None:
    [top, probabilities] = run_js("classifier.mjs", [("topK", [[0.1, 0.5, 0.5, 0.2, 0.9], 3]),
                                                     ("softmax", [[1000.0, 1000.0]])])
    assert top == [4, 1, 2] and probabilities == [0.5, 0.5]


# ---- the server, the staged page and the helpers ----

@pytest.mark.parametrize("isolated", [True, False])
def test_serve_sends_the_isolation_headers_only_when_asked(tmp_path: Path, isolated: bool) -> None:
    (tmp_path / "page.mjs").write_text("export {};\n")
    (tmp_path / "runtime.wasm").write_bytes(b"\0asm")
    with browser.serve(tmp_path, isolated=isolated) as server:
        with urllib.request.urlopen(server.url + "page.mjs", timeout=10) as response:
            headers = response.headers
        with urllib.request.urlopen(server.url + "runtime.wasm", timeout=10) as response:
            wasm_type = response.headers["Content-Type"]
    sent = {name: headers[name] for name in browser.ISOLATION_HEADERS}
    assert sent == (browser.ISOLATION_HEADERS if isolated else dict.fromkeys(browser.ISOLATION_HEADERS))
    assert headers["Content-Type"].startswith("text/javascript") and wasm_type == "application/wasm"
    assert server.log == [("/page.mjs", 200), ("/runtime.wasm", 200)]


def test_serve_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="it is not a folder"):
        with browser.serve(tmp_path / "nowhere"):
            pass


def test_the_serve_command_explains_what_it_cannot_do(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert browser.main(["serve", str(tmp_path / "nowhere")]) == 2
    assert "it is not a folder" in capsys.readouterr().err
    with browser.serve(tmp_path) as server:
        port = server.url.rsplit(":", 1)[1].strip("/")
        assert browser.main(["serve", str(tmp_path), "--port", port]) == 2
    assert f"Cannot serve on port {port}" in capsys.readouterr().err


def test_write_live_assets_describes_models_and_samples(tmp_path: Path) -> None:
    model = tmp_path / "in" / "tiny.onnx"
    model.parent.mkdir()
    props = {f"{PREFIX}model": "resnet18", f"{PREFIX}weights": "w", f"{PREFIX}weights_standin": "true",
             f"{PREFIX}preprocess": "{}", f"{PREFIX}labels": "[]", f"{PREFIX}labels_source": "x"}
    model.write_bytes(tiny_model_bytes(props))
    sample = tmp_path / "in" / "cat.png"
    Image.new("RGB", (4, 3)).save(sample)
    site = tmp_path / "site"
    (site / "samples").mkdir(parents=True)
    (site / "samples" / "stale.png").write_bytes(b"old")
    config = json.loads(browser.write_live_assets(site, [model], [sample]).read_text())
    assert config["models"] == [{"name": "resnet18", "title": "ResNet-18", "url": "models/tiny.onnx",
                                 "megabytes": 0.0}]
    assert config["samples"] == [{"name": "cat.png", "url": "samples/cat.png"}]
    assert config["ort"] == {"wasm": "onnxruntime-web/ort.wasm.min.mjs",
                             "webgpu": "onnxruntime-web/ort.webgpu.min.mjs"}
    assert sorted(p.name for p in (site / "samples").iterdir()) == ["cat.png"]  # the stale copy is gone
    assert onnx.load(str(site / "models" / "tiny.onnx")).metadata_props[0].key.startswith(PREFIX)


def test_js_function_returns_a_function_with_its_comment() -> None:
    source = browser.js_function(LIVE / "preprocess.mjs", "toRgb")
    assert source.startswith("/**") and "export function toRgb(" in source and source.endswith("}")
    with pytest.raises(ValueError, match="has no top-level function 'nothing'"):
        browser.js_function(LIVE / "preprocess.mjs", "nothing")


def test_ort_web_error_keeps_the_message_without_the_cpp_location() -> None:
    raised = ("Error: Can't create a session. ERROR_CODE: 1, ERROR_MESSAGE: /src/onnxruntime/core/graph/"
              "model.cc:203 onnxruntime::Model::Model(ModelProto &&, const PathString &, const "
              "logging::Logger &) Unsupported model IR version: 14, max supported IR version: 13\n"
              "    at createSession (ort.min.mjs:6:1)")
    assert browser.ort_web_error(raised) == "Unsupported model IR version: 14, max supported IR version: 13"
    assert browser.ort_web_error("Error: plain failure") == "Error: plain failure"


@pytest.mark.parametrize(("url", "local"), [
    ("http://127.0.0.1:8000/live.html", True), ("blob:http://127.0.0.1:1/x", True), ("data:,x", True),
    ("https://cdn.example.org/ort.min.mjs", False), ("http://localhost:8000/", False),
    ("http://93.184.215.14/", False),
])
def test_is_local(url: str, local: bool) -> None:
    assert browser.is_local(url) is local


def test_the_page_loads_only_files_the_site_serves() -> None:
    """The page's modules import each other and the configured runtime, never a URL elsewhere."""
    for path in LIVE.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "https://" not in text and "http://" not in text, path.name
    build = (Path(__file__).resolve().parents[1] / "book" / "build.py").read_text()
    assert all(f'"{name}"' in build for name in browser.ORT_WEB_FILES), "book/build.py must vendor them"
