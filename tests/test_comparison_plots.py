"""The comparison figures of notebooks 06 and 07: what they draw, and what they refuse."""

from __future__ import annotations

import io

import numpy as np
import pytest

from course_utils.comparison_plots import plot_differences, plot_running_vs_batch


def test_differences_histogram_marks_the_bound_and_counts_exact_zeros():
    rng = np.random.default_rng(0)
    small = rng.uniform(1e-7, 1e-5, size=(4, 50))
    small[0, :3] = 0.0
    fig = plot_differences({"correct": small, "bug": rng.uniform(0.1, 3.0, size=200)}, bound=1e-3)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels[0] == "correct: 200 values, 3 exactly 0 (not shown)"
    assert labels[1] == "bug: 200 values"
    assert labels[2] == "tolerance: 1.0e-03"
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert dashed and dashed[0].get_xdata()[0] == pytest.approx(1e-3)
    fig.savefig(io.BytesIO(), format="png")  # renders without pyplot


def test_differences_histogram_copes_with_all_zeros_and_refuses_a_bad_bound():
    fig = plot_differences({"identical": np.zeros(10)}, bound=2e-4, title="same bits")
    assert fig.axes[0].get_title() == "same bits"
    with pytest.raises(ValueError, match="bound must be a positive number"):
        plot_differences({"x": np.ones(3)}, bound=0.0)


def test_running_vs_batch_draws_one_point_per_channel_on_two_panels():
    rng = np.random.default_rng(1)
    channels = 64
    fig = plot_running_vs_batch(rng.normal(size=channels), rng.uniform(0.5, 2, channels),
                                rng.normal(size=channels), rng.uniform(0.1, 3, channels), title="bn1")
    mean_ax, var_ax = fig.axes
    assert mean_ax.get_title() == "mean" and var_ax.get_title() == "variance"
    assert var_ax.get_xscale() == "log" and mean_ax.get_xscale() == "linear"
    assert len(mean_ax.collections[0].get_offsets()) == channels
    assert fig.get_suptitle() == "bn1"


def test_running_vs_batch_refuses_mismatched_or_impossible_statistics():
    with pytest.raises(ValueError, match="one value per channel"):
        plot_running_vs_batch(np.zeros(3), np.ones(3), np.zeros(4), np.ones(3))
    with pytest.raises(ValueError, match="positive"):
        plot_running_vs_batch(np.zeros(3), np.ones(3), np.zeros(3), np.array([1.0, 0.0, 1.0]))
