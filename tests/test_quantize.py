import json
import shutil

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from course_utils.export import export_onnx, read_export_key  # noqa: E402
from course_utils.paths import data_dir  # noqa: E402
from course_utils.preprocess import load_batch  # noqa: E402
from course_utils.quantize import (  # noqa: E402
    CSV_COLUMNS,
    FolderCalibrationReader,
    Variant,
    agreement,
    agreement_by_margin,
    calibration_sources,
    conv_kind,
    conv_kinds,
    cosine_similarity,
    digests,
    evaluation_inputs,
    group_photographs,
    model_output,
    plot_agreement_by_margin,
    plot_speed_vs_agreement,
    profile_summary,
    quantize_variant,
    read_profile,
    run_batches,
    save_results,
    shared_photographs,
    split_photographs,
    sqnr_db,
    top1_margin,
    write_calibration_folder,
)


@pytest.fixture
def photos(tmp_path):
    """Five sample images under new names; a.jpg and a_palette.png show the same photograph."""
    folder = tmp_path / "photos"
    folder.mkdir()
    names = {"a.jpg": "coffee_cup.jpg", "a_palette.png": "coffee_palette.png", "b.jpg": "astronaut.jpg",
             "c.png": "cameraman_gray.png", "d.jpg": "flower.jpg"}
    for name, sample in names.items():
        shutil.copyfile(data_dir() / "images" / sample, folder / name)
    return [folder / name for name in names]


@pytest.fixture
def tiny_onnx(tiny_model, tmp_path):
    return export_onnx(tiny_model, tmp_path / "tiny.onnx", dynamo=False, input_shape=(1, 3, 224, 224),
                       dynamic=("batch",))


def test_copies_of_one_photograph_are_grouped_and_kept_on_one_side(photos):
    groups = group_photographs(photos)
    assert [[p.name for p in g] for g in groups][0] == ["a.jpg", "a_palette.png"]
    assert len(groups) == 4
    calibration, evaluation = split_photographs(photos)
    assert [p.name for p in calibration] == ["a.jpg", "a_palette.png", "c.png"]
    assert [p.name for p in evaluation] == ["b.jpg", "d.jpg"]
    assert shared_photographs(calibration, evaluation) == []
    assert shared_photographs(photos[:1], photos[1:2]) == [(photos[0], photos[1])]
    with pytest.raises(ValueError, match="two different photographs"):
        split_photographs(photos[:2])


def test_calibration_folder_is_written_once_and_never_over_foreign_files(photos, tmp_path):
    folder = tmp_path / "calibration"
    write_calibration_folder(photos[:3], folder, count=5, seed=3)
    files = sorted(p.name for p in folder.glob("*.jpg"))
    assert len(files) == 5 and files[0].startswith("view_0000_")
    sources = calibration_sources(folder)
    assert set(sources) == set(files) and set(sources.values()) <= {"a.jpg", "a_palette.png", "b.jpg"}
    stamp = (folder / files[0]).stat().st_mtime_ns
    write_calibration_folder(photos[:3], folder, count=5, seed=3)  # same settings: reused
    assert (folder / files[0]).stat().st_mtime_ns == stamp
    write_calibration_folder(photos[:3], folder, count=3, seed=3)  # new settings: rewritten
    assert len(list(folder.glob("*.jpg"))) == 3
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="not written by write_calibration_folder"):
        write_calibration_folder(photos, foreign, count=2)
    assert calibration_sources(foreign) is None


def test_evaluation_inputs_start_with_the_photographs_as_deployed(photos):
    inputs, sources = evaluation_inputs(photos[2:4], count=7, seed=5)
    assert inputs.shape == (7, 3, 224, 224) and inputs.dtype == np.float32
    np.testing.assert_array_equal(inputs[:2], load_batch(photos[2:4])[0])
    assert set(sources) == set(photos[2:4])
    again, _ = evaluation_inputs(photos[2:4], count=7, seed=5)
    np.testing.assert_array_equal(inputs, again)
    assert len(digests(inputs)) == 7 and not digests(inputs) & digests(load_batch(photos[:1])[0])


