"""Figures the notebooks show that are not themselves the lesson, and a font for Chinese labels."""

from __future__ import annotations

import textwrap
from functools import lru_cache

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib import font_manager, ft2font
from PIL import Image

from course_utils.inference import REAL_WEIGHTS_HINT, STANDIN_WARNING

# File-name fragments of common fonts with Chinese glyphs (Linux, Windows, macOS).
CJK_FONT_FILES = (
    "NotoSansCJK", "NotoSerifCJK", "SourceHanSans", "wqy-", "simhei", "msyh", "PingFang",
)
# Family-name fragments of the Simplified Chinese face of a multi-face font (Noto, Source Han,
# PingFang): the labels are Simplified Chinese, and the Japanese or Korean face of the same file
# draws some characters in another regional style.
SIMPLIFIED_FACES = (" SC", " CN", "GB")


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """Return the family name of an installed font with Chinese glyphs, registered with matplotlib.

    Matplotlib's default font has no Chinese glyphs. Among the installed candidates, the first
    regular sans-serif Simplified Chinese face that has a glyph for every character of the
    course's 1000 Chinese labels wins (some fonts lack rare ones such as 㹴 and 䴕); failing
    that, the one that lacks the fewest. None means no candidate is installed and figures fall
    back to English (``apt-get install fonts-noto-cjk`` installs one).
    """
    files = {p for p in font_manager.findSystemFonts()
             if any(k.lower() in p.lower() for k in CJK_FONT_FILES)}
    if not files:
        return None
    for path in sorted(files):
        font_manager.fontManager.addfont(path)  # registers every face of a .ttc collection
    faces = sorted({(f.name, f.fname, f.index, _weight(f.weight))
                    for f in font_manager.fontManager.ttflist if f.fname in files},
                   key=lambda face: (abs(face[3] - 400), "Serif" in face[0], "Mono" in face[0],
                                     not any(tag in face[0] for tag in SIMPLIFIED_FACES), face))
    text = _chinese_labels()
    fewest: tuple[int, str] | None = None
    for name, path, index, _ in faces:  # best ranked first: usually the first face is complete
        missing = len(_missing(text, path, index))
        if missing == 0:
            return name
        fewest = min(fewest or (missing, name), (missing, name))
    return fewest[1] if fewest else None


def missing_glyphs(text: str, family: str) -> str:
    """Return the characters of ``text`` (spaces aside) that font ``family`` has no glyph for.

    Raises ``ValueError`` if no installed font has that family name.
    """
    path = font_manager.findfont(font_manager.FontProperties(family=family),
                                 fallback_to_default=False)
    return _missing(text, str(path), getattr(path, "face_index", 0))


def _missing(text: str, path: str, face_index: int) -> str:
    charmap = _charmap(path, face_index)
    return "".join(dict.fromkeys(c for c in text if not c.isspace() and ord(c) not in charmap))


@lru_cache(maxsize=64)
def _charmap(path: str, face_index: int) -> frozenset[int]:
    """The code points that face ``face_index`` of the font file at ``path`` has glyphs for."""
    return frozenset(ft2font.FT2Font(path, face_index=face_index).get_charmap())


def _weight(weight: str | int) -> int:
    return weight if isinstance(weight, int) else font_manager.weight_dict.get(weight, 400)


@lru_cache(maxsize=1)
def _chinese_labels() -> str:
    from course_utils.labels import load_labels

    return "".join(load_labels()["chinese"])


def show_prediction(
    image: Image.Image, table: pd.DataFrame, title: str, weights: str, *,
    is_standin: bool | None = None,
) -> plt.Figure:
    """Return a figure of ``image`` beside a bar chart of its top-k ``table``.

    ``table`` has columns ``english``, ``chinese`` and ``probability`` (as made by
    ``course_utils.inference.top_k_table``). Labels are bilingual where the Chinese font has
    every glyph of the name, English otherwise. ``weights`` describes the weights; with
    stand-in weights (``is_standin``, by default read from ``weights``) the figure's title says
    in red that the model is untrained and its labels are not about the photo, and the bars
    are grey.
    """
    standin = "STAND-IN" in weights if is_standin is None else is_standin
    font = cjk_font()
    names = [f"{en} / {zh}" if font and not missing_glyphs(zh, font) else en
             for en, zh in zip(table["english"], table["chinese"])]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=80,
                                      gridspec_kw={"width_ratios": [1, 1.4]})
    left.imshow(image)
    left.set_title(title, fontsize=10)
    left.axis("off")
    rows = range(len(table))[::-1]
    right.barh(rows, table["probability"], color="#9a9a9a" if standin else "#3b6fb6")
    right.set_yticks(rows, names, fontsize=9, fontfamily=[font or "DejaVu Sans", "DejaVu Sans"])
    right.set_xlim(0, max(0.05, float(table["probability"].max()) * 1.15))
    for row, p in zip(rows, table["probability"]):
        right.text(p, row, f" {p:.3f}", va="center", fontsize=8)
    if standin:
        fig.suptitle(STANDIN_WARNING, fontsize=13, fontweight="bold", color="#a8322d")
        right.set_title(textwrap.fill(REAL_WEIGHTS_HINT, 64), fontsize=9, color="#a8322d")
        right.set_xlabel("probability given by an untrained model (meaningless)")
    else:
        fig.suptitle(textwrap.fill(weights, 110), fontsize=9)
        right.set_xlabel("probability")
    fig.tight_layout()
    return fig
