import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from course_utils.export import export_onnx
from course_utils.imagefolder import scan_folder
from course_utils.inference import (
    STANDIN_WARNING,
    check_input,
    flag_untrained,
    image_size,
    ort_error_summary,
    predictions_table,
    softmax,
    top1_table,
    top_k,
    top_k_table,
)
from course_utils.labels import label


@pytest.fixture
def fixed_session(tmp_path, tiny_model):
    path = export_onnx(tiny_model, tmp_path / "tiny-fixed.onnx", input_shape=(1, 3, 32, 32))
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.fixture
def dynamic_session(tmp_path, tiny_model):
    path = export_onnx(tiny_model, tmp_path / "tiny-dynamic.onnx", input_shape=(2, 3, 32, 32),
                       dynamic=["batch", "height", "width"], dynamo=False)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_softmax_matches_torch_and_sums_to_one():
    logits = np.random.default_rng(0).normal(size=(4, 1000)).astype(np.float32) * 5
    probs = softmax(logits)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-5)
    expected = torch.softmax(torch.from_numpy(logits), dim=-1).numpy()
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-7)


def test_softmax_is_stable_for_huge_logits():
    with np.errstate(over="raise"):
        probs = softmax(np.array([1000.0, 999.0, -1000.0]))
    np.testing.assert_allclose(probs, [1 / (1 + np.exp(-1)), np.exp(-1) / (1 + np.exp(-1)), 0.0], atol=1e-12)


def test_softmax_axis_and_integer_input():
    probs = softmax(np.array([[0, 0], [1, 1]]), axis=0)
    assert probs.dtype == np.float64
    np.testing.assert_allclose(probs.sum(axis=0), [1.0, 1.0])


def test_top_k_sorted_descending_with_stable_ties():
    probs = np.array([[0.1, 0.4, 0.1, 0.4], [0.7, 0.1, 0.15, 0.05]])
    indices, values = top_k(probs, 3)
    assert indices.tolist() == [[1, 3, 0], [0, 2, 1]]
    np.testing.assert_allclose(values, [[0.4, 0.4, 0.1], [0.7, 0.15, 0.1]])
    one_index, one_value = top_k(probs[1], 1)
    assert one_index.tolist() == [0] and one_value.tolist() == [0.7]


@pytest.mark.parametrize("k", [0, 5])
def test_top_k_rejects_impossible_k(k):
    with pytest.raises(ValueError, match="between 1 and 4"):
        top_k(np.ones(4), k)


def test_check_input_accepts_what_the_session_wants(fixed_session, dynamic_session):
    x = np.zeros((1, 3, 32, 32), np.float32)
    assert check_input(fixed_session, x) is x
    y = np.zeros((3, 3, 48, 40), np.float32)
    assert check_input(dynamic_session, y, "input") is y
    assert dynamic_session.run(None, {"input": y})[0].shape == (3, 10)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((1, 32, 32, 3), np.float32),
         r"Input 'input' expects a tensor\(float\) array \(NumPy float32\) of shape \[1, 3, 32, 32\]; "
         r"got float32 of shape \[1, 32, 32, 3\] \(axis 1: 32 instead of 3, axis 3: 3 instead of 32\)\. "
         r"The array looks channels-last \(N, H, W, C\).*transpose\(0, 3, 1, 2\)"),
        (np.zeros((1, 3, 32, 32), np.float64), r"got float64 .*astype\(np\.float32\)"),
        (np.zeros((3, 32, 32), np.float32), r"\(3 dimensions instead of 4\)\. Add the batch axis"),
        (np.zeros((32, 32, 3), np.float32), r"one \(H, W, C\) image: use array\.transpose\(2, 0, 1\)"),
        (np.zeros((32, 32), np.float32), r"Give it 4 dimensions"),
        (np.zeros((1, 1, 32, 32), np.float32),
         r"axis 1: 1 instead of 3\)\. The model wants 3 colour channels"),
        (np.zeros((1, 3, 64, 64), np.float32),
         r"axis 2: 64 instead of 32, axis 3: 64 instead of 32\)\. .*fixed"),
        (np.zeros((2, 3, 32, 32), np.float32), r"axis 0: 2 instead of 1"),
        ([[0.0]], r"got a list\. Pass a NumPy array"),
    ],
    ids=["nhwc", "float64", "no-batch", "hwc", "rank2", "grey", "size", "batch", "list"],
)
def test_check_input_explains_wrong_input(fixed_session, array, message):
    with pytest.raises(ValueError, match=message):
        check_input(fixed_session, array)


def test_check_input_catches_what_ort_would_reject(fixed_session):
    wrong = (np.zeros((1, 32, 32, 3), np.float32), np.zeros((1, 3, 32, 32)),
             np.zeros((3, 32, 32), np.float32))
    for bad in wrong:
        with pytest.raises(ValueError):
            check_input(fixed_session, bad)
        with pytest.raises(Exception, match="INVALID_ARGUMENT"):
            fixed_session.run(None, {"input": bad})