def test_reader_feeds_batches_selects_and_rewinds(photos, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    reader = FolderCalibrationReader([*photos, broken], batch_size=2)
    assert len(reader) == 5 and reader.skipped[0][0] == broken
    shapes = [batch["input"].shape[0] for batch in iter(reader.get_next, None)]
    assert shapes == [2, 2, 1]
    assert [b["input"].shape[0] for b in iter(reader.get_next, None)] == [2, 2, 1]  # rewound
    full = reader.digest()
    reader.select(3)
    assert len(reader) == 3 and reader.digest() != full
    assert sum(b["input"].shape[0] for b in iter(reader.get_next, None)) == 3
    reader.set_range(1, 2)
    assert reader.get_next()["input"].shape[0] == 1
    with pytest.raises(ValueError, match="Asked for 9"):
        reader.select(9)
    custom = FolderCalibrationReader(photos[:2], preprocess=lambda p: np.zeros((3, 8, 8), np.float32))
    assert custom.inputs.shape == (2, 3, 8, 8) and custom.used == list(photos[:2])


def test_static_and_dynamic_variants_on_a_tiny_model(tiny_onnx, photos, tmp_path):
    reader = FolderCalibrationReader(photos)
    cache = tmp_path / "cache"
    target = quantize_variant(Variant("int8", images=4), tiny_onnx, tmp_path / "int8.onnx", reader, cache)
    ops = {node.op_type for node in onnx.load(str(target)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    assert read_export_key(target) is not None and len(list(cache.glob("*.json"))) == 1
    stamp = target.stat().st_mtime_ns
    assert quantize_variant(Variant("int8", images=4), tiny_onnx, target, reader, cache) == target
    assert target.stat().st_mtime_ns == stamp  # up to date: reused
    per_tensor = quantize_variant(Variant("pt", per_channel=False, images=4), tiny_onnx,
                                  tmp_path / "pt.onnx", reader, cache)
    assert len(list(cache.glob("*.json"))) == 1  # the same ranges, calibrated once
    dynamic = quantize_variant(Variant("dyn", dynamic=True), tiny_onnx, tmp_path / "dyn.onnx")
    assert "ConvInteger" in {node.op_type for node in onnx.load(str(dynamic)).graph.node}
    session = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    reference = run_batches(session, reader.inputs, batch=2)
    for path in (target, per_tensor):
        test = run_batches(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]), reader.inputs)
        assert test.shape == reference.shape and sqnr_db(test, reference) > 10
    with pytest.raises(ValueError, match="pass a calibration reader"):
        quantize_variant(Variant("x"), tiny_onnx, tmp_path / "x.onnx")


def test_model_output_refuses_foreign_files(tmp_path):
    foreign = tmp_path / "model.onnx"
    foreign.write_bytes(b"a learner's file")
    with pytest.raises(FileExistsError, match="not written by course_utils"):
        with model_output(foreign, "key"):
            pass
    assert foreign.read_bytes() == b"a learner's file"


def test_measures_on_known_values():
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((400, 50))
    noise = rng.standard_normal((400, 50))
    noise *= np.sqrt(0.01 * np.sum(reference**2) / np.sum(noise**2))  # 1 % of the power
    assert sqnr_db(reference + noise, reference) == pytest.approx(20.0)
    assert sqnr_db(reference, reference) == float("inf")
    assert cosine_similarity(reference, 3 * reference) == pytest.approx(np.ones(400))
    assert top1_margin(np.array([[1.0, 5.0, 4.5]]))[0] == pytest.approx(0.5)
    scores = agreement(reference + noise, reference)
    assert 0.8 < scores["top1_agreement"] < scores["top5_agreement"] == 1.0
    assert scores["inputs"] == 400 and scores["cosine_min"] <= scores["cosine"] < 1
    swapped = np.array([[0.0, 2.0, 1.0, 0.5, 0.4, 0.3, 0.2]])
    assert agreement(-swapped, swapped)["top5_agreement"] == 0.0
    with pytest.raises(ValueError, match="Cannot compare"):
        agreement(reference[:3], reference)


def test_agreement_by_margin_bins():
    reference = np.array([[0.0, 0.1], [0.0, 0.6], [0.0, 3.0], [0.0, 3.5]])
    test = np.array([[0.2, 0.1], [0.0, 0.6], [0.0, 3.0], [4.0, 3.5]])
    table = agreement_by_margin(test, reference)
    assert table["inputs"].tolist() == [1, 0, 1, 0, 2]
    assert table.loc[0, "top1_agreement"] == 0.0 and table.loc[4, "top1_agreement"] == 0.5
    assert np.isnan(table.loc[1, "top1_agreement"]) and table.loc[4, "margin"] == ">= 2"
    figure = plot_agreement_by_margin({"tiny": table})
    assert isinstance(figure, Figure)


def test_profile_table_names_operators_and_convolution_kinds(tiny_onnx, tmp_path):
    assert conv_kind([8, 3, 3, 3]) == "3x3" and conv_kind([8, 1, 3, 3]) == "depthwise"
    assert conv_kind([8, 8, 1, 1]) == "1x1" and conv_kind([8]) == "other"
    assert set(conv_kinds(tiny_onnx).values()) == {"3x3"}
    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(tmp_path / "profile")
    session = ort.InferenceSession(str(tiny_onnx), options, providers=["CPUExecutionProvider"])
    for _ in range(3):
        session.run(None, {"input": np.zeros((1, 3, 224, 224), np.float32)})
    profile = read_profile(session.end_profiling(), tiny_onnx)
    assert list(profile.columns) == ["node", "op type", "kind", "runs", "median_us"]
    convs = profile[profile["op type"].str.contains("Conv")]
    assert len(convs) == 1 and convs["kind"].iloc[0] == "3x3" and convs["runs"].iloc[0] == 3
    summary = profile_summary({"fp32": profile})
    assert summary.loc["total", "fp32"] == pytest.approx(profile["median_us"].sum() / 1e3)


def test_results_file_and_speed_figure(tmp_path):
    row = {column: 1.0 for column in CSV_COLUMNS}
    table = pd.DataFrame([{**row, "model": "tiny", "variant": "int8", "batch": 1, "speedup": 2.0},
                          {**row, "model": "tiny", "variant": "fp32", "batch": 1, "speedup": 1.0}])
    path = save_results(table, folder=tmp_path)
    assert tuple(pd.read_csv(path).columns) == CSV_COLUMNS
    with pytest.raises(ValueError, match="sqnr_db"):
        save_results(table.drop(columns="sqnr_db"), folder=tmp_path)
    figure = plot_speed_vs_agreement(table, {"int8": "int8 files", "fp32": "float32"},
                                     unlabelled=("float32",))
    assert isinstance(figure, Figure) and figure.axes[0].get_title() == "tiny, batch 1"
    assert [t.get_text() for t in figure.axes[0].texts] == ["int8"]
    with pytest.raises(ValueError, match="No variant"):
        plot_speed_vs_agreement(table, {"other": "x"})
    assert json.loads(json.dumps(list(CSV_COLUMNS)))[0] == "model"
