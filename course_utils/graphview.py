"""Draw the first nodes of an ONNX graph as a Netron-style figure, offline, with matplotlib."""

from __future__ import annotations

from pathlib import Path

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
