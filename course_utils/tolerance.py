"""The course's one tolerance policy for comparing two float32 engines (taught in notebook 06).

PyTorch, ONNX Runtime, an onnxsim-simplified file and onnxruntime-web all compute a network in
float32, whose 24-bit mantissa resolves about 1.2e-7 of a value. A convolution or a linear layer
is a long sum of products, and each engine adds those products in its own order (other kernels,
other vector widths, another split across threads). The result is rounded at other points, so
two correct engines disagree by rounding errors that scale with the *largest* values that went
into the sums and grow with the length of the sums and the depth of the network. An element
that happens to be small (a logit of 0.0085) carries the rounding error of the large ones.

The bound is therefore one number for the whole tensor, relative to its largest magnitude::

    max |actual - reference|  <=  FLOAT32_RTOL * max |reference|

``FLOAT32_RTOL`` is 1e-4, about 840 float32 rounding steps of the largest value. It was chosen
from measurements: across the test matrix (PyTorch's AVX-512 and AVX2 kernels, 1 and 2 threads,
stand-in and trained-like weights), the worst engine pair used about a tenth of it, and feeding
the channels in BGR order instead of RGB lands several thousand times above it.

int8 models are a different question: they are judged by their own measures (SQNR, cosine,
agreement) in notebook 09, never by this bound.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FLOAT32_RTOL = 1e-4


@dataclass(frozen=True)
class Agreement:
    """How far ``actual`` lies from ``reference``, measured against the policy's bound."""

    max_abs: float
    scale: float
    rtol: float

    @property
    def bound(self) -> float:
        """The largest absolute difference allowed: ``rtol`` times the largest ``|reference|``."""
        return self.rtol * self.scale

    @property
    def max_rel(self) -> float:
        """The largest absolute difference relative to the largest ``|reference|``."""
        return self.max_abs / self.scale if self.scale > 0 else float(self.max_abs > 0) * np.inf

    @property
    def used(self) -> float:
        """The fraction of the tolerance that the largest difference uses (1.0 = at the limit)."""
        return self.max_abs / self.bound if self.bound > 0 else float(self.max_abs > 0) * np.inf

    @property
    def ok(self) -> bool:
        """True when every element lies within the bound."""
        return self.max_abs <= self.bound

    def __str__(self) -> str:
        return (f"max |difference| {self.max_abs:.1e} = {self.max_rel:.1e} of the largest |value| "
                f"{self.scale:.3g}; uses {self.used:.1%} of the tolerance {self.rtol:g}")


def tolerance(reference: np.ndarray, rtol: float = FLOAT32_RTOL) -> float:
    """Return the absolute bound for differences from ``reference``: ``rtol * max |reference|``."""
    reference = np.asarray(reference, dtype=np.float64)
    return float(rtol * np.abs(reference).max()) if reference.size else 0.0


def compare(actual: np.ndarray, reference: np.ndarray, rtol: float = FLOAT32_RTOL) -> Agreement:
    """Measure ``actual`` against ``reference`` (same shape) in float64, adding no rounding of its own."""
    actual, reference = _as_float64(actual), _as_float64(reference)
    if actual.shape != reference.shape:
        raise ValueError(f"Cannot compare shapes {list(actual.shape)} and {list(reference.shape)}.")
    if not (np.isfinite(actual).all() and np.isfinite(reference).all()):
        return Agreement(np.inf, float(np.nanmax(np.abs(reference), initial=0.0)), rtol)
    if actual.size == 0:
        return Agreement(0.0, 0.0, rtol)
    return Agreement(float(np.abs(actual - reference).max()), float(np.abs(reference).max()), rtol)


def assert_close(
    actual: np.ndarray, reference: np.ndarray, *, what: str = "", rtol: float = FLOAT32_RTOL
) -> Agreement:
    """Assert the policy and return the :class:`Agreement`; the error names ``what`` and the worst element.

    This is ``np.testing.assert_allclose(actual, reference, rtol=0, atol=tolerance(reference))``.
    """
    agreement = compare(actual, reference, rtol)
    _log(what, agreement)
    np.testing.assert_allclose(
        _as_float64(actual), _as_float64(reference), rtol=0, atol=agreement.bound,
        err_msg=f"{what or 'the two engines'} disagree beyond the float32 tolerance: {agreement}",
    )
    return agreement


def _log(what: str, agreement: Agreement) -> None:
    """Append the comparison to the JSON-lines file in ``COURSE_TOLERANCE_LOG``, if set.

    The portability matrix (``make test-matrix``) sets it to report, per notebook, the largest
    share of the tolerance used on this machine.
    """
    target = os.environ.get("COURSE_TOLERANCE_LOG")
    if not target:
        return
    record = {"what": what, "used": agreement.used, "max_rel": agreement.max_rel}
    with Path(target).open("a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")


def same_top_k(
    actual: np.ndarray, reference: np.ndarray, k: int = 5, rtol: float = FLOAT32_RTOL
) -> np.ndarray:
    """Return, per row of two logit (or probability) arrays, whether their top-``k`` classes agree.

    Classes whose reference values lie within the policy's bound of the k-th largest are near
    ties: rounding may order them either way, so swapping one of them for another counts as
    agreement. Without that, two correct engines could "disagree" on a model (such as the
    stand-in) whose 5th and 6th logits are nearly equal.
    """
    actual, reference = np.atleast_2d(_as_float64(actual)), np.atleast_2d(_as_float64(reference))
    if actual.shape != reference.shape:
        raise ValueError(f"Cannot compare shapes {list(actual.shape)} and {list(reference.shape)}.")
    if not 1 <= k <= reference.shape[-1]:
        raise ValueError(f"k must be between 1 and {reference.shape[-1]}, got {k}.")
    result = np.empty(len(reference), dtype=bool)
    for row, (got, want) in enumerate(zip(actual, reference)):
        bound = tolerance(want, rtol)
        want_order = np.argsort(-want, kind="stable")
        kth = want[want_order[k - 1]]
        certain = set(np.flatnonzero(want > kth + 2 * bound).tolist())  # must be in any top-k
        possible = set(np.flatnonzero(want >= kth - 2 * bound).tolist())  # may be in a top-k
        got_top = set(np.argsort(-got, kind="stable")[:k].tolist())
        result[row] = certain <= got_top <= possible
    return result


def _as_float64(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)
