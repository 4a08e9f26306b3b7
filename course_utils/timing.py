"""One honest timing loop for the whole course.

Warm-up runs are excluded, every run is timed with ``time.perf_counter``, and the
result reports the median with the 10th and 90th percentiles, so one slow run
(a page fault, another process) cannot move the headline figure.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Timing:
    """Summary of repeated runs of one call, in milliseconds."""

    repeats: int
    median_ms: float
    p10_ms: float
    p90_ms: float
    first_ms: float

    def as_dict(self) -> dict[str, float]:
        """Return the fields as a plain dict (one row of a results table)."""
        return asdict(self)

    def __str__(self) -> str:
        return (f"median {self.median_ms:.2f} ms (p10 {self.p10_ms:.2f}, p90 {self.p90_ms:.2f}; "
                f"{self.repeats} runs; first run {self.first_ms:.2f} ms)")


def budget_runs(
    first_ms: float, budget_s: float, warmup: int, repeats: int, min_repeats: int
) -> tuple[int, int]:
    """Return (warm-up runs, timed runs) that fit in ``budget_s`` if each run lasts ``first_ms``.

    Timed runs are cut before warm-up runs, down to ``min_repeats`` timed runs and
    one warm-up run (fewer if fewer were asked for); past that the budget is exceeded.
    """
    affordable = int(budget_s * 1e3 / max(first_ms, 1e-6))
    repeats_cut = max(min(repeats, min_repeats), min(repeats, affordable - warmup))
    warmup_cut = max(min(warmup, 1), min(warmup, affordable - repeats_cut))
    return warmup_cut, repeats_cut


def time_call(
    fn: Callable[[], object],
    *,
    warmup: int = 3,
    repeats: int = 20,
    synchronize: Callable[[], None] | None = None,
    budget_s: float | None = None,
    min_repeats: int = 3,
) -> Timing:
    """Time ``fn()``: one first run (reported apart), ``warmup`` untimed runs, then ``repeats`` timed runs.

    Pass ``synchronize=torch.cuda.synchronize`` for GPU work: CUDA calls return
    before the GPU finishes, so the clock must wait for it at both ends.

    With ``budget_s``, slow calls get fewer runs: the first run's duration
    (usually the slowest) sets how many warm-up and timed runs fit in about
    ``budget_s`` seconds, never fewer than one warm-up and ``min_repeats`` timed
    runs, never more than asked for. ``Timing.repeats`` says how many were timed.
    """
    if repeats < 1 or min_repeats < 1:
        raise ValueError("repeats and min_repeats must be at least 1")
    sync = synchronize or (lambda: None)
    sync()
    start = time.perf_counter()
    fn()
    sync()
    first_ms = (time.perf_counter() - start) * 1e3
    if budget_s is not None:
        warmup, repeats = budget_runs(first_ms, budget_s, warmup, repeats, min_repeats)
    for _ in range(warmup):
        fn()
    sync()
    samples = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        samples[i] = (time.perf_counter() - start) * 1e3
    p10, median, p90 = np.percentile(samples, [10, 50, 90])
    return Timing(repeats, float(median), float(p10), float(p90), first_ms)


def time_once(fn: Callable[[], object]) -> tuple[object, float]:
    """Run ``fn()`` once and return its result with the elapsed milliseconds (e.g. session creation)."""
    start = time.perf_counter()
    result = fn()
    return result, (time.perf_counter() - start) * 1e3
