"""tools/set_repository.py and tools/strip_notebooks.py on a throwaway copy of the book's files."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ lives at the repository root
from tools import set_repository, strip_notebooks

ROOT = Path(__file__).resolve().parents[1]
OLD = "https://github.com/generative-models-book/vae-book"


def make_chapter(path: Path, url: str = OLD) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(set_repository.setup_cell_source(url)),
        nbformat.v4.new_markdown_cell("# 1. Title"),
        nbformat.v4.new_code_cell("print(1)", execution_count=3, outputs=[nbformat.v4.new_output("stream", text="1\n")]),
    ]
    nb.cells[2].metadata["execution"] = {"iopub.status.busy": "2025-01-01"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    nbformat.write(nb, path)


@pytest.fixture
def book(tmp_path):
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    (tmp_path / "chapters").mkdir()
    make_chapter(tmp_path / "chapters" / "01-a.ipynb")
    return tmp_path


def test_setup_cell_matches_the_committed_config():
    assert set_repository.config_url(ROOT / "_config.yml") == OLD


def test_set_repository_rewrites_config_and_setup_cells(book):
    new = "https://github.com/someone/my-vae-book"
    assert set_repository.main([new + ".git", "--root", str(book)]) == 0
    config = yaml.safe_load((book / "_config.yml").read_text())
    assert config["repository"]["url"] == new
    assert config["repository"]["branch"] == "main"
    assert "colab_url" in config["launch_buttons"]  # the rest of the file is untouched
    source = nbformat.read(book / "chapters" / "01-a.ipynb", as_version=4).cells[0].source
    assert f'"vaelib @ git+{new}"' in source and OLD not in source
    assert set_repository.main(["--check", "--root", str(book)]) == 0


def test_set_repository_check_reports_a_stale_setup_cell(book):
    make_chapter(book / "chapters" / "02-b.ipynb", url="https://github.com/elsewhere/fork")
    assert set_repository.main(["--check", "--root", str(book)]) == 1


@pytest.mark.parametrize("bad", ["github.com/a/b", "https://gitlab.com/a/b", "https://github.com/a", "https://github.com/a/b/c"])
def test_set_repository_refuses_a_non_github_url(bad):
    with pytest.raises(ValueError, match="https://github.com/OWNER/REPO"):
        set_repository.check_url(bad)


def test_strip_removes_outputs_counts_and_runtime_metadata(book):
    path = book / "chapters" / "01-a.ipynb"
    assert strip_notebooks.main(["--check", str(path)]) == 1
    assert strip_notebooks.main([str(path)]) == 0
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[2].outputs == [] and nb.cells[2].execution_count is None
    assert "execution" not in nb.cells[2].metadata and "widgets" not in nb.metadata
    assert nb.cells[0].source == set_repository.setup_cell_source(OLD)  # sources untouched
    assert strip_notebooks.main(["--check", str(path)]) == 0


# --- the students' edition --------------------------------------------------------------------------------------

sys.path.insert(0, str(ROOT / "book"))
import students  # noqa: E402  (book/students.py)

EXERCISE = "```{exercise}\n:label: ex1\nCompute $1+1$.\n```\n"
START = "```{solution-start} ex1\n:class: dropdown\n```\n"
END = "```{solution-end}\n```\n"


def notebook_with_solution() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# 1. Title"),
        nbformat.v4.new_markdown_cell(EXERCISE + START + "The answer is SECRET-TEXT."),
        nbformat.v4.new_code_cell("print('SECRET-CODE')"),
        nbformat.v4.new_markdown_cell(END + "\nA summary that stays."),
        nbformat.v4.new_markdown_cell("```{solution} ex1\nSECRET-BLOCK\n```\nAfter the block."),
    ]
    return nb


def test_strip_solutions_removes_gated_and_plain_solutions():
    nb = notebook_with_solution()
    assert students.strip_solutions(nb) == 2
    text = nbformat.writes(nb)
    assert "SECRET" not in text and "solution" not in text
    assert "Compute $1+1$." in text and "A summary that stays." in text and "After the block." in text
    assert [c.cell_type for c in nb.cells] == ["markdown", "markdown", "markdown", "markdown"]


def test_strip_solutions_refuses_an_unclosed_solution():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(EXERCISE + START + "never closed")]
    with pytest.raises(ValueError, match="solution-end"):
        students.strip_solutions(nb)


@pytest.mark.parametrize("edition", ["students", "full"])
def test_students_build_has_exercises_but_no_solutions(tmp_path, monkeypatch, edition):
    """A tiny book built by book/students.py with the real configuration (notebook execution switched off); the
    same build with ``vaebook_students`` off (the normal edition) must show the solutions."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"
    config["sphinx"]["config"].pop("nb_ipywidgets_js")
    config["sphinx"]["config"]["html_static_path"] = []
    config["sphinx"]["config"].pop("html_js_files")
    config["html"].pop("favicon")
    config["sphinx"]["local_extensions"] = {"vaebook_ext": str(ROOT / "book")}
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: chapters/01-a\n")
    (tmp_path / "intro.md").write_text("# Intro\n\n```{chapter-parameters}\n```\n")
    (tmp_path / "chapters").mkdir()
    nb = notebook_with_solution()
    nb.cells.insert(1, nbformat.v4.new_code_cell("CONFIG = 'quick'", metadata={"tags": ["parameters"]}))
    nbformat.write(nb, tmp_path / "chapters" / "01-a.ipynb")
    if edition == "full":
        make_config = students.students_config
        monkeypatch.setattr(students, "students_config",
                            lambda root: {**make_config(root), "sphinx": {**make_config(root)["sphinx"], "config": {
                                **make_config(root)["sphinx"]["config"], "vaebook_students": False}}})
    html = students.build(tmp_path)
    page = (html / "chapters" / "01-a.html").read_text()
    assert "Compute" in page
    if edition == "full":
        assert "SECRET-TEXT" in page and "SECRET-BLOCK" in page and students.leaks(html)
        return
    assert "SECRET" not in page
    assert not students.leaks(html)
    assert "CONFIG" in (html / "intro.html").read_text()  # the chapter-parameters directive listed the cell
    # The Colab button opens the students' branch, whose notebook (written by the build) has no solution.
    assert students.colab_targets(html) == {"chapters/01-a.html": ("students", "chapters/01-a.ipynb")}
    branch_copy = (tmp_path / "_build" / "students" / "notebooks" / "chapters" / "01-a.ipynb").read_text()
    assert "SECRET" not in branch_copy and "Compute" in branch_copy and '"outputs": []' in branch_copy
    # A solution in the notebook behind the button is caught.
    (tmp_path / "_build" / "students" / "notebooks" / "chapters" / "01-a.ipynb").write_text(
        nbformat.writes(notebook_with_solution()))
    assert any("Colab button" in leak for leak in students.leaks(html))


