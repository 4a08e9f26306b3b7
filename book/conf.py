"""Sphinx configuration of the course website. Build it with ``make book`` (see book/build.py)."""

import sys
from pathlib import Path

BOOK = Path(__file__).resolve().parent
sys.path.insert(0, str(BOOK))

project = "Deploying an image classifier: PyTorch → ONNX → ONNX Runtime"
author = "the course authors"
copyright = "the course authors. Code and text under the MIT licence"
language = "en"

extensions = ["myst_nb", "course_site"]
root_doc = "index"

# The site shows the outputs stored in the notebooks; `make execute` refreshes them.
nb_execution_mode = "off"
nb_merge_streams = True
nb_ipywidgets_js = {}  # no widget state in the course; never load widget scripts from a CDN
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_fence_as_directive = ["mermaid"]  # ```mermaid blocks become diagrams (course_site)
myst_heading_anchors = 3

# Served from the site itself: the pinned npm packages that book/build.py unpacks into _build/vendor,
# and the live page's models, sample images and configuration that it writes into _build/live.
html_static_path = ["static", str(BOOK.parent / "_build" / "vendor"), str(BOOK.parent / "_build" / "live")]
html_css_files = ["course.css"]
mathjax_path = "mathjax/tex-mml-chtml.js"
mathjax3_config = {"tex": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]]}}

html_theme = "sphinx_book_theme"
html_title = "PyTorch → ONNX → ONNX Runtime"
html_last_updated_fmt = None
html_theme_options = {
    "home_page_in_toc": False,
    "footer_content_items": ["copyright"],
    "show_navbar_depth": 1,
    "show_toc_level": 2,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "navigation_with_keys": False,
}
