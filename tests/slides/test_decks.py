"""The lecture slides (``make slides``): one reveal.js deck per chapter, offline, 10 to 30 slides, maths typeset.

Each deck is opened in Chromium from 127.0.0.1 with every other host refused, then every slide is shown in turn
(explorers render, slides are fitted): no console error, no failed or outside request, every maths element typeset.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from book.slides import MAX_SLIDES, MIN_SLIDES, chapter_notebooks

from .conftest import HTML, SLIDES

CHAPTERS = [p.stem for p in chapter_notebooks()]
WIDGET_VIEWS_UNRENDERED = """() => Array.from(
  document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')).filter(s => {
    const prev = s.previousElementSibling;
    return !(prev && prev.classList.contains('widget-subarea') && prev.childElementCount > 0); }).length"""


def test_there_are_chapters():
    assert CHAPTERS, "_toc.yml lists no chapter notebook"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_deck_opens_offline_and_typesets(browser, slides_server, chapter):
    deck = SLIDES / f"{chapter}.html"
    assert deck.is_file(), f"no deck {deck}: run `make slides`"
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    errors, failed, outside = [], [], []

    def route(r):
        url = r.request.url
        if url.startswith(("data:", "blob:", "about:")) or urlsplit(url).hostname == "127.0.0.1":
            r.continue_()
        else:
            outside.append(url)
            r.abort("blockedbyclient")

    context.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(f"uncaught {e}"))
    page.on("requestfailed", lambda r: failed.append(f"{r.url} ({r.failure})"))
    page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.url} (HTTP {r.status})"))
    try:
        page.goto(slides_server + deck.name, wait_until="load")
        page.wait_for_function("() => window.Reveal && Reveal.isReady()", timeout=30_000)
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30_000)
        page.evaluate("async () => { await MathJax.startup.promise; }")
        page.wait_for_function(f"() => ({WIDGET_VIEWS_UNRENDERED})() === 0", timeout=30_000)
        total = page.evaluate("Reveal.getTotalSlides()")
        # Show every slide (as a lecturer would), so that what happens on showing one is checked too.
        shown = page.evaluate(
            """async () => { let n = 0;
                 for (const s of Reveal.getSlides()) { const i = Reveal.getIndices(s); Reveal.slide(i.h, i.v);
                   n += 1; await new Promise(r => setTimeout(r, 30)); }
                 return n; }"""
        )
        page.wait_for_load_state("networkidle")
        maths = page.evaluate(
            """() => { const all = Array.from(document.querySelectorAll('.slides .math'));
                 return {total: all.length,
                         untypeset: all.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 60)),
                         errors: document.querySelectorAll('mjx-merror').length,
                         containers: document.querySelectorAll('.slides mjx-container').length}; }"""
        )
        raw_tex = page.evaluate(
            """() => { const t = document.createTreeWalker(document.querySelector('.slides'), NodeFilter.SHOW_TEXT);
                 const out = []; let n;
                 while ((n = t.nextNode())) { if (n.parentElement.closest('script, pre')) continue;
                   if (/\\\\\\(|\\\\\\[|\\$[^$\\s][^$]*\\$/.test(n.textContent)) out.push(n.textContent.slice(0, 60)); }
                 return out; }"""
        )
    finally:
        context.close()
    assert not outside, f"{deck.name} asked another host for: {outside}"
    assert not errors, f"{deck.name}: console errors: {errors}"
    assert not failed, f"{deck.name}: failed requests: {failed}"
    assert MIN_SLIDES <= total <= MAX_SLIDES, f"{deck.name} has {total} slides, not {MIN_SLIDES} to {MAX_SLIDES}"
    assert shown == total
    assert maths["total"] > 0 and maths["containers"] > 0, f"{deck.name} shows no maths at all"
    assert not maths["untypeset"], f"{deck.name}: maths not typeset: {maths['untypeset']}"
    assert maths["errors"] == 0, f"{deck.name}: {maths['errors']} MathJax errors"
    assert not raw_tex, f"{deck.name}: TeX left as text: {raw_tex}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_deck_has_the_chapters_outputs(chapter):
    """Figures are the executed notebook's own images; glue roles are resolved; no exercise is shown."""
    text = (SLIDES / f"{chapter}.html").read_text(encoding="utf-8")
    assert 'src="data:image/png;base64,' in text, f"{chapter}: no figure on the slides"
    assert "{glue" not in text and "{ref}" not in text, f"{chapter}: a MyST role was left unresolved"
    assert "solution-start" not in text and "{exercise}" not in text


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_page_links_its_deck_and_the_pdf(chapter):
    page = HTML / "chapters" / f"{chapter}.html"
    assert page.is_file(), f"no built page {page}: run `make book`"
    text = page.read_text(encoding="utf-8")
    assert f'href="../slides/{chapter}.html"' in text, f"{page.name} does not link its deck"
    assert 'href="../pdf/book.pdf"' in text, f"{page.name} does not link the PDF"


def test_book_links_the_pdf_and_lists_the_decks():
    assert 'href="pdf/book.pdf"' in (HTML / "intro.html").read_text(encoding="utf-8")
    instructors = (HTML / "instructors.html").read_text(encoding="utf-8")
    for chapter in CHAPTERS:
        assert f'href="slides/{chapter}.html"' in instructors, f"instructors.html does not list the deck of {chapter}"
    assert re.search(r"slideshow", instructors)
