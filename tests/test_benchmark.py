import json

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from course_utils.benchmark import (  # noqa: E402
    CSV_COLUMNS,
    Case,
    MemorySpec,
    default_threads,
    judge,
    make_grid,
    measure_peak_memory,
    memory_table,
    parse_ints,
    peak_rss_mb,
    per_image,
    plot_latency,
    plot_spread,
    plot_speedup,
    run_grid,
    save_results,
    speedup_grid,
    speedup_table,
    summarise,
    verdict_counts,
)
from course_utils.export import export_onnx  # noqa: E402
from course_utils.paths import repo_root  # noqa: E402

ENGINES = [("pytorch", "eager", "cpu"), ("onnxruntime", "fixed", "cpu"), ("onnxruntime", "dynamic", "cpu")]


def fake_results() -> pd.DataFrame:
    """A results table with made-up medians: ONNX Runtime twice as fast at 64, as fast at 128."""
    rows = []
    for model in ("net_a", "net_b"):
        for batch in (1, 4):
            for size in (64, 128):
                for runtime, variant, device in ENGINES:
                    median = 10.0 * batch * size / 64
                    if runtime == "onnxruntime" and size == 64:
                        median /= 2
                    rows.append({"model": model, "runtime": runtime, "variant": variant, "device": device,
                                 "batch": batch, "height": size, "width": size, "threads": 2, "repeats": 5,
                                 "median_ms": median, "p10_ms": 0.9 * median, "p90_ms": 1.2 * median,
                                 "first_ms": 3 * median})
    return pd.DataFrame(rows)


def test_parse_ints():
    assert parse_ints("64, 224,") == [64, 224]
    with pytest.raises(ValueError, match="comma-separated"):
        parse_ints("64;224")
    with pytest.raises(ValueError, match="positive"):
        parse_ints("0")


def test_default_threads_is_positive():
    assert default_threads() >= 1


def test_grid_keeps_one_shape_of_one_model_together():
    cases = make_grid(["a", "b"], ENGINES, batches=[1, 4], sizes=[64, 128])
    assert len(cases) == 2 * 2 * 2 * len(ENGINES)
    first_shape = cases[:len(ENGINES)]
    assert {(c.model, c.batch, c.size) for c in first_shape} == {("a", 1, 64)}
    assert [c.runtime for c in first_shape] == ["pytorch", "onnxruntime", "onnxruntime"]
    assert cases[0].engine == "pytorch eager (cpu)"
    assert str(cases[1]) == "a onnxruntime fixed (cpu) batch 1 64x64"


def test_grid_rejects_unknown_runtimes():
    with pytest.raises(ValueError, match="tensorrt"):
        make_grid(["a"], [("tensorrt", "fp16", "cuda")], [1], [64])


def test_run_grid_times_every_case_with_the_shared_loop(capsys):
    cases = make_grid(["a"], ENGINES[:2], batches=[1], sizes=[32, 64])
    calls: list[Case] = []

    def prepare(case: Case):
        return lambda: calls.append(case)

    table = run_grid(cases, prepare, warmup=1, repeats=4, budget_s=60.0, threads=3)
    assert list(table.columns) == [*CSV_COLUMNS, "first_ms"]
    assert len(table) == len(cases)
    assert (table["repeats"] == 4).all() and (table["threads"] == 3).all()
    assert (table["height"] == table["width"]).all()
    assert table["height"].tolist() == [32, 32, 64, 64]
    assert len(calls) == len(cases) * (1 + 1 + 4)
    assert "Timed 4 cases" in capsys.readouterr().out


def test_run_grid_cuts_repeats_to_the_budget():
    cases = make_grid(["a"], ENGINES[:1], batches=[1], sizes=[32])
    table = run_grid(cases, lambda case: (lambda: None), warmup=2, repeats=50, budget_s=0.0,
                     threads=1, min_repeats=2, progress=False)
    assert table.loc[0, "repeats"] == 2


def test_save_results_writes_exact_columns_and_says_quick(tmp_path):
    csv_path, machine_path = save_results(fake_results(), quick=True, settings={"sizes": [64, 128]},
                                          folder=tmp_path)
    assert tuple(pd.read_csv(csv_path).columns) == CSV_COLUMNS
    machine = json.loads(machine_path.read_text(encoding="utf-8"))
    assert machine["quick"] is True and machine["run"].startswith("quick")
    assert machine["settings"] == {"sizes": [64, 128]}
    assert "onnxruntime" in machine["environment"]


