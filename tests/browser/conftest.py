"""Fixtures for the browser tests: the built book served on 127.0.0.1, Debian's Chromium driven by Playwright.

The book must be built first (``make book``; ``make test-browser`` does it). A missing build is a test FAILURE with
instructions, never a skip. Every request to a host other than 127.0.0.1 is aborted and recorded, so a page that
would need the internet (a CDN script, a web font) fails its test.

Environment: ``VAEBOOK_ROOT`` (the book's source folder, holding ``_toc.yml`` and ``_config.yml``; default: this
repository), ``VAEBOOK_HTML`` (the built site; default ``$VAEBOOK_ROOT/_build/html``), ``CHROMIUM`` (the browser; default:
what ``tools/find_browser.py`` finds: Debian's or Ubuntu's Chromium, Google Chrome, or Playwright's own Chromium).
Without a browser the session stops at once with one line saying how to install one.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from book.pdf import serve
from tools.find_browser import ADVICE, CHROMIUM_ARGS, find_browser

REPO = Path(__file__).resolve().parents[2]
BOOK_ROOT = Path(os.environ.get("VAEBOOK_ROOT", REPO)).resolve()
HTML = Path(os.environ.get("VAEBOOK_HTML", BOOK_ROOT / "_build" / "html")).resolve()
CHROMIUM = find_browser()
AXE_JS = REPO / "node_modules" / "axe-core" / "axe.min.js"
LOCAL_HOST = "127.0.0.1"

# Console messages that every page of this theme version emits in a fresh browser profile (see
# /work/shared/notes/jupyter-book.md): sphinx-thebe's inline script declares THEBE_JS_URL twice, and
# pydata-sphinx-theme reads an empty theme mode from localStorage. Only these exact quirks are ignored.
KNOWN_CONSOLE_QUIRKS = (
    "Identifier 'THEBE_JS_URL' has already been declared",
    "Got invalid theme mode",
)


def toc_pages(root: Path = BOOK_ROOT) -> list[str]:
    """Every document listed in ``_toc.yml`` (root first), as source paths with their suffix removed."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))
            for part in entry.get("parts", []) if isinstance(entry.get("parts"), list) else []:
                walk(part.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return [str(Path(p).with_suffix("")) if Path(p).suffix in {".md", ".ipynb"} else p for p in pages]


def source_of(page: str, root: Path = BOOK_ROOT) -> Path:
    """The source file (``.ipynb`` or ``.md``) of a page listed in ``_toc.yml``."""
    for suffix in (".ipynb", ".md"):
        if (root / f"{page}{suffix}").is_file():
            return root / f"{page}{suffix}"
    raise FileNotFoundError(f"_toc.yml lists {page!r} but neither {page}.ipynb nor {page}.md exists in {root}")


def pytest_collection_finish(session):
    """No browser: one line and stop, instead of an error in every test."""
    if CHROMIUM is None and session.items:
        pytest.exit(ADVICE, returncode=1)


@pytest.fixture(scope="session")
def built_book() -> Path:
    """The built HTML book; FAILS (does not skip) when it is missing."""
    if not (HTML / "index.html").is_file():
        pytest.fail(
            f"No built book at {HTML} (index.html is missing). Build it first with `make book` "
            f"(`make test-browser` builds it on demand), or point VAEBOOK_HTML at a build.",
            pytrace=False,
        )
    return HTML


@pytest.fixture(scope="session")
def server(built_book: Path):
    """Serve the built book on 127.0.0.1 on a free port; yields the base URL (ending in '/')."""
    httpd, base = serve(built_book)
    yield base
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def browser():
    """The Chromium that tools/find_browser.py found, headless."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@dataclass
class Visit:
    """A page opened in a fresh browser context, with everything that went wrong while it loaded."""

    page: object
    url: str
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    unrendered_widgets: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Console errors (known theme quirks removed) and failed or missing local requests."""
        errors = [m for m in self.console_errors if not any(q in m for q in KNOWN_CONSOLE_QUIRKS)]
        return [f"console error: {m}" for m in errors] + [f"failed request: {r}" for r in self.failed_requests]


def is_local(url: str) -> bool:
    """True for URLs that stay on this machine: 127.0.0.1, or data:/blob:/about: URLs (no network)."""
    parts = urlsplit(url)
    if parts.scheme in {"data", "blob", "about"}:
        return True
    return parts.hostname == LOCAL_HOST


@pytest.fixture(scope="session")
def visits(browser, server):
    """Session cache: each page is loaded once for the read-only checks (``visits(path) -> Visit``)."""
    opened: dict[str, Visit] = {}
    contexts = []

    def _visit(path: str) -> Visit:
        if path not in opened:
            opened[path] = _load(browser, server, path, contexts)
        return opened[path]

    yield _visit
    for context in contexts:
        context.close()


@pytest.fixture
def open_page(browser, server):
    """Open a book page (path relative to the site root, e.g. ``chapters/01-x.html``); returns a ``Visit``.

    Each call gets its own browser context (use it for checks that change the page, e.g. moving sliders).
    Requests to any host but 127.0.0.1 are aborted and listed in ``visit.external_requests``; console errors,
    uncaught exceptions and failed or 4xx/5xx requests are recorded.
    The page is left open once it has loaded, MathJax has finished and the widget manager has rendered.
    """
    contexts = []

    def _open(path: str) -> Visit:
        return _load(browser, server, path, contexts)

    yield _open
    for context in contexts:
        context.close()


def _load(browser, server: str, path: str, contexts: list) -> Visit:
    """Open ``path`` in a new browser context (appended to ``contexts``) and wait for it to settle."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    contexts.append(context)
    page = context.new_page()
    visit = Visit(page=page, url=server + path)

    def route(route):
        if is_local(route.request.url):
            route.continue_()
        else:
            visit.external_requests.append(route.request.url)
            route.abort("blockedbyclient")

    context.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and visit.console_errors.append(m.text))
    page.on("pageerror", lambda e: visit.console_errors.append(f"uncaught {e}"))

    def failed(request):
        if is_local(request.url):
            visit.failed_requests.append(f"{request.url} ({request.failure})")

    page.on("requestfailed", failed)
    page.on(
        "response",
        lambda r: r.status >= 400 and visit.failed_requests.append(f"{r.url} (HTTP {r.status})"),
    )
    response = page.goto(visit.url, wait_until="load")
    assert response is not None and response.ok, f"{visit.url} answered {response and response.status}"
    settle(page, visit)
    return visit


def settle(page, visit: Visit, timeout_ms: int = 30_000) -> None:
    """Wait until MathJax has typeset the page and every embedded widget view has rendered (or time out).

    A widget view that never renders is recorded in ``visit.unrendered_widgets`` for the tests to report.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            "() => !document.querySelector('.math') || (window.MathJax && MathJax.startup && MathJax.startup.promise)",
            timeout=timeout_ms,
        )
        page.evaluate("async () => { if (window.MathJax && MathJax.startup) await MathJax.startup.promise; }")
    except PlaywrightTimeout:
        visit.console_errors.append("MathJax did not start (is vendor/mathjax served?)")
    try:
        page.wait_for_function(f"() => {UNRENDERED_VIEWS_JS}.length === 0", timeout=timeout_ms)
    except PlaywrightTimeout:
        visit.unrendered_widgets.extend(page.evaluate(UNRENDERED_VIEWS_JS))
    page.wait_for_load_state("networkidle")


# Model ids of embedded widget views that the widget manager has not (yet) rendered into a `.widget-subarea`.
UNRENDERED_VIEWS_JS = """(() => Array.from(
    document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')
).filter(s => {
    const prev = s.previousElementSibling;
    return !(prev && prev.classList.contains('widget-subarea') && prev.childElementCount > 0);
}).map(s => { try { return JSON.parse(s.textContent).model_id; } catch (e) { return s.textContent.slice(0, 80); } }))()"""
