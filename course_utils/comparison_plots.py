"""Figures that set two sets of numbers side by side, where a picture compares better than a table.

:func:`plot_differences` draws every element's distance from a reference against the tolerance
(notebook 06 uses it for the logits of correct engines beside a real bug);
:func:`plot_running_vs_batch` draws a BatchNorm layer's running statistics against those of one
batch, channel by channel (notebook 07).

Figures are built with :class:`matplotlib.figure.Figure`, not ``pyplot``: a notebook shows the
returned figure once, and no figure is left open between runs.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from matplotlib.figure import Figure

DPI = 80


def plot_differences(
    differences: Mapping[str, np.ndarray], bound: float, *, bins_per_decade: int = 6, title: str = ""
) -> Figure:
    """Return a histogram, on a logarithmic axis, of every ``|difference|`` of each named array.

    A dashed line marks ``bound``, the largest difference the tolerance allows. Exact zeros have
    no place on a logarithmic axis; the legend says how many each array holds.
    """
    if bound <= 0 or not np.isfinite(bound):
        raise ValueError(f"bound must be a positive number, got {bound!r}.")
    if bins_per_decade < 1:
        raise ValueError(f"bins_per_decade must be at least 1, got {bins_per_decade}.")
    values = {name: np.abs(np.asarray(d, dtype=np.float64)).ravel() for name, d in differences.items()}
    positive = np.concatenate([v[(v > 0) & np.isfinite(v)] for v in values.values()] + [[bound]])
    low, high = np.floor(np.log10(positive.min())), np.ceil(np.log10(positive.max()))
    high = max(high, low + 1)
    edges = np.logspace(low, high, int(high - low) * bins_per_decade + 1)

    fig = Figure(figsize=(9, 3.6), dpi=DPI)
    ax = fig.subplots()
    for index, (name, v) in enumerate(values.items()):
        zeros = int(np.count_nonzero(v == 0))
        label = f"{name}: {v.size:,} values" + (f", {zeros:,} exactly 0 (not shown)" if zeros else "")
        ax.hist(v[v > 0], bins=edges, histtype="stepfilled", alpha=0.35, color=f"C{index}")
        ax.hist(v[v > 0], bins=edges, histtype="step", linewidth=1.5, color=f"C{index}", label=label)
    ax.axvline(bound, color="black", linestyle="--", linewidth=1.2, label=f"tolerance: {bound:.1e}")
    ax.set_xscale("log")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.5)  # room for the legend above the bars
    ax.set_xlabel("|difference| of one element (log scale)")
    ax.set_ylabel("number of elements")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", framealpha=0.9)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_running_vs_batch(
    running_mean: np.ndarray,
    running_var: np.ndarray,
    batch_mean: np.ndarray,
    batch_var: np.ndarray,
    *,
    title: str = "",
) -> Figure:
    """Return two panels, mean and variance, with one point per channel: running (x) against batch (y).

    Eval mode normalises each channel with the running value, train mode with the batch value;
    a point on the diagonal is a channel where both modes agree. Variances are drawn on
    logarithmic axes, because they span orders of magnitude.
    """
    arrays = [np.asarray(a, dtype=np.float64).ravel()
              for a in (running_mean, running_var, batch_mean, batch_var)]
    sizes = [a.size for a in arrays]
    if len(set(sizes)) != 1:
        raise ValueError(f"Expected one value per channel in each array, got sizes {sizes}.")
    r_mean, r_var, b_mean, b_var = arrays
    if (r_var <= 0).any() or (b_var <= 0).any():
        raise ValueError("Variances must be positive to be drawn on a logarithmic axis.")

    fig = Figure(figsize=(9, 4), dpi=DPI)
    left, right = fig.subplots(1, 2)
    for ax, x, y, name in ((left, r_mean, b_mean, "mean"), (right, r_var, b_var, "variance")):
        low, high = min(x.min(), y.min()), max(x.max(), y.max())
        pad = 0.05 * (high - low) if name == "mean" else 0.0
        ax.plot([low - pad, high + pad], [low - pad, high + pad], color="grey", linestyle="--",
                linewidth=1, label="running = batch")
        ax.scatter(x, y, s=18, color="C0" if name == "mean" else "C1", alpha=0.8,
                   label=f"{x.size} channels")
        if name == "variance":
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel(f"running {name} (what eval mode uses)")
        ax.set_ylabel(f"{name} of this batch (what train mode uses)")
        ax.set_title(name, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