def test_speedup_table_divides_the_pytorch_median_by_each_engine():
    speedups = speedup_table(fake_results())
    assert list(speedups.columns) == ["onnxruntime dynamic (cpu)", "onnxruntime fixed (cpu)"]
    assert speedups.loc[("net_a", 1, 64), "onnxruntime fixed (cpu)"] == pytest.approx(2.0)
    assert speedups.loc[("net_b", 4, 128), "onnxruntime dynamic (cpu)"] == pytest.approx(1.0)


def test_plots_have_one_panel_per_model_and_batch():
    table = fake_results()
    latency = plot_latency(table, batch=4)
    assert isinstance(latency, Figure) and len(latency.axes) == 2
    assert latency.axes[0].get_title() == "net_a, batch 4"
    speedup = plot_speedup(table)
    assert len(speedup.axes) == 2 * 2
    with pytest.raises(ValueError, match="batch 16"):
        plot_latency(table, batch=16)


def test_peak_rss_is_positive_and_never_falls():
    first = peak_rss_mb()
    assert 0 < first <= peak_rss_mb()


def test_memory_probe_runs_onnxruntime_in_a_fresh_process(tiny_model, tmp_path):
    ballast = np.ones(40_000_000)  # 320 MB in this process: the child must not report it
    parent_peak = peak_rss_mb()
    path = export_onnx(tiny_model, tmp_path / "tiny.onnx", dynamo=False, input_shape=(1, 3, 32, 32),
                       dynamic=("batch",))
    spec = MemorySpec("onnxruntime", "tiny", batch=2, size=32, threads=1, runs=2, onnx_path=str(path))
    peaks = measure_peak_memory(spec)
    assert set(peaks) == {"imports", "loaded", "inference"}
    assert 0 < peaks["imports"] <= peaks["loaded"] <= peaks["inference"]
    assert peaks["inference"] < parent_peak, "the child reported its parent's peak"
    del ballast
    table = memory_table({"onnxruntime": peaks})
    assert table.loc["onnxruntime", "added by model + inference"] >= 0


def test_memory_probe_checks_its_input(tmp_path):
    with pytest.raises(ValueError, match="Unknown runtime"):
        measure_peak_memory(MemorySpec("tflite", "resnet18", 1, 32, 1))
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        measure_peak_memory(MemorySpec("onnxruntime", "resnet18", 1, 32, 1,
                                       onnx_path=str(tmp_path / "missing.onnx")))


