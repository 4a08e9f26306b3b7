import matplotlib

matplotlib.use("Agg")

from course_utils.export import export_onnx  # noqa: E402
from course_utils.graphview import draw_converter_routes, draw_graph, draw_shape_sweep  # noqa: E402


def test_draws_the_first_nodes_with_their_op_types(tmp_path, tiny_model):
    path = export_onnx(tiny_model, tmp_path / "tiny.onnx", input_shape=(1, 3, 32, 32), dynamo=False)
    fig = draw_graph(path, max_nodes=3)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "input" in texts and "Conv" in texts
    assert "first 3 of" in fig.axes[0].get_title()


def test_converter_routes_draw_one_line_per_converter():
    fig = draw_converter_routes(["a", "b", "c"], ["w", "x", "y", "z"], hub="HUB")
    direct, shared = fig.axes
    assert len(direct.lines) == 3 * 4 and len(shared.lines) == 3 + 4
    assert "12 converters" in direct.get_title() and "7 converters" in shared.get_title()
    assert "HUB" in [t.get_text() for t in shared.texts]


def test_shape_sweep_marks_refused_inputs_on_their_own_row():
    sweeps = {
        "fixed": {(1, 224): (1, 10), (2, 224): None, (1, 160): None, (2, 160): None},
        "dynamic": {(b, s): (b, 10) for b in (1, 2) for s in (160, 224)},
    }
    fig = draw_shape_sweep(sweeps)
    fixed, dynamic = fig.axes
    assert [ax.get_title() for ax in fig.axes] == ["fixed", "dynamic"]
    refused = [line for line in fixed.lines if line.get_marker() == "x"]
    assert sum(len(line.get_xdata()) for line in refused) == 3
    assert not any(line.get_marker() == "x" for line in dynamic.lines)
    assert sorted(tuple(line.get_ydata()) for line in dynamic.lines) == [(1, 2), (1, 2)]