# --- the execution cache guard (book/cache_guard.py) ------------------------------------------------------------

import cache_guard  # noqa: E402  (book/cache_guard.py)


def fake_repo(root: Path) -> None:
    (root / "vaelib" / "js").mkdir(parents=True)
    (root / "vaelib" / "models.py").write_text("A = 1\n")
    (root / "vaelib" / "js" / "latent.js").write_text("export default {}\n")
    (root / "pyproject.toml").write_text("[project]\n")


def executed(cache: Path) -> Path:
    (cache / "executed").mkdir(parents=True, exist_ok=True)
    marker = cache / "executed" / "chapter.ipynb"
    marker.write_text("{}")
    return marker


def test_cache_guard_keeps_the_cache_while_vaelib_is_unchanged(tmp_path):
    fake_repo(tmp_path)
    cache = tmp_path / "_build" / ".jupyter_cache"
    assert cache_guard.guard(cache, tmp_path) == "new"
    marker = executed(cache)
    assert cache_guard.guard(cache, tmp_path) == "kept" and marker.exists()
    # A fresh checkout (new file dates, same contents) or a restored CI cache: still kept.
    for path in cache_guard.sources(tmp_path):
        path.touch()
    restored = tmp_path / "elsewhere"
    shutil.copytree(cache, restored)
    assert cache_guard.guard(restored, tmp_path) == "kept" and (restored / "executed" / "chapter.ipynb").exists()


@pytest.mark.parametrize("change", ["python", "javascript", "new file", "pyproject"])
def test_cache_guard_clears_the_cache_when_vaelib_changed(tmp_path, change):
    fake_repo(tmp_path)
    cache = tmp_path / ".jupyter_cache"
    cache_guard.guard(cache, tmp_path)
    marker = executed(cache)
    {"python": lambda: (tmp_path / "vaelib" / "models.py").write_text("A = 2\n"),
     "javascript": lambda: (tmp_path / "vaelib" / "js" / "latent.js").write_text("export default {a: 1}\n"),
     "new file": lambda: (tmp_path / "vaelib" / "cache.py").write_text(""),
     "pyproject": lambda: (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")}[change]()
    assert cache_guard.guard(cache, tmp_path) == "cleared" and not marker.exists()
    assert cache_guard.guard(cache, tmp_path) == "kept"


def test_cache_guard_clears_a_cache_of_unknown_provenance(tmp_path):
    fake_repo(tmp_path)
    cache = tmp_path / ".jupyter_cache"
    marker = executed(cache)           # executions with no digest: made by an older build, or by hand
    assert cache_guard.guard(cache, tmp_path) == "cleared" and not marker.exists()


def test_the_pages_workflow_caches_the_folder_that_holds_the_digest():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "pages.yml").read_text())
    paths = [step["with"]["path"] for job in workflow["jobs"].values() for step in job["steps"]
             if str(step.get("uses", "")).startswith("actions/cache")]
    assert paths and any("_build/.jupyter_cache" in p.split() for p in paths)
    makefile = (ROOT / "Makefile").read_text()
    assert "book/cache_guard.py" in makefile.split("\nbook:")[1].split("\n\n")[0]
