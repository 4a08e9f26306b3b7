"""The tolerance policy: one bound per tensor, relative to its largest value."""

from __future__ import annotations

import json

import numpy as np
import pytest

from course_utils.tolerance import FLOAT32_RTOL, assert_close, compare, same_top_k, tolerance


def test_bound_scales_with_the_largest_value_not_each_element():
    reference = np.array([20.0, 0.0085440, -3.0], dtype=np.float32)
    actual = reference + np.array([0.0, 2.1e-5, 0.0], dtype=np.float32)  # the logit that failed per-element
    agreement = assert_close(actual, reference, what="a small logit")
    assert agreement.bound == pytest.approx(FLOAT32_RTOL * 20.0)
    assert agreement.used == pytest.approx(2.1e-5 / (FLOAT32_RTOL * 20.0), rel=1e-3)
    assert agreement.ok and "of the tolerance" in str(agreement)


def test_a_real_mismatch_fails_with_a_message_that_names_it():
    reference = np.linspace(-5, 5, 100)
    with pytest.raises(AssertionError, match="BGR file disagree beyond the float32 tolerance"):
        assert_close(reference[::-1], reference, what="BGR file")


def test_compare_handles_nan_shape_and_empty():
    assert not compare(np.array([np.nan]), np.array([1.0])).ok
    assert compare(np.zeros(0), np.zeros(0)).ok
    with pytest.raises(ValueError, match="Cannot compare shapes"):
        compare(np.zeros(3), np.zeros(4))
    assert tolerance(np.array([-8.0, 2.0])) == pytest.approx(8 * FLOAT32_RTOL)


def test_same_top_k_treats_near_ties_as_agreement():
    reference = np.array([[9.0, 5.0, 4.0, 3.0, 2.0, 1.0, 1.0 - 1e-6, 0.0]])
    swapped = reference.copy()
    swapped[0, 5], swapped[0, 6] = reference[0, 6], reference[0, 5]  # 5th and 6th trade places
    assert same_top_k(swapped, reference, k=5).tolist() == [True]
    wrong = reference.copy()
    wrong[0, 7] = 8.0  # a class far below the top 5 jumps into it
    assert same_top_k(wrong, reference, k=5).tolist() == [False]
    with pytest.raises(ValueError, match="k must be"):
        same_top_k(reference, reference, k=9)


def test_same_top_k_on_unsorted_logits():
    reference = np.random.default_rng(0).normal(size=(3, 1000))  # classes in no particular order
    assert same_top_k(reference, reference, k=5).tolist() == [True, True, True]
    nudged = reference + 1e-7 * np.abs(reference).max()  # rounding-sized differences
    assert same_top_k(nudged, reference, k=5).all()
    wrong = reference.copy()
    wrong[1, np.argmin(reference[1])] = reference[1].max() + 1.0  # the last class jumps to first
    assert same_top_k(wrong, reference, k=5).tolist() == [True, False, True]


def test_comparisons_are_logged_when_asked(tmp_path, monkeypatch):
    log = tmp_path / "tolerance.jsonl"
    monkeypatch.setenv("COURSE_TOLERANCE_LOG", str(log))
    assert_close(np.ones(3) * (1 + 1e-6), np.ones(3), what="logged")
    record = json.loads(log.read_text().splitlines()[0])
    assert record["what"] == "logged" and 0 < record["used"] < 0.1
