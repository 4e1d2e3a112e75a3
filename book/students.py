"""Build the students' edition of the book: the same pages with every exercise solution removed.

Run by ``make students`` (after the assets are in place)::

    python book/students.py            # -> _build/students/_build/html

It writes ``_build/students-config.yml`` (``_config.yml`` with ``vaebook_students`` switched on, see
``book/vaebook_ext.py``, the execution cache of ``make book`` shared, so the chapters are not run again, and
``repository.branch`` set to ``students``), builds the book strictly with it, and then removes the solutions from
the notebooks that the pages' download buttons serve (``_sources/**/*.ipynb``).

The pages' *Open in Colab* buttons then open ``chapters/NAME.ipynb`` on the repository's ``students`` branch. This
script writes what that branch holds into ``_build/students/notebooks/``: every chapter without its solutions and
without outputs; the Pages workflow pushes that folder to the branch.

Finally it checks the result: no page may contain a solution, no served notebook a solution directive, and every
Colab button must open a notebook of ``_build/students/notebooks/`` that has no solution.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
#: The branch whose notebooks (solutions removed) the students' edition's Colab buttons open.
STUDENTS_BRANCH = "students"
# A Colab button's target: https://colab.research.google.com/github/OWNER/REPO/blob/BRANCH/PATH.ipynb
COLAB_LINK = re.compile(r'https://colab\.research\.google\.com/github/[^/"]+/[^/"]+/blob/([^/"]+)/([^"?#]+\.ipynb)')
# A MyST directive block: an opening fence (``` or :::) naming the directive, its options, the matching closing fence.
_BLOCK = r"^(?P<fence>`{{3,}}|:{{3,}})\{{{name}\}}.*?^(?P=fence)[ \t]*(?:\n|\Z)"
START = re.compile(_BLOCK.format(name="solution-start"), re.M | re.S)
END = re.compile(_BLOCK.format(name="solution-end"), re.M | re.S)
SOLUTION = re.compile(_BLOCK.format(name="solution"), re.M | re.S)


def students_config(root: Path = ROOT) -> dict:
    """The book's configuration with solutions hidden and the execution cache of the main build shared."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    config["title"] = f"{config['title']} (students' edition)"
    config.setdefault("repository", {})["branch"] = STUDENTS_BRANCH   # Colab opens the solution-free notebooks
    config.setdefault("execute", {})["cache"] = str((root / "_build" / ".jupyter_cache").resolve())
    sphinx = config.setdefault("sphinx", {})
    # book/vaebook_ext.py removes the solutions (sphinx-exercise's own hide_solutions breaks on gated solutions).
    sphinx.setdefault("config", {})["vaebook_students"] = True
    # Published under students/: the slides and the PDF (links under each chapter's title) are one folder up.
    sphinx["config"]["vaebook_site_prefix"] = "../"
    # Jupyter Book resolves local extension folders against the configuration file's folder: make them absolute.
    sphinx["local_extensions"] = {
        name: str((root / path).resolve()) for name, path in (sphinx.get("local_extensions") or {}).items()
    }
    return config


def strip_solutions(nb: nbformat.NotebookNode) -> int:
    """Remove every solution (``solution-start`` ... ``solution-end`` pairs, including the cells between them, and
    ``{solution}`` blocks) from ``nb`` in place; returns how many were removed. ValueError on an unclosed pair."""
    cells, removed, inside = [], 0, False
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            if not inside:
                cells.append(cell)
            continue
        text, kept, pos = cell.source, "", 0
        while True:
            if inside:
                match = END.search(text, pos)
                if not match:
                    break
                pos, inside = match.end(), False
            else:
                match = START.search(text, pos)
                if not match:
                    kept += text[pos:]
                    break
                kept += text[pos:match.start()]
                pos, inside, removed = match.end(), True, removed + 1
        kept, n = SOLUTION.subn("", kept)
        removed += n
        if kept.strip():
            cell.source = kept.strip("\n")
            cells.append(cell)
    if inside:
        raise ValueError("a {solution-start} block has no matching {solution-end}")
    nb.cells = cells
    return removed


