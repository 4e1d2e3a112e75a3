"""Remove outputs, execution counts and run-time metadata from notebooks, so they are committed clean.

Usage (from the repository root)::

    python -m tools.strip_notebooks                 # every chapters/*.ipynb, in place
    python -m tools.strip_notebooks chapters/03-kl-divergence.ipynb
    python -m tools.strip_notebooks --check         # exit 1 and list the notebooks that are not clean

Cell metadata that the book relies on (``tags``, ``mystnb`` alt text, ``jupyter`` source hiding) is kept; only what
running a notebook adds is removed: outputs, execution counts, ``execution`` timing, ``collapsed``/``scrolled``, and
the notebook-level widget state.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_CELL_METADATA = ("execution", "collapsed", "scrolled", "ExecuteTime")
RUNTIME_NOTEBOOK_METADATA = ("widgets", "execution")


def strip(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Strip ``nb`` in place (and return it)."""
    for key in RUNTIME_NOTEBOOK_METADATA:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        for key in RUNTIME_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def dumps(nb: nbformat.NotebookNode) -> str:
    """The file text nbformat writes for ``nb`` (one-space indent, trailing newline)."""
    return nbformat.writes(nb) + "\n"


def strip_file(path: Path, check: bool = False) -> bool:
    """Strip one notebook file; returns True when it was (or, with ``check``, would be) changed."""
    text = path.read_text(encoding="utf-8")
    nb = nbformat.reads(text, as_version=4)
    clean = dumps(strip(nb))
    if clean == text:
        return False
    if not check:
        path.write_text(clean, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Strip outputs and execution counts from notebooks.")
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: chapters/*.ipynb)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook is not clean")
    args = parser.parse_args(argv)
    paths = args.paths or sorted((ROOT / "chapters").glob("*.ipynb"))
    changed = [p for p in paths if strip_file(p, check=args.check)]
    for p in changed:
        print(f"{'not clean' if args.check else 'stripped'}: {p}")
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    sys.exit(main())
