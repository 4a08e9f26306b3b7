"""Figures of graphs and of the shapes they accept, drawn offline with matplotlib.

- :func:`draw_graph`: the first nodes of an ONNX graph, Netron-style (notebook 02);
- :func:`draw_converter_routes`: converters needed with and without a common format (notebook 01);
- :func:`draw_shape_sweep`: which input shapes an exported file runs on, and what comes out
  (notebook 03).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import onnx
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

# Colours loosely follow Netron's: layers blue, activations red, pooling green, the rest grey.
COLOURS = {
    "Conv": "#3b6fb6", "Gemm": "#3b6fb6", "MatMul": "#3b6fb6", "BatchNormalization": "#3b6fb6",
    "Relu": "#a8322d", "HardSwish": "#a8322d", "HardSigmoid": "#a8322d", "Sigmoid": "#a8322d",
    "MaxPool": "#2f7a4a", "GlobalAveragePool": "#2f7a4a", "ReduceMean": "#2f7a4a", "AveragePool": "#2f7a4a",
}
DEFAULT_COLOUR = "#5f5f5f"


def _shape_text(value_info: onnx.ValueInfoProto) -> str:
    dims = [d.dim_param or str(d.dim_value) for d in value_info.type.tensor_type.shape.dim]
    return "×".join(dims)


def _node_detail(node: onnx.NodeProto, initializers: dict[str, onnx.TensorProto]) -> str:
    """One line under the op type: the weight's shape, or a key attribute."""
    for name in node.input[1:2]:
        if name in initializers:
            return "W " + "×".join(str(d) for d in initializers[name].dims)
    for attr in node.attribute:
        if attr.name in ("kernel_shape", "axes"):
            return f"{attr.name} {list(onnx.helper.get_attribute_value(attr))}"
    return ""


def draw_graph(path: Path | str, max_nodes: int = 14) -> Figure:
    """Return a figure of the graph's input and first ``max_nodes`` nodes, top to bottom.

    Each node sits one row below its deepest producer, so a residual connection
    shows as an edge that skips rows, as in Netron.
    """
    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    nodes = list(graph.node)[:max_nodes]
    graph_input = graph.input[0]
    producer = {graph_input.name: "input"}
    row = {"input": 0}
    column: dict[str, int] = {"input": 0}
    used_columns: dict[int, int] = {0: 1}
    edges = []
    for i, node in enumerate(nodes):
        key = f"n{i}"
        sources = [producer[name] for name in node.input if name in producer]
        row[key] = 1 + max((row[s] for s in sources), default=0)
        column[key] = used_columns.get(row[key], 0)
        used_columns[row[key]] = column[key] + 1
        edges += [(s, key) for s in sources]
        for name in node.output:
            producer[name] = key
    labels = {"input": (graph_input.name, _shape_text(graph_input), "#222222")}
    for i, node in enumerate(nodes):
        labels[f"n{i}"] = (node.op_type, _node_detail(node, initializers), COLOURS.get(node.op_type, DEFAULT_COLOUR))

    rows = max(row.values()) + 1
    fig, ax = plt.subplots(figsize=(6, 0.62 * rows + 0.6))
    x_of = {k: 2.2 * column[k] for k in row}
    for src, dst in edges:
        skip = row[dst] - row[src] > 1
        ax.annotate(
            "", xy=(x_of[dst], -row[dst] + 0.22), xytext=(x_of[src], -row[src] - 0.22),
            arrowprops={"arrowstyle": "-|>", "color": "#777777", "lw": 1.0,
                        "connectionstyle": "arc3,rad=-0.45" if skip else "arc3"},
        )
    for key, (title, detail, colour) in labels.items():
        x, y = x_of[key], -row[key]
        ax.add_patch(FancyBboxPatch((x - 0.8, y - 0.22), 1.6, 0.44, boxstyle="round,pad=0.02",
                                    facecolor=colour, edgecolor="none"))
        ax.text(x, y + 0.06, title, ha="center", va="center", color="white", fontsize=9, fontweight="bold")
        ax.text(x, y - 0.12, detail, ha="center", va="center", color="white", fontsize=6.5)
    width = max(x_of.values())
    ax.set_xlim(-1.6, width + 1.6)
    ax.set_ylim(-rows + 0.4, 0.6)
    ax.axis("off")
    shown = f"first {len(nodes)} of {len(graph.node)} nodes" if len(graph.node) > len(nodes) else "all nodes"
    ax.set_title(f"{Path(path).name}: {shown}", fontsize=10)
    fig.tight_layout()
    return fig


