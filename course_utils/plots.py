"""Figures the notebooks show that are not themselves the lesson."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib import font_manager
from PIL import Image

# File-name fragments of common fonts with Chinese glyphs (Linux, Windows, macOS).
CJK_FONT_FILES = ("NotoSansCJK", "NotoSerifCJK", "SourceHanSans", "wqy-", "simhei", "msyh", "PingFang")


def cjk_font() -> str | None:
    """Return the family name of an installed font with Chinese glyphs, registered with matplotlib.

    Matplotlib's default font has no Chinese glyphs; None means none was found and
    figures should fall back to English.
    """
    found = [p for p in font_manager.findSystemFonts()
             if any(k.lower() in p.lower() for k in CJK_FONT_FILES)]
    if not found:
        return None
    path = min(found, key=lambda p: ("bold" in p.lower(), "serif" in p.lower(), p))  # regular sans first
    font_manager.fontManager.addfont(path)
    return font_manager.FontProperties(fname=path).get_name()


def show_prediction(image: Image.Image, table: pd.DataFrame, title: str, weights: str) -> plt.Figure:
    """Return a figure of ``image`` beside a bar chart of its top-k ``table``.

    ``table`` has columns ``english``, ``chinese`` and ``probability`` (as made by
    ``course_utils.inference.top_k_table``). Labels are bilingual when a Chinese
    font is installed, English otherwise. ``weights`` is printed above the
    figure, in red for stand-in weights.
    """
    font = cjk_font()
    names = [f"{en} / {zh}" if font else en for en, zh in zip(table["english"], table["chinese"])]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), dpi=80, gridspec_kw={"width_ratios": [1, 1.4]})
    left.imshow(image)
    left.set_title(title, fontsize=10)
    left.axis("off")
    rows = range(len(table))[::-1]
    right.barh(rows, table["probability"], color="#3b6fb6")
    right.set_yticks(rows, names, fontsize=9, fontfamily=[font or "DejaVu Sans"])
    right.set_xlabel("probability")
    right.set_xlim(0, max(0.05, float(table["probability"].max()) * 1.15))
    for row, p in zip(rows, table["probability"]):
        right.text(p, row, f" {p:.3f}", va="center", fontsize=8)
    colour = "#a8322d" if "STAND-IN" in weights else "black"
    fig.suptitle(textwrap.fill(weights, 110), fontsize=8, color=colour)
    fig.tight_layout()
    return fig
