"""Choose each chapter's lecture slides: set ``slideshow.slide_type`` in the cell metadata of the chapter notebooks.

Usage (from the repository root)::

    python -m tools.mark_slides            # mark the cells that have no slideshow metadata yet (keeps hand choices)
    python -m tools.mark_slides --reset    # mark every cell by the rules below (discards hand choices)
    python -m tools.mark_slides --check    # change nothing; exit 1 and list the cells without slideshow metadata

``make slides`` (book/slides.py) builds the decks from this metadata. The rules, applied in the book's order of cells,
are meant to give every chapter a deck of 10 to 30 slides that also suits sections added later:

- the chapter's title cell is skipped (every deck opens with its own title slide);
- a markdown cell with a heading (``##`` or ``###``) is a ``slide``: the learning objectives, every section's opening
  text (where the derivations are), the summary (book/slides.py makes one slide per heading and leaves out the text
  before a cell's first heading, which ends the section before);
- markdown cells without a heading (the prose between figures) are skipped;
- a code cell is a ``slide`` when it draws a figure (it has alt text in ``mystnb.image.alt``) or shows an explorer
  (its code makes a ``...Explorer(...)``); other code cells (setup, parameters, computations) are skipped;
- everything in the Exercises section (exercises and their solutions) is skipped;
- ``OVERRIDES`` below then sets single cells by id, where a chapter's deck needs a cell the rules leave out or is
  too long.

An instructor changes a deck by editing one cell's metadata (in Jupyter: View -> Cell Toolbar -> Slideshow, or the
property inspector) and running ``make slides``; this script leaves such choices alone unless run with ``--reset``.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

from tools.strip_notebooks import dumps

ROOT = Path(__file__).resolve().parent.parent
SKIP_SECTIONS = ("exercises", "references", "further reading")
EXPLORER = re.compile(r"\b\w*Explorer\(")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")

#: Per-chapter choices by cell id that the rules would not make: {notebook file name: {cell id: slide_type}}.
OVERRIDES: dict[str, dict[str, str]] = {
    "01-bayes-generative.ipynb": {
        "ch1-08": "-",        # the screening test's result, on the worked example's slide
    },
    "03-kl-divergence.ipynb": {
        "ch3-10": "-",        # the smallest divergence found, with the figure of random pairs
        "ch3-13": "-",        # the lecture's sign slip, computed
    },
}


def rule(cell: nbformat.NotebookNode, section: str) -> str:
    """The slide type the rules give ``cell`` in the section headed ``section``."""
    if cell.cell_type == "markdown":
        headings = [m.group(2) for m in map(HEADING.match, cell.source.splitlines()) if m and len(m.group(1)) in (2, 3)]
        if any(not h.lower().startswith(SKIP_SECTIONS) for h in headings):
            return "slide"
        return "skip"
    if section.lower().startswith(SKIP_SECTIONS):
        return "skip"
    if cell.cell_type == "code":
        if cell.metadata.get("mystnb", {}).get("image", {}).get("alt"):
            return "slide"
        if EXPLORER.search(cell.source):   # an explorer is made (an import has no parenthesis)
            return "slide"
        return "skip"
    return "skip"


def sections(nb: nbformat.NotebookNode) -> list[str]:
    """For each cell, the level-2 heading of the section it is in.

    A cell with level-2 headings belongs to its first one; the cells after it to its last one.
    """
    out, current = [], ""
    for cell in nb.cells:
        own = []
        if cell.cell_type == "markdown":
            own = [m.group(2) for m in map(HEADING.match, cell.source.splitlines()) if m and len(m.group(1)) == 2]
        out.append(own[0] if own else current)
        current = own[-1] if own else current
    return out


def mark(nb: nbformat.NotebookNode, name: str, reset: bool = False) -> int:
    """Set ``slideshow.slide_type`` on the cells of ``nb`` (only unmarked ones unless ``reset``); returns changes."""
    overrides = OVERRIDES.get(name, {})
    changed = 0
    for cell, section in zip(nb.cells, sections(nb)):
        current = cell.metadata.get("slideshow", {}).get("slide_type")
        if current is not None and not reset:
            continue
        kind = overrides.get(cell.get("id"), rule(cell, section))
        if current != kind:
            cell.metadata.setdefault("slideshow", {})["slide_type"] = kind
            changed += 1
    return changed


def unmarked(nb: nbformat.NotebookNode) -> list[str]:
    return [cell.get("id", "?") for cell in nb.cells if "slide_type" not in cell.metadata.get("slideshow", {})]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: chapters/*.ipynb)")
    parser.add_argument("--reset", action="store_true", help="re-mark every cell by the rules (discards hand choices)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a cell has no slide type")
    args = parser.parse_args(argv)
    paths = args.paths or sorted((ROOT / "chapters").glob("*.ipynb"))
    status = 0
    for path in paths:
        text = path.read_text(encoding="utf-8")
        nb = nbformat.reads(text, as_version=4)
        if args.check:
            missing = unmarked(nb)
            if missing:
                status = 1
                print(f"{path}: cells without slideshow.slide_type: {', '.join(missing)} (run python -m tools.mark_slides)")
            continue
        changed = mark(nb, path.name, reset=args.reset)
        new = dumps(nb)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"{path}: {changed} cells marked")
    return status


if __name__ == "__main__":
    sys.exit(main())
