import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from course_utils import export
from course_utils.export import (
    export_in_memory,
    export_onnx,
    file_sizes,
    io_table,
    op_type_counts,
    read_export_key,
    simplify_onnx,
)
from course_utils.weights import load_model


def run_ort(path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "legacy"])
def test_resnet18_round_trip_matches_pytorch(tmp_path, dynamo):
    model = load_model("resnet18", "standin").model
    path = export_onnx(model, tmp_path / "r18.onnx", dynamo=dynamo, dynamic=["batch", "height", "width"])
    assert io_table(path)["shape"].tolist() == [["batch", 3, "height", "width"], ["batch", 1000]]
    x = torch.randn(2, 3, 160, 192, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(run_ort(path, x.numpy()), expected, rtol=1e-4, atol=1e-4)


def test_default_export_is_one_self_contained_file(tmp_path, tiny_model):
    path = export_onnx(tiny_model, tmp_path / "tiny.onnx", input_shape=(1, 3, 32, 32))
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.onnx"]
    assert file_sizes(path)["file"].tolist() == ["tiny.onnx"]
    onnx.checker.check_model(str(path), full_check=True)


def test_file_sizes_lists_the_data_companion_in_tenths_of_a_megabyte(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"x" * 91_000)
    (tmp_path / "m.onnx.data").write_bytes(b"x" * 46_824_988)
    sizes = file_sizes(tmp_path / "m.onnx")
    assert sizes["file"].tolist() == ["m.onnx", "m.onnx.data"]
    assert sizes["MB"].tolist() == [0.1, 46.8]


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "legacy"])
def test_export_in_memory_passes_options_and_returns_warnings(tmp_path, monkeypatch, tiny_model, dynamo):
    monkeypatch.chdir(tmp_path)
    example = torch.zeros(1, 3, 32, 32)
    proto, caught = export_in_memory(tiny_model, (example,), dynamo=dynamo, input_names=["pixels"],
                                     output_names=["scores"])
    assert [i.name for i in proto.graph.input] == ["pixels"]
    assert [o.name for o in proto.graph.output] == ["scores"]
    assert list(tmp_path.iterdir()) == []  # nothing written
    assert dynamo or any(issubclass(w.category, DeprecationWarning) for w in caught)


def test_external_data_when_asked(tmp_path, tiny_model):
    path = export_onnx(tiny_model, tmp_path / "tiny.onnx", input_shape=(1, 3, 32, 32), single_file=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx", "tiny.onnx.data"]
    x = np.zeros((1, 3, 32, 32), np.float32)
    assert run_ort(path, x).shape == (1, 10)


def test_up_to_date_file_is_reused_and_changed_weights_re_export(tmp_path, tiny_model, monkeypatch):
    path = tmp_path / "tiny.onnx"
    export_onnx(tiny_model, path, input_shape=(1, 3, 32, 32), dynamo=False)
    first_key = read_export_key(path)
    calls = []
    real_export = torch.onnx.export
    monkeypatch.setattr(torch.onnx, "export", lambda *a, **k: calls.append(1) or real_export(*a, **k))
    export_onnx(tiny_model, path, input_shape=(1, 3, 32, 32), dynamo=False)
    assert calls == []
    with torch.no_grad():
        tiny_model.head.bias.add_(1.0)
    export_onnx(tiny_model, path, input_shape=(1, 3, 32, 32), dynamo=False)
    assert calls == [1]
    assert read_export_key(path) != first_key


def test_failed_export_leaves_no_half_written_file(tmp_path, tiny_model, monkeypatch):
    def broken_export(model, args, f, **kwargs):
        with open(f, "wb") as half:
            half.write(b"\x08\x07 half a model")
        raise RuntimeError("exporter crashed")

    monkeypatch.setattr(torch.onnx, "export", broken_export)
    with pytest.raises(RuntimeError, match="crashed"):
        export_onnx(tiny_model, tmp_path / "tiny.onnx", input_shape=(1, 3, 32, 32))
    assert list(tmp_path.iterdir()) == []


def test_a_file_of_the_learner_is_never_overwritten_silently(tmp_path, tiny_model):
    mine = tmp_path / "tiny.onnx"
    mine.write_bytes(b"my own model")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_onnx(tiny_model, mine, input_shape=(1, 3, 32, 32))
    assert mine.read_bytes() == b"my own model"
    export_onnx(tiny_model, mine, input_shape=(1, 3, 32, 32), overwrite=True)
    assert read_export_key(mine) is not None


def test_train_mode_and_unknown_axes_are_refused(tmp_path, tiny_model):
    with pytest.raises(ValueError, match="Unknown dynamic axes"):
        export_onnx(tiny_model, tmp_path / "t.onnx", dynamic=["channels"])
    with pytest.raises(ValueError, match="eval"):
        export_onnx(tiny_model.train(), tmp_path / "t.onnx")


def test_simplify_keeps_outputs_and_dynamic_dims(tmp_path, tiny_model):
    src = export_onnx(tiny_model, tmp_path / "tiny.onnx", input_shape=(2, 3, 32, 32), dynamic=["batch"], dynamo=False)
    dst = simplify_onnx(src, tmp_path / "tiny-sim.onnx")
    assert io_table(dst)["shape"][0] == ["batch", 3, 32, 32]
    x = np.random.default_rng(0).random((3, 3, 32, 32), dtype=np.float32)
    np.testing.assert_allclose(run_ort(dst, x), run_ort(src, x), rtol=1e-5, atol=1e-6)
    counts = op_type_counts({"exported": src, "simplified": dst, "loaded": onnx.load(str(dst))})
    assert counts.loc["Conv"].tolist() == [1, 1, 1]
    assert counts.loc["total", "simplified"] <= counts.loc["total", "exported"]


def test_export_key_changes_with_settings():
    assert export.export_key(a=1) == export.export_key(a=1)
    assert export.export_key(a=1) != export.export_key(a=2)
