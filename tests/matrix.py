"""The portability matrix: run the lessons under the conditions a learner's machine brings.

``make test`` is the default configuration (stand-in weights, quick mode, this machine's CPU and
threads, the sample images). ``make test-matrix`` runs this script, which repeats the lessons
that each condition concerns:

* ``threads1``: one intra-op thread for PyTorch and ONNX Runtime (``COURSE_THREADS=1``);
  stored outputs compared.
* ``avx2``: PyTorch's kernels limited to AVX2 (``ONEDNN_MAX_CPU_ISA``, ``ATEN_CPU_CAPABILITY``),
  as on an older or smaller CPU; stored outputs compared. ONNX Runtime picks its kernels from
  the CPU with no such switch, so for other CPUs the promise rests on the tolerance's margin.
* ``hostile``: ``COURSE_IMAGES`` points at a generated folder of empty, truncated, corrupt,
  oversized, oddly named and mislabelled files (``tests/hostile_folder.py``). Outputs differ
  by design, so only the cells' success and assertions count (``--nbval-lax``).
* ``weights``: copies of the lessons are refreshed as another machine would publish them: with
  other, trained-like weights (``tests/fake_weights.py``), on one thread, with PyTorch's kernels
  limited to AVX2, twice in a row in one kernel as "Run All" pressed twice. The refreshed copies
  are then checked here with the stand-ins, every thread and the native kernels. This proves that
  no compared output depends on the weights, the thread count or the instruction set, and that
  every lesson can run twice. The tracked notebooks are never executed in place.

``make test-matrix`` runs ``hostile`` and ``weights``; the ``weights`` refresh already runs every
lesson on one thread and on AVX2 kernels, so ``threads1`` and ``avx2``, which tell those two
apart, run on request (``--config threads1 --config avx2``) and keep ``.ci/run`` under 45 minutes.

Every float32 engine comparison made through ``course_utils.tolerance.assert_close`` is logged,
and the summary gives each lesson's largest share of the tolerance across the configurations.

    python tests/matrix.py                      # the matrix: hostile and weights
    python tests/matrix.py --config avx2        # one of them
    python tests/matrix.py --notebooks 04 06    # only these lessons (by number)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from course_utils.browser import chromium_missing  # noqa: E402
import fake_weights  # noqa: E402
import hostile_folder  # noqa: E402
from run_twice import run_twice  # noqa: E402

WORK = REPO / "results" / "matrix"
TEST_ENV = {"COURSE_WEIGHTS": "standin", "COURSE_QUICK": "1", "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg"}
NBVAL = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", str(REPO / "tests" / "nbval_sanitize.cfg"),
         "-p", "no:cacheprovider", "-q"]
# Lessons that compare float32 engines or depend on thread counts, and lessons that read the images.
NUMERIC = ("02", "03", "04", "05", "06", "07", "08", "10")
# Python's threads and PyTorch's kernels change the Python side only: 10's browser comparison is
# covered by the other configurations and by the site test, so these two leave it out (3 minutes),
# and AVX2 leaves out 05, which times the kernels but compares no float32 engines.
THREADED = tuple(n for n in NUMERIC if n != "10")
PYTORCH_NUMERIC = tuple(n for n in THREADED if n != "05")
READS_IMAGES = ("04", "06", "07", "09", "10", "11")
AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
EVERY_LESSON = ("01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11")
NEEDS_BROWSER = ("10",)


@dataclass(frozen=True)
class Config:
    """One condition of the matrix: environment, the lessons it concerns, how they are checked."""

    name: str
    purpose: str
    lessons: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    lax: bool = False
    refresh: bool = False
    refresh_env: dict[str, str] = field(default_factory=dict)


CONFIGS = (
    Config("default", "this machine as make test runs it, outputs compared", NUMERIC),
    Config("threads1", "1 thread, outputs compared", THREADED, {"COURSE_THREADS": "1"}),
    Config("avx2", "PyTorch kernels limited to AVX2, outputs compared", PYTORCH_NUMERIC, AVX2),
    Config("hostile", "hostile image folder, cells and assertions only", READS_IMAGES,
           {"COURSE_IMAGES": str(WORK / "hostile_images")}, lax=True),
    Config("weights", "refreshed with other weights, 1 thread and AVX2 kernels, run twice; "
           "then compared with stand-ins, every thread, native kernels", EVERY_LESSON, refresh=True,
           refresh_env={"COURSE_THREADS": "1", **AVX2}),
)
# make test already runs the default configuration; the matrix adds these unless asked.
MATRIX = ("hostile", "weights")


@dataclass
class Outcome:
    """One lesson under one configuration."""

    config: str
    lesson: str
    passed: bool
    seconds: float
    tolerance_used: float | None
    detail: str = ""


def lessons(numbers: list[str] | None) -> list[Path]:
    """The lesson notebooks (not the solutions), optionally only those numbered in ``numbers``.

    Notebook 10 drives Chromium; where it is missing, it is left out with one line saying so,
    as ``make test`` does.
    """
    found = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    chosen = [p for p in found if numbers is None or p.name[:2] in numbers]
    missing = chromium_missing()
    if missing is not None and any(p.name[:2] in NEEDS_BROWSER for p in chosen):
        print(f"notebook 10 is left out: {missing}")
        chosen = [p for p in chosen if p.name[:2] not in NEEDS_BROWSER]
    return chosen


def _environment(config: Config, log: Path) -> dict[str, str]:
    env = {**os.environ, **TEST_ENV, **config.env, "COURSE_TOLERANCE_LOG": str(log)}
    for name in ("COURSE_IMAGES", "COURSE_THREADS", "TORCH_HOME"):
        if name not in config.env:
            env.pop(name, None)
    return env


def _largest_share(log: Path) -> float | None:
    if not log.exists():
        return None
    shares = [json.loads(line)["used"] for line in log.read_text(encoding="utf-8").splitlines() if line]
    return max(shares, default=None)


def _nbval(notebook: Path, env: dict[str, str], lax: bool, transcript: Path) -> tuple[bool, str]:
    args = [sys.executable, "-m", "pytest", str(notebook), *NBVAL]
    if lax:
        args = [a if a != "--nbval" else "--nbval-lax" for a in args]
    with transcript.open("w", encoding="utf-8") as out:
        completed = subprocess.run(args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    last = transcript.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return completed.returncode == 0, (last[-1] if last else "no output")


def _refreshed_copy(notebook: Path, folder: Path, env: dict[str, str], extra: dict[str, str]) -> Path:
    """Execute a copy of ``notebook`` twice in one kernel with the fake weights and ``extra``; return the copy."""
    copy = folder / notebook.name
    shutil.copy(notebook, copy)
    refresh_env = {**env, **extra, "TORCH_HOME": str(WORK / "torch_home"), "COURSE_WEIGHTS": "auto"}
    run_twice(copy, save_to=copy, env=refresh_env)
    return copy


def run_config(config: Config, notebooks: list[Path]) -> list[Outcome]:
    """Run every lesson ``config`` concerns; one pytest (or refresh) per lesson, so each is timed."""
    folder = WORK / config.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    outcomes = []
    for notebook in notebooks:
        if notebook.name[:2] not in config.lessons:
            continue
        log = folder / f"{notebook.stem}.tolerance.jsonl"
        env = _environment(config, log)
        started = time.perf_counter()
        target, detail = notebook, ""
        if config.refresh:
            try:
                target = _refreshed_copy(notebook, folder, env, config.refresh_env)
            except RuntimeError as error:
                outcomes.append(Outcome(config.name, notebook.stem, False, time.perf_counter() - started,
                                        _largest_share(log), str(error)))
                print(f"  FAILED {config.name:9} {notebook.stem}: {error}", flush=True)
                continue
        passed, detail = _nbval(target, env, config.lax, folder / f"{notebook.stem}.log")
        seconds = time.perf_counter() - started
        outcomes.append(Outcome(config.name, notebook.stem, passed, seconds, _largest_share(log), detail))
        mark = "passed" if passed else "FAILED"
        print(f"  {mark} {config.name:9} {notebook.stem} ({seconds:.0f} s): {detail}", flush=True)
    return outcomes


def summary(outcomes: list[Outcome], wall: dict[str, float]) -> str:
    """A Markdown summary: each configuration's wall time and result, each lesson's tolerance use."""
    lines = ["| configuration | purpose | lessons | failed | wall time |", "|---|---|---|---|---|"]
    purposes = {c.name: c.purpose for c in CONFIGS}
    for name, seconds in wall.items():
        mine = [o for o in outcomes if o.config == name]
        failed = ", ".join(o.lesson[:2] for o in mine if not o.passed) or "none"
        lines.append(f"| {name} | {purposes[name]} | {len(mine)} | {failed} | {seconds / 60:.1f} min |")
    lines += ["", "| lesson | largest share of the float32 tolerance used | in configuration |", "|---|---|---|"]
    for lesson in sorted({o.lesson for o in outcomes}):
        shares = [(o.tolerance_used, o.config) for o in outcomes if o.lesson == lesson and o.tolerance_used is not None]
        if shares:
            share, where = max(shares)
            lines.append(f"| {lesson} | {share:.1%} | {where} |")
        else:
            lines.append(f"| {lesson} | no float32 engine comparison logged | |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", choices=[c.name for c in CONFIGS],
                        help="run only this configuration (repeatable)")
    parser.add_argument("--notebooks", nargs="+", help="lesson numbers, e.g. 04 06")
    options = parser.parse_args()
    chosen = [c for c in CONFIGS if c.name in (options.config or MATRIX)]
    notebooks = lessons(options.notebooks)
    WORK.mkdir(parents=True, exist_ok=True)
    hostile_folder.build(WORK / "hostile_images")
    fake_weights.build(WORK / "torch_home")
    outcomes, wall = [], {}
    for config in chosen:
        print(f"{config.name}: {config.purpose}", flush=True)
        started = time.perf_counter()
        outcomes += run_config(config, notebooks)
        wall[config.name] = time.perf_counter() - started
    report = summary(outcomes, wall)
    (WORK / "summary.md").write_text(report + "\n", encoding="utf-8")
    print(report)
    failed = sum(not o.passed for o in outcomes)
    print(f"{len(outcomes) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
