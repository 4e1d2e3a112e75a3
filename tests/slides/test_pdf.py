"""The printable edition (``make pdf``): one PDF with a title page, a table of contents, every chapter (its title,
typeset maths, explorers noted), at least one page per chapter and page numbers."""
from __future__ import annotations

import re

import nbformat
import pytest
import yaml

from book.pdf import INTERACTIVE_NOTE
from book.slides import chapter_notebooks

from .conftest import HTML, REPO as ROOT

CHAPTERS = chapter_notebooks()


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u2019", "'")).strip()


def title_of(path) -> str:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        m = re.search(r"^#[ \t]+(.+)$", cell.source, re.M) if cell.cell_type == "markdown" else None
        if m:
            return m.group(1).strip()
    raise AssertionError(f"{path} has no title")


def outline(reader) -> dict[str, int]:
    """Top-level bookmarks: {title (normalised like the text): 0-based page}."""
    return {norm(item.title): reader.get_destination_page_number(item) for item in reader.outline if not isinstance(item, list)}


def test_one_page_per_chapter_at_least(book_pdf):
    reader, _ = book_pdf
    assert len(reader.pages) >= 2 + len(CHAPTERS)


def test_has_a_table_of_contents(book_pdf):
    reader, texts = book_pdf
    contents = [i for i, t in enumerate(texts[:4]) if norm(t).startswith("Contents")]
    assert contents, "no page starting with 'Contents' among the first four"
    toc = norm(" ".join(texts[contents[0]: contents[0] + 3]))
    for path in CHAPTERS:
        assert norm(title_of(path)) in toc, f"the contents do not list {title_of(path)!r}"
    assert "Contents" in outline(reader)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_is_printed_with_its_title(book_pdf, path):
    reader, texts = book_pdf
    title = norm(title_of(path))
    marks = outline(reader)
    assert title in marks, f"no bookmark for {title!r} (bookmarks: {list(marks)})"
    first = marks[title]
    assert title in norm(texts[first]), f"page {first + 1} (where the bookmark points) does not show {title!r}"
    ends = sorted(p for p in marks.values() if p > first)
    pages = texts[first: ends[0] if ends else len(texts)]
    assert pages, f"{title!r} has no pages"
    body = norm(" ".join(pages))
    assert "\\(" not in body and "\\[" not in body and "$$" not in body, f"{title!r}: TeX printed untypeset"
    if "application/vnd.jupyter.widget-view+json" in (HTML / "chapters" / f"{path.stem}.html").read_text(encoding="utf-8"):
        assert norm(INTERACTIVE_NOTE) in body, f"{title!r}: an explorer is printed without the line about the web page"


def test_text_contains_every_chapter_title(book_pdf):
    _, texts = book_pdf
    everything = norm(" ".join(texts))
    missing = [title_of(p) for p in CHAPTERS if norm(title_of(p)) not in everything]
    assert not missing


def test_pages_are_numbered(book_pdf):
    """Every page but the title page carries the book's title and its number, as the contents count them."""
    _, texts = book_pdf
    title = norm(yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["title"])
    unnumbered = [i + 1 for i, t in enumerate(texts[1:], start=1) if f"{title} · {i + 1}" not in norm(t)]
    assert not unnumbered, f"pages without their number: {unnumbered[:10]}"
