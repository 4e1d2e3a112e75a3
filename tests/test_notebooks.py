"""Every chapter notebook is committed clean and ready for Colab and the book build.

- no outputs, no execution counts (the book executes them; ``make strip`` cleans them);
- the first cell is exactly the Colab setup cell, installing vaelib from ``repository.url`` in ``_config.yml``;
- a code cell tagged ``parameters`` sets ``CONFIG = "quick"`` (the book builds the quick configuration);
- notebook metadata asks Colab for a GPU, and chapters that train pick the device with ``vaelib.pick_device``;
- every cell that draws a figure carries alt text (cell metadata ``mystnb.image.alt``);
- ``_toc.yml`` and ``chapters/`` agree: every listed file exists and every chapter is listed.
"""
from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ lives at the repository root
from tools.set_repository import config_url, setup_cell_source
from tools.strip_notebooks import dumps, strip

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
IDS = [p.stem for p in CHAPTERS]
# A cell that draws a figure: matplotlib, or one of vaelib.plot's helpers.
FIGURE_RE = re.compile(
    r"\bplt\.(?:subplots|figure|imshow|plot|show|scatter|hist|bar|contourf?)\b|\.imshow\(|\bshow_images\(|"
    r"\bplot_history\(|\bplot_latent\(|\bmanifold_grid\(|\bplot_activity\("
)


