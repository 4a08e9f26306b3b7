import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from course_utils import plots  # noqa: E402
from course_utils.inference import REAL_WEIGHTS_HINT, STANDIN_WARNING, top_k_table  # noqa: E402
from course_utils.labels import load_labels  # noqa: E402

STANDIN = "STAND-IN weights (seeded, untrained; COURSE_WEIGHTS=standin): predictions are not real"
REAL = "ImageNet weights ResNet18_Weights.IMAGENET1K_V1"


def _installed_cjk_font() -> str:
    font = plots.cjk_font()
    if font is None:
        pytest.skip("no font with Chinese glyphs is installed (apt-get install fonts-noto-cjk)")
    return font


def _figure(weights=STANDIN, **options):
    probs = np.linspace(0.0, 1.0, 1000, dtype=np.float32)
    image = Image.new("RGB", (32, 24), (200, 100, 50))
    table = top_k_table(probs / probs.sum(), 3)
    return plots.show_prediction(image, table, "cat.jpg", weights, **options)


def _tick_labels(fig):
    return [t.get_text() for t in fig.axes[1].get_yticklabels()]


def test_bilingual_labels_when_a_chinese_font_exists():
    _installed_cjk_font()
    fig = _figure()
    assert _tick_labels(fig)[0] == "toilet tissue / 卫生纸"  # class 999 first: the top bar
    assert fig.axes[0].get_title() == "cat.jpg"
    plt.close(fig)


def test_english_only_without_a_chinese_font(monkeypatch):
    monkeypatch.setattr(plots, "cjk_font", lambda: None)
    fig = _figure()
    assert _tick_labels(fig)[0] == "toilet tissue"
    plt.close(fig)


def test_a_label_whose_glyphs_the_font_lacks_is_shown_in_english(monkeypatch):
    monkeypatch.setattr(plots, "cjk_font", lambda: "DejaVu Sans")  # no Chinese glyphs at all
    fig = _figure()
    assert _tick_labels(fig) == ["toilet tissue", "ear", "bolete"]
    plt.close(fig)


def test_standin_figure_says_untrained_and_how_to_get_real_predictions():
    fig = _figure(STANDIN)
    assert fig.get_suptitle() == STANDIN_WARNING
    assert fig._suptitle.get_color() == "#a8322d"
    assert fig.axes[1].get_title().replace("\n", " ") == REAL_WEIGHTS_HINT
    assert "make weights" in REAL_WEIGHTS_HINT
    assert "untrained" in fig.axes[1].get_xlabel()
    plt.close(fig)


def test_real_weights_figure_names_the_weights_and_nothing_else():
    fig = _figure(REAL)
    assert fig.get_suptitle() == REAL
    assert fig.axes[1].get_title() == ""
    assert fig.axes[1].get_xlabel() == "probability"
    plt.close(fig)


def test_is_standin_overrides_the_description():
    fig = _figure(REAL, is_standin=True)
    assert fig.get_suptitle() == STANDIN_WARNING
    plt.close(fig)


def test_cjk_font_returns_a_name_or_none():
    font = plots.cjk_font()
    assert font is None or isinstance(font, str)


def test_missing_glyphs_names_what_a_font_lacks():
    assert plots.missing_glyphs("terrier 㹴 㹴 䴕", "DejaVu Sans") == "㹴䴕"
    with pytest.raises(ValueError):
        plots.missing_glyphs("x", "No Such Font Family 12345")


def test_the_chosen_font_has_every_glyph_of_the_1000_chinese_labels():
    font = _installed_cjk_font()
    text = "".join(load_labels()["chinese"])
    assert "㹴" in text and "䴕" in text  # rare characters (CJK extension A) that some fonts lack
    assert plots.missing_glyphs(text, font) == ""


def test_every_chinese_label_renders_without_a_missing_glyph_warning():
    font = _installed_cjk_font()
    names = load_labels()["chinese"].tolist()
    fig = plt.figure(figsize=(4, 2), dpi=40)
    for row in range(0, len(names), 50):
        fig.text(0, row / len(names), " ".join(names[row:row + 50]), fontfamily=font, fontsize=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)"
        fig.canvas.draw()
    plt.close(fig)


def test_a_simplified_chinese_face_is_preferred():
    font = _installed_cjk_font()
    if font.startswith(("Noto Sans CJK", "Noto Serif CJK", "Source Han Sans")):
        assert font.endswith((" SC", " CN")), font
