"""Replay an instructor's edits: every chapter run top to bottom after the changes the instructors' page invites.

    python tests/instructor/edits.py                      # every scenario (what `make test-instructor` runs)
    python tests/instructor/edits.py --scenario one-epoch chapters/05-vae.ipynb

The scenarios, each a change to every chapter it applies to:

- ``fashion-mnist``: in the parameters cell, ``DATASET = "mnist"`` becomes ``DATASET = "fashion-mnist"``
  (the instructors' page, "Switching the dataset");
- ``one-epoch``: in the parameters cell, every quick epoch count (``EPOCHS``, ``BETA_EPOCHS``, ...) becomes 1, the
  shortest run an instructor can choose for a demonstration;
- ``students``: every solution removed, as ``make students`` removes them from the notebooks the students' edition
  opens in Colab (``book/students.py``): no later cell may need what a solution computed.

A chapter a scenario does not change is not run for it; a scenario that changes no chapter is an error (its edits
no longer match the chapters). Chapters run in the book's environment (the ``python3`` kernel), in chapter order.
The two parameter scenarios share one fresh model cache each, as a book build does; ``students`` trains nothing new
and uses ``$VAELIB_CACHE``, the models of the book build (the Colab replay covers training from scratch). A chapter
passes when every cell runs and every value its text quotes (``{glue:text}`name```) was computed; the first failure
stops the replay with its scenario, chapter, cell and error. The data come from ``$VAELIB_DATA`` (see the README).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "book")]

from students import strip_solutions  # noqa: E402  (book/students.py)
from tools.execute import CellFailure, execute  # noqa: E402

PARAMETER_EDITS = {  # scenario: (pattern, replacement) pairs for the parameters cell
    "fashion-mnist": [(r'^DATASET = "mnist"', 'DATASET = "fashion-mnist"')],
    "one-epoch": [(r'^(\w*EPOCHS = \{"quick": )\d+', r"\g<1>1")],
}
SCENARIOS = [*PARAMETER_EDITS, "students"]
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


def apply(name: str, nb) -> bool:
    """Apply the scenario ``name`` to ``nb`` in place; True when it changed the notebook."""
    if name == "students":
        return strip_solutions(nb) > 0
    return edited(nb, PARAMETER_EDITS[name])


def glued(nb) -> set[str]:
    """Names of the values the executed notebook glued (myst-nb's ``scrapbook`` output metadata)."""
    return {out.get("metadata", {}).get("scrapbook", {}).get("name")
            for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])} - {None}


def quoted(nb) -> set[str]:
    """Names the chapter's markdown quotes with a glue role."""
    return {name for cell in nb.cells if cell.cell_type == "markdown" for name in GLUE_ROLE.findall(cell.source)}


def run_scenario(name: str, chapters: list[Path]) -> list[str]:
    """Run every chapter the scenario changes; returns one line per chapter run. EditFailure on the first failure."""
    book_cache = os.environ.get("VAELIB_CACHE")
    with tempfile.TemporaryDirectory(prefix=f"instructor-{name}-") as tmp:
        if name in PARAMETER_EDITS:  # the kernels inherit it: a fresh model cache for this scenario
            os.environ["VAELIB_CACHE"] = str(Path(tmp) / "model-cache")
        try:
            lines = [run_chapter(name, nb, path.name, Path(tmp) / path.stem) for path, nb in changed(name, chapters)]
        finally:
            os.environ.pop("VAELIB_CACHE", None)
            if book_cache is not None:
                os.environ["VAELIB_CACHE"] = book_cache
    if not lines:
        raise EditFailure(f"{name}: the scenario changes no chapter")
    return lines


def changed(name: str, chapters: list[Path]):
    """(path, notebook) for each chapter the scenario changes, the change applied, in order (read lazily)."""
    import nbformat

    for path in chapters:
        nb = nbformat.read(path, as_version=4)
        if apply(name, nb):
            yield path, nb


def run_chapter(name: str, nb, filename: str, workdir: Path) -> str:
    """Execute one changed chapter in ``workdir`` and check that it computed every value it quotes."""
    workdir.mkdir()
    try:
        seconds = execute(nb, filename, "python3", str(workdir))
    except CellFailure as err:
        raise EditFailure(f"{name}: {err}") from None
    missing = sorted(quoted(nb) - glued(nb))
    if missing:
        raise EditFailure(f"{name}: {filename} quotes values it did not compute: {', '.join(missing)}")
    line = f"instructor edits: {name}: {filename} ran top to bottom in {seconds:.0f} s"
    print(line, flush=True)
    return line


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
