"""Fixtures for the tests of the lecture slides and the printable PDF (``make test-slides`` builds both first).

A missing deck or PDF is a test FAILURE naming the command that builds it, never a skip. The decks are served on
127.0.0.1 and opened in Chromium (what ``tools/find_browser.py`` finds); every request to another host is aborted.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from book.pdf import serve
# The browser and the one-line stop when there is none: the same as the browser tests'.
from tests.browser.conftest import browser, pytest_collection_finish  # noqa: F401 - fixtures and a hook for pytest

REPO = Path(__file__).resolve().parents[2]
SLIDES = REPO / "_build" / "slides"
PDF = REPO / "_build" / "pdf" / "book.pdf"
HTML = REPO / "_build" / "html"


@pytest.fixture(scope="session")
def slides_server():
    """``_build/slides`` served on 127.0.0.1; yields the base URL (ending in '/')."""
    if not SLIDES.is_dir():
        pytest.fail(f"No decks at {SLIDES}: build them with `make slides` (after `make book`), or run `make test-slides`.",
                    pytrace=False)
    httpd, base = serve(SLIDES)
    yield base
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def book_pdf():
    """The PDF, read by pypdf, with the text of every page (``(reader, [text of page 1, ...])``)."""
    from pypdf import PdfReader

    if not PDF.is_file():
        pytest.fail(f"No PDF at {PDF}: build it with `make pdf` (after `make book`), or run `make test-slides`.",
                    pytrace=False)
    reader = PdfReader(PDF)
    return reader, [page.extract_text() or "" for page in reader.pages]
