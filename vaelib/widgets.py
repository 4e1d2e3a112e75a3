"""Interactive explorers for the book, built on anywidget.

Each widget's logic is JavaScript (``vaelib/js/NAME.js``) and all the data it needs is synced state, so the same
widget works live in Jupyter and Colab and still responds on the book's static HTML pages, where no kernel runs.
Conventions every widget follows (the browser tests rely on them): the root element carries ``data-vaelib-widget``,
the widget draws into a ``<canvas>`` or ``<svg>``, and it has at least one ``<input type="range">`` with a label.
"""
from __future__ import annotations

from pathlib import Path

import anywidget
import traitlets

JS_DIR = Path(__file__).parent / "js"


def _js(name: str) -> str:
    """The source of ``vaelib/js/NAME.js``, an ES module exporting ``render({model, el})``."""
    return (JS_DIR / f"{name}.js").read_text(encoding="utf-8")
