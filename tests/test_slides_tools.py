"""The slide selection (tools/mark_slides.py) and the deck builder (book/slides.py) on small notebooks, and the
PDF helpers (book/pdf.py): no build, no browser. The built decks and PDF are tested by ``make test-slides``."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from book import pdf, slides  # noqa: E402
from tools import mark_slides, strip_notebooks  # noqa: E402


def md(source, kind=None, cell_id=None):
    cell = nbformat.v4.new_markdown_cell(source)
    if kind:
        cell.metadata["slideshow"] = {"slide_type": kind}
    if cell_id:
        cell.id = cell_id
    return cell


def code(source, kind=None, outputs=(), alt=None, cell_id=None):
    cell = nbformat.v4.new_code_cell(source, outputs=list(outputs))
    if kind:
        cell.metadata["slideshow"] = {"slide_type": kind}
    if alt:
        cell.metadata["mystnb"] = {"image": {"alt": alt}}
    if cell_id:
        cell.id = cell_id
    return cell


PNG = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})


def glue_output(name, value):
    return nbformat.v4.new_output(
        "display_data",
        data={"application/papermill.record/text/plain": repr(value)},
        metadata={"scrapbook": {"name": name, "mime_prefix": "application/papermill.record/"}},
    )


def chapter_nb():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        code("setup()"),
        md("# 9. A chapter\n\nIntro."),
        md("## Learning objectives\n\n- one\n- two"),
        code("glue('x', 0.25)", outputs=[glue_output("x", 0.25)]),
        md("Prose between figures."),
        code("plot()", outputs=[PNG], alt="A curve of $y$ against $x$"),
        md("End of the section before.\n\n## Derivation\n\nWe find $a = b$, {glue:text}`x:.0%` of it.\n\n### Step two\n\n$$\nc = d\n$$"),
        md("## Figures only"),
        code("plot()", outputs=[PNG], alt="Another figure"),
        code("BetaExplorer(a=1)", outputs=[]),
        md("## Exercises\n\n```{exercise}\n:label: e1\nDo it.\n```"),
        code("solution()", outputs=[PNG], alt="A solution's figure"),
        md("More solution text.\n\n## Summary\n\n- {ref}`the exercise <e1>` shows it."),
    ]
    return nb


def test_rules_choose_headings_figures_explorers_and_skip_exercises():
    nb = chapter_nb()
    mark_slides.mark(nb, "09-x.ipynb")
    kinds = [c.metadata["slideshow"]["slide_type"] for c in nb.cells]
    assert kinds == ["skip", "skip", "slide", "skip", "skip", "slide", "slide", "slide", "slide", "slide", "skip",
                     "skip", "slide"]
    assert mark_slides.unmarked(nb) == []


def test_marking_keeps_hand_choices_unless_reset():
    nb = chapter_nb()
    nb.cells[4].metadata["slideshow"] = {"slide_type": "fragment"}
    mark_slides.mark(nb, "09-x.ipynb")
    assert nb.cells[4].metadata["slideshow"]["slide_type"] == "fragment"
    mark_slides.mark(nb, "09-x.ipynb", reset=True)
    assert nb.cells[4].metadata["slideshow"]["slide_type"] == "skip"


def test_strip_keeps_the_slide_metadata():
    nb = chapter_nb()
    mark_slides.mark(nb, "09-x.ipynb")
    strip_notebooks.strip(nb)
    assert all("slide_type" in c.metadata["slideshow"] for c in nb.cells)


def test_every_chapter_cell_has_a_slide_type():
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        missing = mark_slides.unmarked(nbformat.read(path, as_version=4))
        assert not missing, f"{path.name}: cells {missing} have no slideshow.slide_type: run python -m tools.mark_slides"


LINKS = {"page": "../chapters/09-x.html", "pdf": "../pdf/book.pdf", "book_title": "The book"}


def deck(nb):
    mark_slides.mark(nb, "09-x.ipynb")
    return slides.build_slides(nb, "09-x", LINKS)


def test_deck_has_title_slide_one_slide_per_heading_and_no_exercises():
    made, widgets, title = deck(chapter_nb())
    assert title == "9. A chapter"
    bodies = ["".join(s.body) for s in made]
    assert "9. A chapter" in bodies[0] and "../chapters/09-x.html" in bodies[0]
    assert "Learning objectives" in bodies[1]
    assert "data:image/png;base64," in bodies[2] and 'alt="A curve of $y$ against $x$"' in bodies[2]
    derivation = bodies[3]
    assert "End of the section before" not in derivation          # text before the first heading is left out
    assert r"\(a = b\)" in derivation and "25%" in derivation     # maths for MathJax, glued number formatted
    assert "Step two" in bodies[4] and r"\[" in bodies[4] and 'class="context"' in bodies[4]
    assert "Figures only" in bodies[5] and "data:image/png" in bodies[5]   # a lone heading titles its figure
    assert "Summary" in bodies[-1] and "the exercise" in bodies[-1] and "{ref}" not in bodies[-1]
    everything = "".join(bodies)
    assert "Do it." not in everything and "solution" not in everything.lower()
    assert len(made) == 7 and not widgets     # the explorer cell here has no output, so it shows nothing


def test_fragments_notes_and_subslides():
    nb = chapter_nb()
    mark_slides.mark(nb, "09-x.ipynb")
    nb.cells[4].metadata["slideshow"]["slide_type"] = "fragment"
    nb.cells[5].metadata["slideshow"]["slide_type"] = "subslide"
    nb.cells[3].metadata["slideshow"]["slide_type"] = "notes"      # only a glued value: shows nothing
    made, _, _ = slides.build_slides(nb, "09-x", LINKS)
    assert '<div class="fragment"><p>Prose between figures.</p>' in "".join(made[1].body)
    assert made[2].vertical
    html = slides.nest(made)
    assert re.search(r"<section><section data-cells=\"[^\"]*ch|<section><section", html)


def test_widget_outputs_embed_their_view_and_state():
    nb = chapter_nb()
    view = {"model_id": "abc", "version_major": 2, "version_minor": 1}
    nb.cells[9].outputs = [nbformat.v4.new_output("execute_result", data={slides.WIDGET_VIEW: view, "text/plain": "W"},
                                                   execution_count=1)]
    nb.metadata["widgets"] = {slides.WIDGET_STATE: {"version_major": 2, "version_minor": 0, "state": {}}}
    mark_slides.mark(nb, "09-x.ipynb")
    page, n = slides.render_deck(nb, "09-x", LINKS)
    assert f'<script type="{slides.WIDGET_VIEW}">' in page and f'<script type="{slides.WIDGET_STATE}">' in page
    assert page.index("reveal.js/reveal.js") < page.index("requirejs/require.js")   # reveal before require.js
    assert "http://" not in page and "https://" not in page                        # nothing from another host
    assert n == 8


def test_a_wrong_slide_type_is_named():
    nb = chapter_nb()
    nb.cells[2].metadata["slideshow"] = {"slide_type": "Slide!"}
    with pytest.raises(slides.SlidesError, match="Slide!"):
        slides.build_slides(nb, "09-x", LINKS)


def test_an_unexecuted_chapter_is_an_error_not_a_run(tmp_path):
    path = tmp_path / "chapters" / "09-x.ipynb"
    path.parent.mkdir()
    nbformat.write(chapter_nb(), path)

    class EmptyCache:
        def list_cache_records(self):
            return []

    with pytest.raises(slides.SlidesError, match="make book"):
        slides.executed_notebook(path, EmptyCache())


def test_pdf_helpers():
    assert pdf.plain(r"\(\beta\)-VAE and \(\mathrm{KL}(q \,\|\, p)\)") == "β-VAE and KL(q ‖ p)"
    assert pdf.site_url({"repository": {"url": "https://github.com/me/book"}}) == "https://me.github.io/book/"
    assert pdf.site_url({"html": {"baseurl": "https://example.org/b"}}) == "https://example.org/b/"
    assert pdf.toc_docs(ROOT)[0] == "intro" and "instructors" in pdf.toc_docs(ROOT)