def jupyter_book() -> str:
    """The jupyter-book command of the running environment."""
    local = Path(sys.executable).parent / "jupyter-book"
    return str(local) if local.is_file() else (shutil.which("jupyter-book") or "jupyter-book")


def write_notebooks(root: Path, out: Path) -> list[Path]:
    """The students' branch: every notebook the book lists, solutions and outputs removed, under ``out``."""
    sys.path.insert(0, str(root))
    from tools.strip_notebooks import dumps, strip

    written = []
    for source in sorted((root / "chapters").glob("*.ipynb")):
        nb = nbformat.read(source, as_version=4)
        strip_solutions(nb)
        target = out / source.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(dumps(strip(nb)), encoding="utf-8")
        written.append(target)
    (out / "README.md").write_text(
        "# Students' notebooks\n\nThe chapters without their solutions, for the students' edition's *Open in Colab* "
        "buttons. Generated by `make students` from the main branch and published by the Pages workflow: do not edit "
        "here.\n", encoding="utf-8")
    return written


def build(root: Path = ROOT) -> Path:
    """Build the students' edition and its notebooks for Colab; returns the HTML folder."""
    out = root / "_build" / "students"
    config_path = root / "_build" / "students-config.yml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(yaml.safe_dump(students_config(root), sort_keys=False), encoding="utf-8")
    subprocess.run(
        [jupyter_book(), "build", "-W", "-n", "--keep-going", "--all", "--config", str(config_path),
         "--path-output", str(out), str(root)],
        check=True,
    )
    html = out / "_build" / "html"
    for notebook in sorted((html / "_sources").rglob("*.ipynb")):
        nb = nbformat.read(notebook, as_version=4)
        if strip_solutions(nb):
            nbformat.write(nb, notebook)
    notebooks = out / "notebooks"
    shutil.rmtree(notebooks, ignore_errors=True)
    write_notebooks(root, notebooks)
    return html


def _has_solution(text: str) -> bool:
    return re.search(r"\{solution(?:-start)?\}", text) is not None


def colab_targets(html: Path) -> dict[str, tuple[str, str]]:
    """{page: (branch, path)} for every *Open in Colab* button of the built pages."""
    found = {}
    for page in sorted(html.rglob("*.html")):
        for branch, path in COLAB_LINK.findall(page.read_text("utf-8")):
            found[str(page.relative_to(html))] = (branch, path)
    return found


def leaks(html: Path, notebooks: Path | None = None) -> list[str]:
    """Pages, served notebooks, or notebooks behind the Colab buttons of a students' build that hold a solution.

    ``notebooks``: the folder published as the students' branch (default: ``notebooks/`` beside ``_build``).
    """
    notebooks = notebooks if notebooks is not None else html.parent.parent / "notebooks"
    found = [str(p) for p in html.rglob("*.html") if re.search(r'class="[^"]*\bsolution\b', p.read_text("utf-8"))]
    for notebook in (html / "_sources").rglob("*.ipynb"):
        if _has_solution(notebook.read_text(encoding="utf-8")):
            found.append(str(notebook))
    for page, (branch, path) in colab_targets(html).items():
        target = notebooks / path
        if branch != STUDENTS_BRANCH:
            found.append(f"{page}: its Colab button opens branch {branch!r}, not the students' branch")
        elif not target.is_file():
            found.append(f"{page}: its Colab button opens {path}, which the students' branch does not hold")
        elif _has_solution(target.read_text(encoding="utf-8")):
            found.append(f"{page}: its Colab button opens {target}, which holds a solution")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the book's folder (default: this repository)")
    args = parser.parse_args(argv)
    html = build(args.root.resolve())
    found = leaks(html)
    if found:
        print("solutions left in the students' edition:\n  " + "\n  ".join(found), file=sys.stderr)
        return 1
    print(f"students' edition (no solutions): {html / 'index.html'}; its Colab buttons open branch "
          f"{STUDENTS_BRANCH!r}, whose notebooks are in {html.parent.parent / 'notebooks'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
