import matplotlib

matplotlib.use("Agg")

from course_utils.export import export_onnx  # noqa: E402
from course_utils.graphview import draw_graph  # noqa: E402


def test_draws_the_first_nodes_with_their_op_types(tmp_path, tiny_model):
    path = export_onnx(tiny_model, tmp_path / "tiny.onnx", input_shape=(1, 3, 32, 32), dynamo=False)
    fig = draw_graph(path, max_nodes=3)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "input" in texts and "Conv" in texts
    assert "first 3 of" in fig.axes[0].get_title()