def load(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    walk(toc.get("chapters"))
    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return files


def test_toc_lists_existing_files_and_every_chapter():
    listed = toc_files()
    missing = [f for f in listed if not any((ROOT / f"{Path(f).with_suffix('')}{s}").is_file() for s in (".md", ".ipynb"))]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"
    stems = {str(Path(f).with_suffix("")) for f in listed}
    unlisted = [p.name for p in CHAPTERS if f"chapters/{p.stem}" not in stems]
    assert not unlisted, f"chapters missing from _toc.yml (the book only builds listed files): {unlisted}"


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_notebook_is_valid_and_clean(path):
    nb = load(path)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs or execution counts; run `make strip`"
    assert path.read_text(encoding="utf-8") == dumps(strip(load(path))), (
        f"{path.name} carries run-time metadata (widget state, timings); run `make strip`"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_first_cell_is_the_colab_setup_cell(path):
    first = load(path).cells[0]
    expected = setup_cell_source(config_url(ROOT / "_config.yml"))
    assert first.cell_type == "code" and first.source == expected, (
        f"{path.name}: the first cell must be exactly\n{expected}\n(`python tools/set_repository.py URL` writes it)"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_title_follows_the_setup_cell(path):
    second = load(path).cells[1]
    number = int(path.name.split("-")[0])
    assert second.cell_type == "markdown" and re.match(rf"# {number}\. \S", second.source), (
        f"{path.name}: the second cell must be the title '# {number}. ...'"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_parameters_cell(path):
    cells = [c for c in load(path).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{path.name}: expected exactly one cell tagged 'parameters', found {len(cells)}"
    cell = cells[0]
    assert cell.cell_type == "code"
    assigned = {}
    for node in ast.parse(cell.source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                assigned[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                assigned[node.targets[0].id] = ...
    assert assigned.get("CONFIG") == "quick", f"{path.name}: the parameters cell must set CONFIG = \"quick\""
    if "DATASET" in assigned:
        assert assigned["DATASET"] in {"mnist", "fashion-mnist", "digits"}, f"{path.name}: DATASET={assigned['DATASET']!r}"


def _load_edits():
    spec = importlib.util.spec_from_file_location("instructor_edits", ROOT / "tests" / "instructor" / "edits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_instructor_edits_reach_every_setting_they_name(path):
    """``make test-instructor`` edits the parameters cell by pattern: the Fashion-MNIST switch must reach every chapter
    that reads MNIST, and the one-epoch edit every quick epoch count, or the replay would test less than it says."""
    edits = _load_edits()
    for name, expected in [("fashion-mnist", lambda v: {"DATASET": "fashion-mnist"} if v.get("DATASET") == "mnist"
                            else {}),
                           ("one-epoch", lambda v: {k: 1 for k in v if k.endswith("EPOCHS")})]:
        nb = load(path)
        before = {}
        exec(edits.parameters_cell(nb).source, {}, before)
        changed = edits.apply(name, nb)
        after = {}
        exec(edits.parameters_cell(nb).source, {}, after)
        want = {**before, **expected(before)}
        assert after == want, f"{path.name}, scenario {name}: parameters {after} after the edit, expected {want}"
        assert changed == (want != before), f"{path.name}, scenario {name}: edited() says changed={changed}"


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_metadata_asks_colab_for_a_gpu(path):
    meta = load(path).metadata
    assert meta.get("kernelspec", {}).get("name") == "python3", f"{path.name}: kernelspec must be python3"
    assert meta.get("accelerator") == "GPU", f"{path.name}: metadata.accelerator must be 'GPU'"
    assert meta.get("colab", {}).get("gpuType") == "T4", f"{path.name}: metadata.colab.gpuType must be 'T4'"


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_training_chapters_use_pick_device(path):
    code = "\n".join(c.source for c in load(path).cells if c.cell_type == "code")
    # vaelib's trainer: `vaelib.fit(`, `cached_fit(`, or `fit` imported from vaelib (not scikit-learn's `.fit(`, not a
    # chapter's own `def fit`).
    if re.search(r"\bvaelib\.(?:cached_)?fit\(|\bcached_fit\(|^from vaelib(?:\.train)? import [^\n]*\bfit\b", code, re.M):
        assert "pick_device(" in code, f"{path.name} trains a model but never calls vaelib.pick_device()"


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_figure_cells_have_alt_text(path):
    missing = []
    for i, cell in enumerate(load(path).cells):
        if cell.cell_type != "code" or not FIGURE_RE.search(cell.source):
            continue
        if "remove-output" in cell.metadata.get("tags", []) or "remove-cell" in cell.metadata.get("tags", []):
            continue
        alt = cell.metadata.get("mystnb", {}).get("image", {}).get("alt", "")
        if not alt.strip():
            missing.append(f"cell {i}: {cell.source.splitlines()[0][:60]!r}")
    assert not missing, f"{path.name}: figure cells without metadata mystnb.image.alt:\n" + "\n".join(missing)


# What a chapter may import: Python's standard library, what Colab preinstalls (tests/colab/preinstalled.txt, by
# import name), and vaelib with its own dependencies (what the setup cell installs). tests/colab/replay.py runs the
# chapters in such an environment; this check names the offending import in a second.
COLAB_IMPORTS = {"torch", "torchvision", "numpy", "scipy", "matplotlib", "sklearn", "pandas", "tqdm", "IPython",
                 "ipykernel", "ipywidgets", "traitlets", "PIL"}
VAELIB_IMPORTS = {"vaelib", "anywidget"}


def imported_modules(source: str) -> set[str]:
    """Top-level names of the modules a cell imports (lines of IPython magics and shell escapes are skipped)."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_imported_modules_sees_every_form():
    assert imported_modules("import a.b as c\nfrom d.e import f\n%matplotlib inline\ndef g():\n    import h\n") == {
        "a", "d", "h"}


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_chapter_imports_only_what_colab_has(path):
    allowed = COLAB_IMPORTS | VAELIB_IMPORTS | set(sys.stdlib_module_names)
    found = {}
    for i, cell in enumerate(load(path).cells):
        if cell.cell_type == "code":
            for name in imported_modules(cell.source) - allowed:
                found.setdefault(name, i)
    assert not found, (f"{path.name} imports what Colab does not have: "
                       + ", ".join(f"{n} (cell {i})" for n, i in sorted(found.items()))
                       + ". Use vaelib's helpers (e.g. vaelib.notebook.glue instead of myst_nb.glue).")