def _node_column(
    ax: plt.Axes, x: float, names: Sequence[str], colour: str
) -> dict[str, tuple[float, float]]:
    """Draw ``names`` as labelled boxes in a column at ``x``; return each box's centre."""
    ys = [1 - (i + 0.5) / len(names) for i in range(len(names))]
    for name, y in zip(names, ys):
        ax.text(x, y, name, ha="center", va="center", fontsize=8, color="white", zorder=3,
                bbox={"boxstyle": "round,pad=0.3", "facecolor": colour, "edgecolor": "none"})
    return {name: (x, y) for name, y in zip(names, ys)}


def draw_converter_routes(
    frameworks: Sequence[str], engines: Sequence[str], hub: str = "ONNX"
) -> Figure:
    """Return two panels: every framework wired to every engine, and the same through ``hub``.

    Each line drawn is one converter to write and maintain, so the left panel holds
    ``len(frameworks) * len(engines)`` lines and the right one ``len(frameworks) + len(engines)``
    (``len(ax.lines)`` counts them).
    """
    m, n = len(frameworks), len(engines)
    fig, (direct, shared) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=80)
    for ax in (direct, shared):
        left = _node_column(ax, 0.0, frameworks, "#3b6fb6")
        right = _node_column(ax, 1.0, engines, "#2f7a4a")
        ax.text(0.0, -0.07, f"{m} frameworks", ha="center", fontsize=8, color="#3b6fb6")
        ax.text(1.0, -0.07, f"{n} engines", ha="center", fontsize=8, color="#2f7a4a")
        ax.set_xlim(-0.35, 1.35)
        ax.set_ylim(-0.1, 1.02)
        ax.axis("off")
    for (x0, y0) in left.values():
        for (x1, y1) in right.values():
            direct.plot([x0, x1], [y0, y1], color="#a8322d", lw=0.8, alpha=0.6)
    shared.text(0.5, 0.5, hub, ha="center", va="center", fontsize=10, fontweight="bold",
                color="white", zorder=3,
                bbox={"boxstyle": "round,pad=0.5", "facecolor": "#5f5f5f", "edgecolor": "none"})
    for (x, y) in [*left.values(), *right.values()]:
        shared.plot([x, 0.5], [y, 0.5], color="#a8322d", lw=1.0, alpha=0.8)
    direct.set_title(f"Without a common format: {m} × {n} = {m * n} converters", fontsize=10)
    shared.set_title(f"Through {hub}: {m} + {n} = {m + n} converters", fontsize=10)
    fig.tight_layout()
    return fig


def draw_shape_sweep(sweeps: dict[str, dict[tuple[int, int], tuple[int, ...] | None]]) -> Figure:
    """Return one panel per file: output batch size against input batch size, a line per image size.

    ``sweeps`` maps a file's label to ``{(batch, side): output shape}`` for inputs of shape
    ``(batch, 3, side, side)``; ``None`` marks an input ONNX Runtime refused, drawn as a cross
    on the "refused" row.
    """
    fig, axes = plt.subplots(1, len(sweeps), figsize=(3.4 * len(sweeps), 3.2), dpi=80,
                             sharex=True, sharey=True, squeeze=False)
    for ax, (label, runs) in zip(axes[0], sweeps.items()):
        sides = sorted({side for _, side in runs})
        styles = zip(("#3b6fb6", "#d08a1e", "#2f7a4a", "#a8322d"), ("o-", "s--", "^:", "d-."))
        for i, (side, (colour, style)) in enumerate(zip(sides, styles)):
            shift = 0.12 * (i - (len(sides) - 1) / 2)  # side by side: no series hides another
            ran = sorted((b, out[0]) for (b, s), out in runs.items()
                         if s == side and out is not None)
            refused = sorted(b for (b, s), out in runs.items() if s == side and out is None)
            if ran:
                ax.plot([b + shift for b, _ in ran], [rows for _, rows in ran], style, color=colour,
                        label=f"{side}×{side} images")
            if refused:
                ax.plot([b + shift for b in refused], [0] * len(refused), "x", color=colour,
                        markersize=8, mew=2, label=f"{side}×{side} refused")
        batches = sorted({b for b, _ in runs})
        ax.set_xticks(batches)
        ax.set_yticks([0, *batches], ["refused", *map(str, batches)])
        ax.set_xlabel("input batch size")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    axes[0][0].set_ylabel("output batch size (rows of logits)")
    fig.tight_layout()
    return fig
