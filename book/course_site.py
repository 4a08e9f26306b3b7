"""Sphinx extension of the course site: Mermaid diagrams drawn in the browser by the site's own copy.

Notebooks write diagrams as ```mermaid fenced blocks (GitHub and JupyterLab draw those too);
``myst_fence_as_directive`` turns each into this ``mermaid`` directive. Pages with a diagram load
``_static/mermaid/mermaid.min.js`` (unpacked by book/build.py) and ``mermaid-init.js``; other
pages load nothing extra.
"""

from __future__ import annotations

from html import escape
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective


class mermaid(nodes.General, nodes.Element):
    """The source of one Mermaid diagram."""


class MermaidDirective(SphinxDirective):
    """``mermaid`` directive: its content is the diagram's source."""

    has_content = True

    def run(self) -> list[nodes.Node]:
        """Return a single ``mermaid`` node holding the diagram source."""
        return [mermaid(code="\n".join(self.content))]


def visit_mermaid_html(translator: Any, node: mermaid) -> None:
    """Write the diagram source where mermaid-init.js replaces it by an SVG drawing."""
    translator.body.append(f'<pre class="mermaid">\n{escape(node["code"])}\n</pre>\n')
    raise nodes.SkipNode


def add_mermaid_scripts(app: Sphinx, pagename: str, templatename: str, context: dict,
                        doctree: nodes.document | None) -> None:
    """Load Mermaid on the pages that have a diagram, and only there."""
    if doctree is not None and next(iter(doctree.findall(mermaid)), None) is not None:
        app.add_js_file("mermaid/mermaid.min.js", loading_method="defer")
        app.add_js_file("mermaid-init.js", loading_method="defer")


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directive, its HTML rendering and the per-page scripts."""
    app.add_node(mermaid, html=(visit_mermaid_html, None))
    app.add_directive("mermaid", MermaidDirective)
    app.connect("html-page-context", add_mermaid_scripts)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