def test_ort_error_summary_is_one_line(fixed_session):
    with pytest.raises(Exception) as info:
        fixed_session.run(None, {"input": np.zeros((2, 3, 32, 31), np.float32)})
    assert ort_error_summary(info.value) == (
        "INVALID_ARGUMENT : Got invalid dimensions for input: input for the following indices; "
        "index: 0 Got: 2 Expected: 1; index: 3 Got: 31 Expected: 32"
    )
    with pytest.raises(Exception) as info:
        fixed_session.run(None, {"input": np.zeros((1, 3, 32, 32))})
    assert ort_error_summary(info.value) == (
        "INVALID_ARGUMENT : Unexpected input data type. Actual: (tensor(double)) , expected: (tensor(float))"
    )


def test_check_input_with_dynamic_dims_still_checks_channels(dynamic_session):
    with pytest.raises(ValueError, match=r"shape \[batch, 3, height, width\].*channels-last"):
        check_input(dynamic_session, np.zeros((2, 50, 60, 3), np.float32))


def test_check_input_unknown_name(fixed_session):
    with pytest.raises(ValueError, match="no input 'images'; its inputs are \\['input'\\]"):
        check_input(fixed_session, np.zeros((1, 3, 32, 32), np.float32), name="images")


def test_top_k_table_has_both_languages():
    probs = np.full(1000, 0.0001)
    probs[[281, 504]] = [0.6, 0.3]
    table = top_k_table(probs, k=3)
    assert table.index.tolist() == [1, 2, 3]
    assert table["class id"].tolist()[:2] == [281, 504]
    assert table["english"].tolist()[0] == label(281, "english")
    assert table["chinese"].tolist()[1] == label(504, "chinese")
    assert table["probability"].tolist()[:2] == [0.6, 0.3]


def test_predictions_table(tmp_path):
    paths = [tmp_path / "a.png", tmp_path / "b.jpg"]
    Image.new("RGB", (30, 20)).save(paths[0])
    Image.new("L", (7, 9)).save(paths[1])
    probs = np.zeros((2, 1000))
    probs[0, 1], probs[1, 999] = 0.912345, 0.5
    table = predictions_table(paths, probs)
    assert table.columns.tolist() == ["file", "size", "class id", "top-1 (english)", "top-1 (chinese)",
                                      "probability"]
    assert table["file"].tolist() == ["a.png", "b.jpg"]
    assert table["size"].tolist() == ["30x20", "7x9"]
    assert table["class id"].tolist() == [1, 999]
    assert table["top-1 (english)"].tolist() == [label(1), label(999)]
    assert table["top-1 (chinese)"].tolist() == [label(1, "chinese"), label(999, "chinese")]
    assert table["probability"].tolist() == [0.9123, 0.5]
    assert image_size(paths[1]) == "7x9"
    with pytest.raises(ValueError, match="2 paths but 1 rows"):
        predictions_table(paths, probs[:1])


def test_top1_table_has_one_row_per_row_of_probabilities():
    probs = np.zeros((3, 1000), np.float32)
    probs[0, 281], probs[1, 673], probs[2, 0] = 0.7, 0.45678, 1.0
    table = top1_table(probs, decimals=2)
    assert table["class id"].tolist() == [281, 673, 0]
    assert table["top-1 (chinese)"].tolist() == [label(281, "chinese"), label(673, "chinese"), label(0, "chinese")]
    assert table["probability"].tolist() == [0.7, 0.46, 1.0]


def test_deploy_time_modules_do_not_import_torch_or_pandas():
    code = ("import sys, course_utils.inference, course_utils.preprocess; "
            "print('torch' in sys.modules, 'pandas' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False False"


def test_predictions_table_takes_the_records_of_a_folder_scan(tmp_path):
    Image.new("RGB", (30, 20)).save(tmp_path / "a.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    scan = scan_folder(tmp_path)
    (tmp_path / "a.png").unlink()  # the size comes from the scan: the file is not opened again
    table = predictions_table(scan.images, np.eye(1, 1000))
    assert table[["file", "size", "class id"]].values.tolist() == [["a.png", "30x20", 0]]


def test_flag_untrained_puts_a_warning_over_every_column_only_for_stand_ins():
    table = top_k_table(np.linspace(0, 1, 1000), k=2)
    flagged = flag_untrained(table, is_standin=True)
    assert flagged.columns.get_level_values(0).unique().tolist() == [STANDIN_WARNING]
    assert flagged.columns.get_level_values(1).tolist() == table.columns.tolist()
    assert "not about the photo" in flagged.to_string() and "untrained" in flagged.to_html().lower()
    assert flagged.values.tolist() == table.values.tolist()
    assert flag_untrained(table, is_standin=False) is table
    assert table.columns.tolist() == ["class id", "english", "chinese", "probability"]  # unchanged


@pytest.mark.parametrize("function", [softmax, top_k])
def test_the_functions_notebook_04_prints_name_it(function):
    assert "notebook 04" in function.__doc__