def test_memory_probe_reports_a_failing_child(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(RuntimeError, match="memory probe for onnxruntime failed"):
        measure_peak_memory(MemorySpec("onnxruntime", "tiny", 1, 32, 1, onnx_path=str(broken)))


def test_memory_probe_runs_pytorch_in_a_fresh_process():
    peaks = measure_peak_memory(MemorySpec("pytorch", "resnet18", batch=1, size=32, threads=1, runs=1))
    assert 0 < peaks["imports"] <= peaks["loaded"] <= peaks["inference"]


def test_plots_give_each_engine_the_same_colour():
    table = fake_results()
    latency = plot_latency(table, batch=1).axes[0]
    speedup = plot_speedup(table).axes[0]
    latency_colours = {c.get_label(): c.lines[0].get_color() for c in latency.containers}
    speedup_colours = {line.get_label(): line.get_color() for line in speedup.get_lines()
                       if not line.get_label().startswith("_")}
    assert speedup_colours and all(latency_colours[e] == colour for e, colour in speedup_colours.items())
    assert speedup.get_yscale() == "log"


def noisy_pytorch(table: pd.DataFrame) -> pd.DataFrame:
    """The fake results with PyTorch's p90 three times its median: spread 3.3, far above 1.5."""
    noisy = table.copy()
    noisy.loc[noisy["runtime"] == "pytorch", "p90_ms"] *= 3
    return noisy


def test_judge_matches_cases_and_gives_verdicts():
    judged = judge(fake_results(), "engine", "onnxruntime fixed (cpu)", "pytorch eager (cpu)")
    assert len(judged) == 8 and judged.index.names == ["model", "batch", "height"]
    row = judged.loc[("net_a", 1, 64)]
    assert row["speedup"] == pytest.approx(2.0) and row["verdict"] == "faster"
    assert judged.loc[("net_a", 1, 128), "verdict"] == "no clear difference"  # ranges overlap
    assert judged["candidate_spread"].iloc[0] == pytest.approx(1.2 / 0.9)


def test_summarise_states_what_was_judged():
    judged = judge(fake_results(), "engine", "onnxruntime fixed (cpu)", "pytorch eager (cpu)")
    text = summarise(judged)
    assert text.startswith("onnxruntime fixed (cpu) against pytorch eager (cpu): faster in 4, slower in 0")
    assert "no clear difference in 4 of 8 judged case(s)" in text and "median 1.50x" in text
    single = summarise(judged.loc[[("net_a", 1, 64)]])
    assert "faster (median 5.00 ms against 10.00 ms, 2.00x as fast)" in single


def test_summarise_withholds_the_conclusion_when_the_spread_says_noise():
    judged = judge(noisy_pytorch(fake_results()), "engine", "onnxruntime fixed (cpu)",
                   "pytorch eager (cpu)")
    assert (judged["verdict"] == "too noisy").all()
    text = summarise(judged)
    assert "no conclusion" in text and "8 of 8 cases were too noisy" in text and "faster in" not in text
    assert "no conclusion" in summarise(judged.iloc[:1])
    relaxed = judge(noisy_pytorch(fake_results()), "engine", "onnxruntime fixed (cpu)",
                    "pytorch eager (cpu)", limit=5.0)
    assert "no conclusion" not in summarise(relaxed)


def test_summarise_leaves_out_a_noisy_minority_and_says_so():
    table = fake_results()
    first = (table["runtime"] == "pytorch") & (table["height"] == 64) & (table["batch"] == 1)
    table.loc[first, "p90_ms"] *= 3
    text = summarise(judge(table, "engine", "onnxruntime fixed (cpu)", "pytorch eager (cpu)"))
    assert "of 6 judged case(s)" in text and "2 more case(s) left out as too noisy" in text


def test_judge_by_batch_per_image_and_counts():
    judged = judge(per_image(fake_results()), "batch", 4, 1)
    assert judged.index.names == ["model", "engine", "height"] and len(judged) == 2 * 3 * 2
    assert judged["speedup"].to_numpy() == pytest.approx(1.0)  # the fake times grow with the batch
    assert summarise(judged).startswith("batch 4 against batch 1: ")
    empty = judge(fake_results(), "engine", "tensorrt (cuda)", "pytorch eager (cpu)")
    assert empty.empty and "no matching cases" in summarise(empty)
    counts = verdict_counts({"by batch": judged, "none": empty})
    assert counts.loc["by batch", "no clear difference"] == 12 and counts.loc["none"].iloc[:4].sum() == 0


def test_spread_plots():
    table = noisy_pytorch(fake_results())
    assert plot_spread(table).axes[0].get_yscale() == "log"
    figure = plot_speedup(table, limit=1.5)
    hollow = [line for line in figure.axes[0].get_lines() if line.get_markerfacecolor() == "white"]
    assert hollow and "too noisy" in figure._suptitle.get_text()


def test_speedup_grid_has_one_column_per_size_and_marks_noise():
    judged = judge(noisy_pytorch(fake_results()), "engine", "onnxruntime fixed (cpu)",
                   "pytorch eager (cpu)", limit=5.0)
    grid = speedup_grid(judged)
    assert list(grid.columns) == [64, 128] and grid.loc[("net_a", 1), 64] == 2.0
    assert (speedup_grid(judge(noisy_pytorch(fake_results()), "engine", "onnxruntime fixed (cpu)",
                               "pytorch eager (cpu)")) == "noisy").all().all()


def test_memory_probe_runs_the_deployed_pipeline_without_torch(tiny_model, tmp_path):
    path = export_onnx(tiny_model, tmp_path / "tiny.onnx", dynamo=False, input_shape=(1, 3, 224, 224),
                       dynamic=("batch",))
    images = [str(p) for p in sorted((repo_root() / "data" / "images").glob("*.jpg"))[:2]]
    spec = MemorySpec("onnxruntime", "tiny", batch=2, size=224, threads=1, runs=2, onnx_path=str(path),
                      images=images)
    assert spec.images == tuple(images)
    peaks = measure_peak_memory(spec)
    assert 0 < peaks["imports"] <= peaks["loaded"] <= peaks["inference"]
    with pytest.raises(ValueError, match="batch 3 and 2 images"):
        measure_peak_memory(MemorySpec("onnxruntime", "tiny", 3, 224, 1, onnx_path=str(path), images=images))
    with pytest.raises(ValueError, match="'pytorch'"):
        measure_peak_memory(MemorySpec("pytorch", "resnet18", 2, 224, 1, images=images))


def test_summarise_gives_one_speedup_when_one_case_was_judged():
    table = fake_results()
    table = table[(table["model"] == "net_a") & (table["batch"] == 1)].copy()
    table.loc[(table["runtime"] == "pytorch") & (table["height"] == 128), "p90_ms"] *= 3
    text = summarise(judge(table, "engine", "onnxruntime fixed (cpu)", "pytorch eager (cpu)"))
    assert "of 1 judged case(s); speed-up 2.00x. 1 more case(s) left out" in text
