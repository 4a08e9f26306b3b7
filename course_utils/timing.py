"""One honest timing loop for the whole course (taught in notebook 05, ``05_speed_benchmark``).

Warm-up runs are excluded, every run is timed with ``time.perf_counter``, and the
result reports the median with the 10th and 90th percentiles, so one slow run
(a page fault, another process) cannot move the headline figure. :func:`verdict`
compares two timings and refuses to pick a winner when the runs scattered too much.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

NOISE_LIMIT = 1.5  # p90 / p10 above this: the runs scattered too much for their median to be trusted
VERDICTS = ("faster", "slower", "no clear difference", "too noisy")


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

    @property
    def spread(self) -> float:
        """Return p90 / p10: 1.0 when every run took as long, larger the more they scattered."""
        return self.p90_ms / self.p10_ms if self.p10_ms > 0 else float("inf")

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

    Notebook 05 (``05_speed_benchmark``) teaches this loop; every timing in the course uses it.
    Pass ``synchronize=torch.cuda.synchronize`` for GPU work: CUDA calls return
    before the GPU finishes, so the clock must wait for it at both ends.

    With ``budget_s``, slow calls get fewer runs: the first run's duration
    (usually the slowest) sets how many warm-up and timed runs fit in about
    ``budget_s`` seconds, never fewer than one warm-up and ``min_repeats`` timed
    runs, never more than asked for. ``Timing.repeats`` says how many were timed.
    """
    if repeats < 1 or min_repeats < 1:
        raise ValueError("repeats and min_repeats must be at least 1")
    sync = synchronize or (lambda: None)  # on the CPU there is nothing to wait for
    sync()  # queued GPU work from before must not land in the first run
    start = time.perf_counter()
    fn()
    sync()
    first_ms = (time.perf_counter() - start) * 1e3  # allocation, kernel choice: reported apart
    if budget_s is not None:
        warmup, repeats = budget_runs(first_ms, budget_s, warmup, repeats, min_repeats)
    for _ in range(warmup):  # untimed: caches, allocators and thread pools settle
        fn()
    sync()
    samples = np.empty(repeats)
    for i in range(repeats):  # each run timed on its own, so the spread can be seen
        start = time.perf_counter()
        fn()
        sync()  # stop the clock only when the GPU has finished
        samples[i] = (time.perf_counter() - start) * 1e3
    p10, median, p90 = np.percentile(samples, [10, 50, 90])
    return Timing(repeats, float(median), float(p10), float(p90), first_ms)


def time_once(fn: Callable[[], object]) -> tuple[object, float]:
    """Run ``fn()`` once and return its result with the elapsed milliseconds (e.g. session creation)."""
    start = time.perf_counter()
    result = fn()
    return result, (time.perf_counter() - start) * 1e3


def verdict(candidate: Timing, baseline: Timing, limit: float = NOISE_LIMIT) -> str:
    """Say whether ``candidate`` ran faster than ``baseline``, or why this run cannot tell.

    ``"too noisy"`` when either timing's spread (p90 / p10) is above ``limit``: something else
    used the CPU, and the medians say more about that than about the calls. Otherwise ``"no clear
    difference"`` when the p10-p90 ranges overlap, else ``"faster"`` or ``"slower"`` (by median).
    """
    if max(candidate.spread, baseline.spread) > limit:
        return "too noisy"
    if candidate.p10_ms <= baseline.p90_ms and baseline.p10_ms <= candidate.p90_ms:
        return "no clear difference"
    return "faster" if candidate.median_ms < baseline.median_ms else "slower"


def state_verdict(
    what: str, found: str, candidate_ms: float, baseline_ms: float, worst_spread: float,
    limit: float = NOISE_LIMIT,
) -> str:
    """Write one comparison's verdict as a sentence; a noisy one gets the reason, not a winner."""
    if found == "too noisy":
        return (f"{what}: no conclusion, the runs scattered too much (p90/p10 up to "
                f"{worst_spread:.1f}, above the limit of {limit:g}): something else used the CPU "
                "while they were timed. Rerun on a quiet machine.")
    return (f"{what}: {found} (median {candidate_ms:.2f} ms against {baseline_ms:.2f} ms, "
            f"{baseline_ms / candidate_ms:.2f}x as fast).")


def compare_timings(
    candidate: Timing, baseline: Timing, names: tuple[str, str] = ("candidate", "baseline"),
    limit: float = NOISE_LIMIT,
) -> str:
    """Say in one sentence how ``candidate`` compared with ``baseline``, or why this run cannot tell."""
    return state_verdict(f"{names[0]} against {names[1]}", verdict(candidate, baseline, limit),
                         candidate.median_ms, baseline.median_ms,
                         max(candidate.spread, baseline.spread), limit)
