"""Replay an instructor's edits: every chapter run top to bottom after the changes the instructors' page invites.

    python tests/instructor/edits.py                      # every scenario (what `make test-instructor` runs)
    python tests/instructor/edits.py --scenario one-epoch chapters/05-vae.ipynb

A scenario is a set of edits to the parameters cell of each chapter (regular expressions, applied to its source):

- ``fashion-mnist``: ``DATASET = "mnist"`` becomes ``DATASET = "fashion-mnist"`` ("Switching the dataset");
- ``one-epoch``: every quick epoch count (``EPOCHS``, ``BETA_EPOCHS``, ...) becomes 1, the shortest run an
  instructor can choose for a demonstration.

A chapter whose parameters cell a scenario does not change is not run for it; a scenario that changes no chapter is
an error (its edits no longer match the chapters). Chapters run in the book's environment (the ``python3`` kernel),
in chapter order, sharing one fresh model cache per scenario as a book build does. A chapter passes when every
cell runs and every value its text quotes (``{glue:text}`name```) was computed; the first failure stops the replay
with its scenario, chapter, cell and error. The data come from ``$VAELIB_DATA`` (see the README).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tools.execute import CellFailure, execute  # noqa: E402

SCENARIOS = {
    "fashion-mnist": [(r'^DATASET = "mnist"', 'DATASET = "fashion-mnist"')],
    "one-epoch": [(r'^(\w*EPOCHS = \{"quick": )\d+', r"\g<1>1")],
}
GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([\w-]+)")


class EditFailure(RuntimeError):
    """A chapter failed after an instructor's edit, or a scenario no longer changes any chapter."""


def parameters_cell(nb):
    """The code cell tagged ``parameters`` (every chapter has exactly one; tests/test_notebooks.py checks it)."""
    return next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))


def edited(nb, edits: list[tuple[str, str]]) -> bool:
    """Apply ``edits`` to the parameters cell of ``nb`` in place; True when the cell changed."""
    cell = parameters_cell(nb)
    source = cell.source
    for pattern, replacement in edits:
        source = re.sub(pattern, replacement, source, flags=re.M)
    changed, cell.source = source != cell.source, source
    return changed


def glued(nb) -> set[str]:
    """Names of the values the executed notebook glued (myst-nb's ``scrapbook`` output metadata)."""
    return {out.get("metadata", {}).get("scrapbook", {}).get("name")
            for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])} - {None}


def quoted(nb) -> set[str]:
    """Names the chapter's markdown quotes with a glue role."""
    return {name for cell in nb.cells if cell.cell_type == "markdown" for name in GLUE_ROLE.findall(cell.source)}


def run_scenario(name: str, chapters: list[Path]) -> list[str]:
    """Run every chapter the scenario changes; returns one line per chapter run. EditFailure on the first failure."""
    import nbformat

    lines = []
    with tempfile.TemporaryDirectory(prefix=f"instructor-{name}-") as tmp:
        os.environ["VAELIB_CACHE"] = str(Path(tmp) / "model-cache")
        for path in chapters:
            nb = nbformat.read(path, as_version=4)
            if not edited(nb, SCENARIOS[name]):
                continue
            workdir = Path(tmp) / path.stem
            workdir.mkdir()
            try:
                seconds = execute(nb, path.name, "python3", str(workdir))
            except CellFailure as err:
                raise EditFailure(f"{name}: {err}") from None
            missing = sorted(quoted(nb) - glued(nb))
            if missing:
                raise EditFailure(f"{name}: {path.name} quotes values it did not compute: {', '.join(missing)}")
            lines.append(f"instructor edits: {name}: {path.name} ran top to bottom in {seconds:.0f} s")
            print(lines[-1], flush=True)
    if not lines:
        raise EditFailure(f"{name}: the scenario's edits change no chapter's parameters cell: {SCENARIOS[name]}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("chapters", nargs="*", type=Path, help="notebooks (default: chapters/*.ipynb)")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append",
                        help="run only this scenario (repeatable; default: all)")
    args = parser.parse_args(argv)
    chapters = [p.resolve() for p in args.chapters] or sorted((ROOT / "chapters").glob("*.ipynb"))
    try:
        for name in args.scenario or SCENARIOS:
            run_scenario(name, chapters)
    except EditFailure as err:
        print(f"instructor edits FAILED: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
