"""Deployment metadata travels inside the exported file and reads back without PyTorch."""

from __future__ import annotations

import subprocess
import sys

import onnxruntime as ort
import pytest

from course_utils.export import export_onnx
from course_utils.metadata import parse_metadata, preprocessing_spec, read_deployment_info
from course_utils.weights import LoadedModel


def test_export_writes_what_the_page_and_the_service_read(tmp_path, tiny_model):
    loaded = LoadedModel("tiny", tiny_model, "STAND-IN weights (test)", True)
    path = export_onnx(loaded, tmp_path / "tiny.onnx", input_shape=(1, 3, 32, 32))
    info = read_deployment_info(path)
    assert (info.model, info.weights, info.is_standin) == ("tiny", "STAND-IN weights (test)", True)
    assert info.preprocess == preprocessing_spec() and info.preprocess["center_crop"] == 224
    assert len(info.labels) == 1000 and info.label(0) == "tench" and info.label(0, "chinese")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    from_session = parse_metadata(session.get_modelmeta().custom_metadata_map)
    assert from_session == info


def test_a_bare_module_gets_no_deployment_metadata(tmp_path, tiny_model):
    path = export_onnx(tiny_model, tmp_path / "bare.onnx", input_shape=(1, 3, 32, 32))
    with pytest.raises(ValueError, match="lacks the deployment metadata"):
        read_deployment_info(path)


def test_reading_metadata_imports_no_torch():
    code = "import sys, course_utils.metadata; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
