import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from course_utils import plots  # noqa: E402
from course_utils.inference import top_k_table  # noqa: E402


def _figure(monkeypatch, font):
    monkeypatch.setattr(plots, "cjk_font", lambda: font)
    probs = np.linspace(0.0, 1.0, 1000, dtype=np.float32)
    image = Image.new("RGB", (32, 24), (200, 100, 50))
    return plots.show_prediction(image, top_k_table(probs / probs.sum(), 3), "cat.jpg", "STAND-IN weights")


@pytest.mark.filterwarnings("ignore:Glyph")  # the stand-in font has no Chinese glyphs; only labels are checked
def test_bilingual_labels_when_a_chinese_font_exists(monkeypatch):
    fig = _figure(monkeypatch, "DejaVu Sans")
    labels = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert labels[0] == "toilet tissue / 卫生纸"  # class 999 is the most probable: first tick, top bar
    assert fig.axes[0].get_title() == "cat.jpg"


def test_english_only_without_a_chinese_font(monkeypatch):
    fig = _figure(monkeypatch, None)
    labels = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert labels[0] == "toilet tissue"
    assert fig._suptitle.get_color() == "#a8322d"


def test_cjk_font_returns_a_name_or_none():
    font = plots.cjk_font()
    assert font is None or isinstance(font, str)
