"""The speed benchmark's grid, runner, results files, findings, plots and peak-memory probe.

Notebook 05 (``05_speed_benchmark``) builds the models, sessions and inputs (the
lesson); this module walks the grid, times each case with
:func:`course_utils.timing.time_call`, saves the table, judges it (:func:`judge`,
:func:`summarise`: no conclusion where the spread says noise) and draws it.

Heavy libraries (torch, onnxruntime, pandas, matplotlib) are imported inside
the functions that need them: ``python -m course_utils.benchmark`` runs the
memory probe in a fresh process, and that process must load only the runtime
it measures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from course_utils.paths import display_path, results_dir
from course_utils.timing import NOISE_LIMIT, VERDICTS, Timing, state_verdict, time_call, verdict

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

CSV_COLUMNS = ("model", "runtime", "variant", "device", "batch", "height", "width", "threads", "repeats",
               "median_ms", "p10_ms", "p90_ms")
BASELINE = ("pytorch", "eager")
RUNTIMES = ("pytorch", "onnxruntime")


@dataclass(frozen=True)
class Case:
    """One measurement of the grid: a model run by one engine on one input shape."""

    model: str
    runtime: str
    variant: str
    device: str
    batch: int
    size: int

    @property
    def engine(self) -> str:
        """Return a short label such as ``onnxruntime fixed (cpu)``."""
        return f"{self.runtime} {self.variant} ({self.device})"

    def __str__(self) -> str:
        return f"{self.model} {self.engine} batch {self.batch} {self.size}x{self.size}"


def default_threads() -> int:
    """Return the number of CPU cores this process may use (its affinity mask, where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def parse_ints(text: str) -> list[int]:
    """Turn a setting such as ``"64,224"`` into ``[64, 224]``."""
    try:
        values = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError as exc:
        raise ValueError(f"Expected comma-separated whole numbers such as '64,224', got {text!r}.") from exc
    if not values or min(values) < 1:
        raise ValueError(f"Expected at least one positive number, got {text!r}.")
    return values


def make_grid(
    models: Iterable[str],
    engines: Iterable[tuple[str, str, str]],
    batches: Iterable[int],
    sizes: Iterable[int],
) -> list[Case]:
    """Return every (model, batch, size, engine) case; ``engines`` holds (runtime, variant, device).

    Cases of one model and one input shape follow each other, so a fixed-shape
    session is needed only while its shape is measured.
    """
    engines = list(engines)
    unknown = sorted({runtime for runtime, _, _ in engines} - set(RUNTIMES))
    if unknown:
        raise ValueError(f"Unknown runtime(s) {unknown}; use {list(RUNTIMES)}.")
    return [
        Case(model, runtime, variant, device, batch, size)
        for model in models
        for batch in batches
        for size in sizes
        for runtime, variant, device in engines
    ]


def run_grid(
    cases: Sequence[Case],
    prepare: Callable[[Case], Callable[[], object]],
    *,
    warmup: int,
    repeats: int,
    budget_s: float,
    threads: int,
    min_repeats: int = 3,
    progress: bool = True,
) -> pd.DataFrame:
    """Time every case and return one row per case (the CSV columns plus ``first_ms``).

    ``prepare(case)`` returns the zero-argument call to time (the notebook writes
    it: a model call or ``session.run``); creating sessions and inputs there
    keeps them out of the timed runs. Each case gets at most ``warmup`` warm-up
    and ``repeats`` timed runs, fewer when its first run says they would not fit
    in ``budget_s`` seconds (see :func:`course_utils.timing.budget_runs`).
    PyTorch on CUDA is synchronised around every run.
    """
    import pandas as pd

    rows = []
    started = time.perf_counter()
    width = len(str(len(cases)))
    for number, case in enumerate(cases, start=1):
        if progress:
            elapsed = time.perf_counter() - started
            line = f"\r[{number:>{width}}/{len(cases)}] {elapsed:6.1f} s  {case}"
            print(line.ljust(100), end="", flush=True)
        synchronize = None
        if case.runtime == "pytorch" and case.device == "cuda":
            import torch

            synchronize = torch.cuda.synchronize
        timing = time_call(prepare(case), warmup=warmup, repeats=repeats, synchronize=synchronize,
                           budget_s=budget_s, min_repeats=min_repeats)
        rows.append({**_case_columns(case), "threads": threads, **timing.as_dict()})
    if progress:
        print(f"\rTimed {len(cases)} cases in {time.perf_counter() - started:.1f} s".ljust(100), flush=True)
    return pd.DataFrame(rows, columns=[*CSV_COLUMNS, "first_ms"])


def _case_columns(case: Case) -> dict[str, object]:
    values = asdict(case)
    size = values.pop("size")
    return {**values, "height": size, "width": size}


def save_results(
    table: pd.DataFrame, *, quick: bool, settings: dict[str, object], folder: Path | None = None
) -> tuple[Path, Path]:
    """Write ``speed.csv`` (the CSV columns only) and ``speed_machine.json`` beside it; return both paths.

    The JSON file describes the machine (:func:`course_utils.environment.environment_report`),
    the settings of the run and whether it was a quick (shortened) run.
    """
    from course_utils.environment import environment_report

    folder = Path(folder) if folder is not None else results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, machine_path = folder / "speed.csv", folder / "speed_machine.json"
    table.loc[:, list(CSV_COLUMNS)].to_csv(csv_path, index=False)
    machine = {
        "run": "quick (COURSE_QUICK=1: shortened grid and repeats)" if quick else "full",
        "quick": quick,
        "written_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "results": csv_path.name,
        "settings": settings,
        "environment": environment_report()["value"].to_dict(),
    }
    machine_path.write_text(json.dumps(machine, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return csv_path, machine_path


def _against_baseline(table: pd.DataFrame, limit: float) -> pd.DataFrame:
    """Return each non-baseline row with PyTorch eager's median beside it (same device and shape).

    Adds ``speedup`` (baseline median / median) and ``noisy`` (either spread above ``limit``).
    """
    keys = ["model", "device", "batch", "height"]
    spread = table["p90_ms"] / table["p10_ms"]
    is_base = (table["runtime"] == BASELINE[0]) & (table["variant"] == BASELINE[1])
    base = table.loc[is_base, keys].assign(baseline_ms=table["median_ms"], baseline_spread=spread)
    others = table.loc[~is_base].assign(spread=spread).merge(base, on=keys, how="inner")
    others["speedup"] = others["baseline_ms"] / others["median_ms"]
    others["noisy"] = others[["spread", "baseline_spread"]].max(axis=1) > limit
    others["engine"] = engine_labels(others)
    return others


def speedup_table(table: pd.DataFrame) -> pd.DataFrame:
    """Return, per model, batch and size, how many times faster each engine is than PyTorch eager.

    Each engine is compared with PyTorch eager on the same device; values above 1 mean faster.
    """
    others = _against_baseline(table, NOISE_LIMIT)
    return others.pivot_table(index=["model", "batch", "height"], columns="engine", values="speedup")


def engine_labels(table: pd.DataFrame) -> pd.Series:
    """Return each row's engine label, such as ``onnxruntime fixed (cpu)`` (as :attr:`Case.engine`)."""
    return table["runtime"] + " " + table["variant"] + " (" + table["device"] + ")"


def _engine_colours(table: pd.DataFrame) -> dict[str, str]:
    """Give each engine the same matplotlib colour in every plot of ``table``."""
    return {engine: f"C{i % 10}" for i, engine in enumerate(dict.fromkeys(engine_labels(table)))}


def plot_latency(table: pd.DataFrame, batch: int) -> Figure:
    """Plot median latency (with the p10-p90 range) against input size, one panel per model, log-log."""
    import matplotlib.pyplot as plt

    rows = table[table["batch"] == batch]
    if rows.empty:
        found = sorted(table["batch"].unique())
        raise ValueError(f"No results for batch {batch}; the table has batches {found}.")
    models = list(dict.fromkeys(rows["model"]))
    colours = _engine_colours(table)
    fig, axes = plt.subplots(1, len(models), figsize=(5.6 * len(models), 4.2), squeeze=False)
    for ax, model in zip(axes[0], models):
        part = rows[rows["model"] == model].assign(engine=engine_labels)
        for engine, line in part.groupby("engine", sort=False):
            line = line.sort_values("height")
            error = [line["median_ms"] - line["p10_ms"], line["p90_ms"] - line["median_ms"]]
            ax.errorbar(line["height"], line["median_ms"], yerr=error, marker="o", markersize=3.5,
                        capsize=2, linewidth=1.2, label=engine, color=colours[engine])
        sizes = sorted(part["height"].unique())
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(sizes, [str(s) for s in sizes], fontsize=8)
        ax.minorticks_off()
        ax.set_xlabel("input height = width (pixels)")
        ax.set_ylabel("median latency per batch (ms)")
        ax.set_title(f"{model}, batch {batch}")
        ax.grid(True, which="major", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_speedup(table: pd.DataFrame, limit: float | None = None) -> Figure:
    """Plot each engine's speed-up over PyTorch eager against input size, one panel per model and batch.

    The y axis is logarithmic, so that 2x faster and 2x slower lie equally far from the line at 1.
    With ``limit``, points where either timing's p90/p10 exceeds it are drawn hollow: too noisy
    to read anything from.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    speedups = speedup_table(table)
    noisy = None
    if limit is not None:
        noisy = _against_baseline(table, limit).pivot_table(
            index=["model", "batch", "height"], columns="engine", values="noisy", aggfunc="max")
    if speedups.empty:
        raise ValueError("The table has no PyTorch eager rows to compare with.")
    colours = _engine_colours(table)
    speedups = speedups[[engine for engine in colours if engine in speedups.columns]]
    present = set(speedups.index.get_level_values("model"))
    models = [model for model in dict.fromkeys(table["model"]) if model in present]
    low, high = np.log2(np.nanmin(speedups.to_numpy())), np.log2(np.nanmax(speedups.to_numpy()))
    ticks = [2.0**k for k in range(int(np.floor(min(low, 0))), int(np.ceil(max(high, 0))) + 1)]
    batches = sorted(speedups.index.get_level_values("batch").unique())
    fig, axes = plt.subplots(len(batches), len(models), figsize=(5.6 * len(models), 3.6 * len(batches)),
                             squeeze=False, sharey=True)
    for row, batch in enumerate(batches):
        for col, model in enumerate(models):
            ax = axes[row][col]
            part = speedups.loc[(model, batch)].dropna(axis=1, how="all")
            for engine in part.columns:
                ax.plot(part.index, part[engine], marker="o", markersize=3.5, linewidth=1.2, label=engine,
                        color=colours[engine])
                if noisy is not None:
                    flagged = noisy.loc[(model, batch), engine].reindex(part.index) == True  # noqa: E712
                    ax.plot(part.index[flagged], part[engine][flagged], linestyle="none", marker="o",
                            markersize=7, markerfacecolor="white", color=colours[engine])
            ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.minorticks_off()
            ax.set_xticks(list(part.index), [str(s) for s in part.index], fontsize=8)
            ax.set_yticks(ticks, [f"{t:g}" for t in ticks], fontsize=8)
            ax.set_title(f"{model}, batch {batch}")
            ax.set_xlabel("input height = width (pixels)")
            ax.set_ylabel("speed-up over PyTorch eager (×)")
            ax.grid(True, alpha=0.3)
    axes[0][0].legend(fontsize=7)
    if limit is not None:
        fig.suptitle(f"hollow points: p90/p10 above {limit:g}, too noisy to judge", fontsize=9)
    fig.tight_layout()
    return fig


def plot_spread(table: pd.DataFrame, limit: float = NOISE_LIMIT) -> Figure:
    """Plot every case's spread (p90 / p10) against its median, with the ``limit`` drawn across.

    Points above the line are cases whose median the findings do not trust.
    """
    import matplotlib.pyplot as plt

    colours = _engine_colours(table)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for engine, part in table.assign(engine=engine_labels).groupby("engine", sort=False):
        ax.scatter(part["median_ms"], part["p90_ms"] / part["p10_ms"], s=14, label=engine,
                   color=colours[engine])
    ax.axhline(limit, color="black", linewidth=0.8, linestyle="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("median latency per batch (ms)")
    ax.set_ylabel("spread, p90 / p10")
    ax.set_title(f"Spread of every case (dashed: {limit:g}, the limit for a verdict)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def per_image(table: pd.DataFrame) -> pd.DataFrame:
    """Return ``table`` with every time divided by the batch size: milliseconds per image."""
    times = [column for column in ("median_ms", "p10_ms", "p90_ms", "first_ms") if column in table]
    return table.assign(**{column: table[column] / table["batch"] for column in times})


def _timing(row: pd.Series) -> Timing:
    return Timing(int(row["repeats"]), row["median_ms"], row["p10_ms"], row["p90_ms"],
                  row.get("first_ms", float("nan")))


JUDGED_COLUMNS = ("baseline_ms", "candidate_ms", "speedup", "baseline_spread", "candidate_spread",
                  "verdict")


def judge(
    table: pd.DataFrame, column: str, candidate: object, baseline: object, *, limit: float = NOISE_LIMIT
) -> pd.DataFrame:
    """Compare the rows where ``column`` equals ``candidate`` with the matching ``baseline`` rows.

    ``column`` is ``"engine"`` (labels such as ``"pytorch eager (cpu)"``) or ``"batch"`` (use
    :func:`per_image` first); rows match on the other columns of model, engine, batch and height.
    Returns one row per matched case: both medians, the speed-up (baseline median / candidate
    median), both spreads and the :func:`course_utils.timing.verdict`, which is ``"too noisy"``
    where either spread is above ``limit``.
    """
    import pandas as pd

    table = table.assign(engine=engine_labels(table))
    keys = [key for key in ("model", "engine", "batch", "height") if key != column]
    chosen = table[table[column] == candidate].set_index(keys)
    base = table[table[column] == baseline].set_index(keys)
    rows = {}
    for key in chosen.index.intersection(base.index, sort=False):
        mine, theirs = _timing(chosen.loc[key]), _timing(base.loc[key])
        rows[key] = {"baseline_ms": theirs.median_ms, "candidate_ms": mine.median_ms,
                     "speedup": theirs.median_ms / mine.median_ms, "baseline_spread": theirs.spread,
                     "candidate_spread": mine.spread, "verdict": verdict(mine, theirs, limit)}
    index = pd.MultiIndex.from_tuples(list(rows) or [(None,) * len(keys)], names=keys)[:len(rows)]
    judged = pd.DataFrame(list(rows.values()), index=index, columns=JUDGED_COLUMNS)
    names = [str(value) if column == "engine" else f"{column} {value}" for value in (candidate, baseline)]
    judged.attrs.update(candidate=names[0], baseline=names[1], limit=limit)
    return judged


def summarise(judged: pd.DataFrame, *, min_judged: float = 0.5) -> str:
    """Write the finding of :func:`judge`'s table in one sentence, or say why there is none.

    Cases marked too noisy are left out. When fewer than ``min_judged`` of the cases are left,
    the sentence withholds the conclusion and says why.
    """
    candidate, baseline, limit = (judged.attrs[key] for key in ("candidate", "baseline", "limit"))
    what = f"{candidate} against {baseline}"
    if judged.empty:
        return f"{what}: no matching cases in this grid."
    worst = judged[["baseline_spread", "candidate_spread"]].max(axis=1)
    if len(judged) == 1:
        row = judged.iloc[0]
        return state_verdict(what, row["verdict"], row["candidate_ms"], row["baseline_ms"],
                             worst.iloc[0], limit)
    counts = judged["verdict"].value_counts()
    noisy, clean = counts.get("too noisy", 0), judged[judged["verdict"] != "too noisy"]
    if clean.empty or len(clean) < min_judged * len(judged):
        return (f"{what}: no conclusion. {noisy} of {len(judged)} cases were too noisy to judge "
                f"(p90/p10 up to {worst.max():.1f}, above the limit of {limit:g}): something else "
                "used the CPU while they were timed. Rerun on a quiet machine.")
    speedup = clean["speedup"]
    spread = (f"{speedup.iloc[0]:.2f}x" if len(clean) == 1 else
              f"{speedup.min():.2f}x to {speedup.max():.2f}x (median {speedup.median():.2f}x)")
    text = (f"{what}: faster in {counts.get('faster', 0)}, slower in {counts.get('slower', 0)}, "
            f"no clear difference in {counts.get('no clear difference', 0)} of {len(clean)} judged "
            f"case(s); speed-up {spread}")
    if noisy:
        text += f". {noisy} more case(s) left out as too noisy (p90/p10 above {limit:g})"
    return text + "."


def speedup_grid(judged: pd.DataFrame) -> pd.DataFrame:
    """Return :func:`judge`'s speed-ups with one column per input size; noisy cases read ``"noisy"``."""
    shown = judged["speedup"].round(2).astype(object).where(judged["verdict"] != "too noisy", "noisy")
    return shown.unstack("height")


def verdict_counts(judged: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Count each verdict of several :func:`judge` tables, one row per name, with the judged speed-ups."""
    import pandas as pd

    rows = {}
    for name, table in judged.items():
        counts = table["verdict"].value_counts()
        clean = table.loc[table["verdict"] != "too noisy", "speedup"]
        rows[name] = {**{v: int(counts.get(v, 0)) for v in VERDICTS},
                      "median speed-up (judged)": round(clean.median(), 2) if len(clean) else None}
    return pd.DataFrame.from_dict(rows, orient="index")


@dataclass(frozen=True)
class MemorySpec:
    """What the memory probe loads and runs in its own process."""

    runtime: str
    model: str
    batch: int
    size: int
    threads: int
    runs: int = 5
    onnx_path: str | None = None
    # The deployed pipeline (notebook 09): when given, every run decodes and preprocesses these
    # image files (course_utils.preprocess, one batch of `batch` images), runs the session and
    # takes softmax and top-5 (course_utils.inference); onnxruntime only, and without torch.
    images: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "images", tuple(str(p) for p in self.images))


def measure_peak_memory(spec: MemorySpec, timeout_s: float = 600.0) -> dict[str, float]:
    """Run ``spec`` in a fresh Python process and return its peak resident memory in MB at each stage.

    Stages: after the imports the runtime needs (``imports``), after loading the
    model or creating the session (``loaded``), after ``runs`` inferences
    (``inference``). A fresh process is needed because a peak never goes down:
    in the notebook's own process it would include everything run before
    (see :func:`peak_rss_mb`). PyTorch builds the architecture with torchvision's default
    initialisation: weight values do not change memory use. With ``spec.images`` the whole
    deployed pipeline runs (decode, preprocess, session, top-5) and the probe fails if it
    imported torch.
    """
    if spec.runtime not in RUNTIMES:
        raise ValueError(f"Unknown runtime {spec.runtime!r}; use {list(RUNTIMES)}.")
    if spec.images and (spec.runtime != "onnxruntime" or len(spec.images) != spec.batch):
        raise ValueError(f"The pipeline probe runs onnxruntime on `batch` images; got runtime "
                         f"{spec.runtime!r}, batch {spec.batch} and {len(spec.images)} images.")
    if spec.runtime == "onnxruntime" and not (spec.onnx_path and Path(spec.onnx_path).is_file()):
        shown = display_path(spec.onnx_path) if spec.onnx_path else "(none given)"
        raise FileNotFoundError(f"The ONNX file {shown} does not exist: export it, then pass its onnx_path.")
    completed = subprocess.run(
        [sys.executable, "-m", "course_utils.benchmark", json.dumps(asdict(spec))],
        capture_output=True, text=True, timeout=timeout_s, check=False,
    )
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"The memory probe for {spec.runtime} failed ({last}).")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    """Return this process's peak resident memory in MB.

    On Linux this is ``VmHWM`` from ``/proc/self/status``, the high-water mark
    of the current process image. ``ru_maxrss`` is not used there because it
    survives ``fork`` + ``exec``: a child started from a large process (a
    Jupyter kernel) would report its parent's peak.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10  # kB
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB elsewhere


def _probe(spec: MemorySpec) -> dict[str, float]:
    """Load and run one runtime in this (fresh) process, recording the peak RSS after each stage."""
    import numpy as np

    peaks = {}
    shape = (spec.batch, 3, spec.size, spec.size)
    if spec.runtime == "pytorch":
        import torch
        import torchvision

        peaks["imports"] = peak_rss_mb()
        torch.set_num_threads(spec.threads)
        model = getattr(torchvision.models, spec.model)().eval()
        peaks["loaded"] = peak_rss_mb()
        x = torch.from_numpy(np.random.default_rng(0).standard_normal(shape, dtype=np.float32))
        with torch.inference_mode():
            for _ in range(spec.runs):
                model(x)
    else:
        import onnxruntime as ort

        if spec.images:
            from course_utils.inference import softmax, top_k
            from course_utils.preprocess import load_batch
        peaks["imports"] = peak_rss_mb()
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = spec.threads, 1
        session = ort.InferenceSession(spec.onnx_path, options, providers=["CPUExecutionProvider"])
        peaks["loaded"] = peak_rss_mb()
        x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
        name = session.get_inputs()[0].name
        for _ in range(spec.runs):
            if spec.images:
                x = load_batch(spec.images, crop=spec.size)[0]
                top_k(softmax(session.run(None, {name: x})[0]), 5)
            else:
                session.run(None, {name: x})
        if spec.images and "torch" in sys.modules:
            raise RuntimeError("the deployed pipeline imported torch")
    peaks["inference"] = peak_rss_mb()
    return peaks


def memory_table(results: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Return the probes' peaks in MB, with what loading and inference added over the imports."""
    import pandas as pd

    table = pd.DataFrame(results).T[["imports", "loaded", "inference"]]
    table.columns = ["peak after imports", "peak after loading", "peak after inference"]
    table["added by model + inference"] = table["peak after inference"] - table["peak after imports"]
    table.index.name = "runtime"
    return table.round(0).astype(int)


if __name__ == "__main__":
    print(json.dumps(_probe(MemorySpec(**json.loads(sys.argv[1])))))
