"""Print the built book into one PDF, ``_build/pdf/book.pdf``: title page, contents, every page of the book.

Run by ``make pdf`` (after ``make book``, whose pages it prints, so no chapter runs again)::

    python book/pdf.py            # -> _build/pdf/book.pdf

How: the built site ``_build/html`` is served on 127.0.0.1 and every page listed in ``_toc.yml`` is opened in
Chromium (Playwright, the browser the tests drive; every request to another host is refused), left to typeset its
maths and render its explorers, and printed to PDF with a print style (no navigation, solutions opened). An explorer
is printed as it first appears, with a line saying that the interactive version is on the web page. A title page
and a table of contents (chapters and sections with their page numbers, as links) are printed the same way; pypdf
joins the parts, adds the bookmarks and stamps the page numbers.
"""
from __future__ import annotations

import argparse
import functools
import html
import http.server
import io
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from book.slides import toc_docs  # noqa: E402
from tools.find_browser import ADVICE, CHROMIUM_ARGS, find_browser  # noqa: E402

A4_MM = (210, 297)
MM_TO_PT = 72 / 25.4
PX_TO_PT = 0.75                   # CSS pixels (96 per inch) to PDF points (72 per inch)
MARGIN_MM = {"top": 16, "bottom": 18, "left": 16, "right": 16}
PRINT_SCALE = 0.8                 # the web pages' 16 px body text prints at about 9.6 pt
INTERACTIVE_NOTE = "Interactive in the web version of this page:"

# The book's pages, restyled for paper: no navigation, full width, solutions open, figures kept whole.
PRINT_CSS = """
@media print {
  .bd-header, .bd-header-article, .header-article, .bd-sidebar-primary, .bd-sidebar-secondary, .bd-sidebar,
  .prev-next-area, .prev-next-footer, .bd-footer, .bd-footer-article, .bd-footer-content, footer, .skip-link,
  #pst-back-to-top, .search-button-field, .copybtn, .toggle-button, .headerlink, #pst-skip-link,
  .vaebook-deck-link, .onlyprint { display: none !important; }
  html, body { background: #fff !important; }
  /* sphinx-book-theme hides the article's title in print (it shows it in its .onlyprint header, hidden above). */
  .bd-main .bd-content .bd-article h1:first-of-type { display: block !important; }
  .bd-page-width, .bd-container, .bd-container__inner, .bd-main, .bd-content, .bd-article-container, .bd-article {
    max-width: none !important; width: auto !important; min-width: 0 !important; margin: 0 !important;
    padding: 0 !important; display: block !important;
  }
  pre { white-space: pre-wrap !important; overflow-wrap: anywhere; overflow: visible !important; }
  .widget-subarea, .cell_output { max-width: 100%; overflow: hidden; }
  h1, h2, h3, h4 { break-after: avoid; page-break-after: avoid; }
  img, figure, .cell_input, .cell_output, .widget-subarea, .math, mjx-container[display="true"], table {
    break-inside: avoid; page-break-inside: avoid;
  }
  .cell_output img { max-width: 100% !important; height: auto !important; }
  .toggle-hidden, .dropdown > *, details > * { display: revert !important; visibility: visible !important; }
  .vaebook-print-note { font-style: italic; font-size: 0.85em; color: #444; margin: 0.2em 0 1em; }
  a { color: inherit; }
}
"""

# Before printing: open every solution, and add the line under each explorer.
PREPARE_JS = r"""(note) => {
  document.querySelectorAll('details').forEach(d => d.open = true);
  document.querySelectorAll('.toggle-hidden').forEach(e => e.classList.remove('toggle-hidden'));
  document.querySelectorAll('button.toggle-button').forEach(b => b.remove());
  let explorers = 0;
  document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').forEach(s => {
    const output = s.closest('.cell_output') || s.parentElement;
    if (output.querySelector('.vaebook-print-note')) return;
    const p = document.createElement('p');
    p.className = 'vaebook-print-note';
    p.append(note.text + ' ');
    const a = document.createElement('a');
    a.href = note.url; a.textContent = note.url;
    p.append(a);
    output.append(p);
    explorers += 1;
  });
  // A hidden link to every section, so that the PDF gets a named destination for each (the table of contents).
  const nav = document.createElement('nav');
  nav.style.cssText = 'position:absolute;top:0;left:0;width:1px;height:1px;overflow:hidden;opacity:0.01';
  nav.setAttribute('aria-hidden', 'true');
  const sections = [];
  const tex = new Map();
  if (window.MathJax && MathJax.startup && MathJax.startup.document) {
    for (const item of MathJax.startup.document.math) tex.set(item.typesetRoot, item.math);
  }
  const source = node => {   // a heading's text, its maths as TeX between \( \)
    if (node.nodeType === Node.TEXT_NODE) return node.textContent;
    if (node.nodeType !== Node.ELEMENT_NODE || node.classList.contains('headerlink')) return '';
    if (node.tagName === 'MJX-CONTAINER') return '\\(' + (tex.get(node) || node.textContent) + '\\)';
    return Array.from(node.childNodes).map(source).join('');
  };
  document.querySelectorAll('article section[id] > h2, article section[id] > h1').forEach(h => {
    const id = h.parentElement.id;
    const a = document.createElement('a'); a.href = '#' + id; a.textContent = '.'; nav.append(a);
    sections.push({id: id, level: h.tagName === 'H1' ? 1 : 2, text: source(h).replace(/\s+/g, ' ').trim()});
  });
  // The chapter's title first (in the notebooks the setup cell comes before it).
  const title = document.querySelector('article section[id] > h1');
  const article = document.querySelector('article');
  if (title && article) article.prepend(title);
  document.body.append(nav);
  return {explorers: explorers, sections: sections};
}"""


@dataclass
class Part:
    """One printed page of the book."""

    doc: str                      # e.g. chapters/03-kl-divergence
    title: str
    pdf: bytes = b""
    pages: int = 0
    explorers: int = 0
    sections: list[dict] = field(default_factory=list)   # {id, level, title html, page (0-based within part)}


def site_url(config: dict) -> str:
    """The published book's address: ``html.baseurl``, else GitHub Pages' address for ``repository.url``."""
    base = (config.get("html") or {}).get("baseurl") or ""
    if base:
        return base.rstrip("/") + "/"
    repo = (config.get("repository") or {}).get("url", "")
    parts = urlsplit(repo)
    bits = [b for b in parts.path.split("/") if b]
    if parts.hostname == "github.com" and len(bits) >= 2:
        return f"https://{bits[0]}.github.io/{bits[1]}/"
    return repo.rstrip("/") + "/"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the standard library's signature
        pass


def serve(folder: Path):
    handler = functools.partial(_Quiet, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/"


def _local_only(route, problems: list[str]):
    url = route.request.url
    host = urlsplit(url).hostname
    if url.startswith(("data:", "blob:", "about:")) or host == "127.0.0.1":
        route.continue_()
    else:
        problems.append(f"request to another host refused: {url}")
        route.abort("blockedbyclient")


def settle(page, timeout_ms: int = 60_000) -> None:
    """Wait until MathJax has typeset the page and the explorers have rendered."""
    page.wait_for_function(
        "() => !document.querySelector('.math') || (window.MathJax && MathJax.startup && MathJax.startup.promise)",
        timeout=timeout_ms,
    )
    page.evaluate("async () => { if (window.MathJax && MathJax.startup) await MathJax.startup.promise; }")
    page.wait_for_function(
        """() => Array.from(document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]'))
              .every(s => { const p = s.previousElementSibling;
                            return p && p.classList.contains('widget-subarea') && p.childElementCount > 0; })""",
        timeout=timeout_ms,
    )
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)   # the explorers draw their first frame


def pdf_options(**extra) -> dict:
    options = dict(
        format="A4",
        print_background=True,
        scale=PRINT_SCALE,
        margin={k: f"{v}mm" for k, v in MARGIN_MM.items()},
    )
    options.update(extra)
    return options


def print_page(context, base: str, part: Part, web: str, problems: list[str]) -> None:
    from pypdf import PdfReader

    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    response = page.goto(base + part.doc + ".html", wait_until="load")
    if response is None or not response.ok:
        raise RuntimeError(f"{part.doc}.html: the built book has no such page (run `make book`)")
    settle(page)
    page.add_style_tag(content=PRINT_CSS)
    info = page.evaluate(PREPARE_JS, {"text": INTERACTIVE_NOTE, "url": web + part.doc + ".html"})
    page.emulate_media(media="print")
    page.wait_for_timeout(200)
    part.pdf = page.pdf(**pdf_options())
    part.explorers = info["explorers"]
    page.close()
    problems.extend(f"{part.doc}: {e}" for e in errors if "THEBE_JS_URL" not in e and "invalid theme mode" not in e)
    reader = PdfReader(io.BytesIO(part.pdf))
    part.pages = len(reader.pages)
    dests = {}
    for name, dest in reader.named_destinations.items():
        try:
            dests[name.lstrip("/")] = reader.get_destination_page_number(dest)
        except Exception:  # noqa: BLE001 - a destination pypdf cannot place is simply not listed
            continue
    for sec in info["sections"]:
        if sec["id"] in dests:
            part.sections.append({**sec, "page": dests[sec["id"]]})
    if part.sections and part.sections[0]["level"] == 1:
        part.title = part.sections[0]["text"]


# --- Title page, contents, page numbers ---------------------------------------------------------------------------
BASE_CSS = """
@page { size: A4; margin: 0; }
html, body { margin: 0; padding: 0; }
body { font-family: "Source Sans Pro", "Noto Sans", "DejaVu Sans", sans-serif; color: #222; }
.sheet { box-sizing: border-box; width: 210mm; height: 296.5mm; padding: 28mm 22mm; overflow: hidden;
         break-after: page; page-break-after: always; position: relative; }
.sheet:last-child { break-after: auto; page-break-after: auto; }
"""


TEX_WORDS = {r"\beta": "β", r"\mu": "μ", r"\sigma": "σ", r"\theta": "θ", r"\phi": "φ", r"\mid": "|",
             r"\|": "‖", r"\,": " ", r"\ge": "≥", r"\le": "≤", r"\to": "→", r"\log": "log", r"\mathbb E": "E"}


def plain(text: str) -> str:
    """A heading with TeX maths (between \\( \\)) as plain text, for the PDF's bookmarks."""
    def tex(m: re.Match) -> str:
        t = m.group(1)
        for word, char in TEX_WORDS.items():
            t = t.replace(word, char)
        t = re.sub(r"\\(?:mathrm|mathcal|mathbf|text|operatorname)\{([^{}]*)\}", r"\1", t)
        return re.sub(r"\\[A-Za-z]+|[{}\\]", "", t)
    return re.sub(r"\s+", " ", re.sub(r"\\\((.*?)\\\)", tex, text)).strip()


def title_page_html(config: dict, web: str, revision: str) -> str:
    title = html.escape(config.get("title", "The book"))
    author = html.escape(config.get("author", ""))
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{BASE_CSS}
h1 {{ font-size: 30pt; line-height: 1.2; margin: 60mm 0 10mm; }}
.author {{ font-size: 15pt; }} .meta {{ position: absolute; bottom: 28mm; left: 22mm; right: 22mm; font-size: 10pt; color: #555; }}
</style></head><body><div class="sheet">
<h1>{title}</h1><p class="author">{author}</p>
<div class="meta"><p>The printable edition of the book, printed from its web pages on {date.today().isoformat()}{revision}.
The web version, with the interactive explorers and runnable notebooks: <a href="{html.escape(web)}">{html.escape(web)}</a></p>
<p>Text and figures: CC BY 4.0. Code: MIT licence.</p></div>
</div></body></html>"""


TOC_LINES_PER_PAGE = 44


def toc_entries(parts: list[Part], first_page: dict[str, int]) -> list[dict]:
    entries = []
    for part in parts:
        entries.append({"level": 1, "text": part.title, "page": first_page[part.doc]})
        for sec in part.sections:
            if sec["level"] == 2:
                entries.append({"level": 2, "text": sec["text"], "page": first_page[part.doc] + sec["page"]})
    return entries


def toc_html(entries: list[dict]) -> str:
    sheets, lines = [], []
    for i, entry in enumerate(entries):
        if lines and len(lines) >= TOC_LINES_PER_PAGE:
            sheets.append(lines)
            lines = []
        lines.append((i, entry))
    if lines:
        sheets.append(lines)
    body = []
    for n, sheet in enumerate(sheets):
        rows = "".join(
            f'<div class="entry l{e["level"]}" data-entry="{i}"><span class="text">{html.escape(e["text"], quote=False)}</span>'
            f'<span class="dots"></span><span class="page">{e["page"] + 1}</span></div>'
            for i, e in sheet
        )
        heading = "<h1>Contents</h1>" if n == 0 else ""
        body.append(f'<div class="sheet">{heading}{rows}</div>')
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Contents</title>
<script>window.MathJax = {{startup: {{typeset: true}}}};</script>
<script defer src="../_static/vendor/mathjax/tex-mml-chtml.js"></script>
<style>{BASE_CSS}
h1 {{ font-size: 22pt; margin: 0 0 8mm; }}
.entry {{ display: flex; align-items: baseline; height: 5.2mm; font-size: 10.5pt; white-space: nowrap; }}
.entry.l1 {{ font-weight: 600; font-size: 11.5pt; margin-top: 2.2mm; }}
.entry.l2 {{ padding-left: 7mm; }}
.entry .text {{ overflow: hidden; text-overflow: ellipsis; }}
.entry .dots {{ flex: 1; border-bottom: 1px dotted #999; margin: 0 2mm; min-width: 5mm; }}
</style></head><body>{''.join(body)}</body></html>"""


def numbers_html(total: int, skip: set[int], label: str) -> str:
    sheets = []
    for i in range(total):
        text = "" if i in skip else f"{html.escape(label)} · {i + 1}"
        sheets.append(f'<div class="sheet"><div class="number">{text}</div></div>')
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><style>{BASE_CSS}
.sheet {{ padding: 0; }}
.number {{ position: absolute; bottom: 7mm; left: 0; right: 0; text-align: center; font-size: 8.5pt; color: #666; }}
</style></head><body>{''.join(sheets)}</body></html>"""


def print_html(context, source: str, base_dir: Path, name: str, base: str):
    (base_dir / name).write_text(source, encoding="utf-8")
    page = context.new_page()
    page.goto(base + "_pdf_parts/" + name, wait_until="load")
    page.evaluate("async () => { if (window.MathJax && MathJax.startup) await MathJax.startup.promise; }")
    page.wait_for_load_state("networkidle")
    data = page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
    rects = page.evaluate(
        """() => Array.from(document.querySelectorAll('.entry')).map(e => {
             const r = e.getBoundingClientRect(), s = e.closest('.sheet').getBoundingClientRect();
             return {entry: +e.dataset.entry, sheet: Array.from(document.querySelectorAll('.sheet')).indexOf(e.closest('.sheet')),
                     x: r.left - s.left, y: r.top - s.top, w: r.width, h: r.height}; })"""
    )
    page.close()
    return data, rects


def revision(root: Path) -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        return f" (revision {sha.stdout.strip()})" if sha.returncode == 0 and sha.stdout.strip() else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def build(root: Path = ROOT, html_dir: Path | None = None, out: Path | None = None) -> dict:
    from playwright.sync_api import sync_playwright
    from pypdf import PdfReader, PdfWriter
    from pypdf.annotations import Link
    from pypdf.generic import Fit

    html_dir = (html_dir or root / "_build" / "html").resolve()
    out = out or root / "_build" / "pdf" / "book.pdf"
    if not (html_dir / "index.html").is_file():
        raise RuntimeError(f"No built book at {html_dir}: run `make book` first (make pdf prints its pages).")
    chromium = find_browser()
    if chromium is None:
        raise RuntimeError(ADVICE)
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    web = site_url(config)
    parts_dir = html_dir / "_pdf_parts"
    parts_dir.mkdir(exist_ok=True)
    problems: list[str] = []
    parts = [Part(doc=d, title=d) for d in toc_docs(root)]
    httpd, base = serve(html_dir)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
            context = browser.new_context(viewport={"width": 1100, "height": 1400})
            context.route("**/*", lambda route: _local_only(route, problems))
            for part in parts:
                print_page(context, base, part, web, problems)
                print(f"printed {part.doc}: {part.pages} pages, {part.explorers} explorers", flush=True)
            title_pdf, _ = print_html(context, title_page_html(config, web, revision(root)), parts_dir, "title.html", base)
            n_title = len(PdfReader(io.BytesIO(title_pdf)).pages)
            # The contents' length decides where the chapters start: lay it out until the page numbers settle.
            toc_pages = 1
            for _ in range(3):
                first, page_no = {}, n_title + toc_pages
                for part in parts:
                    first[part.doc] = page_no
                    page_no += part.pages
                entries = toc_entries(parts, first)
                toc_pdf, rects = print_html(context, toc_html(entries), parts_dir, "contents.html", base)
                n_toc = len(PdfReader(io.BytesIO(toc_pdf)).pages)
                if n_toc == toc_pages:
                    break
                toc_pages = n_toc
            total = page_no
            numbers_pdf, _ = print_html(
                context, numbers_html(total, set(range(n_title)), config.get("title", "")), parts_dir, "numbers.html", base
            )
            browser.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
        for f in parts_dir.glob("*"):
            f.unlink()
        parts_dir.rmdir()
    if problems:
        raise RuntimeError("; ".join(dict.fromkeys(problems)))

    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(title_pdf)))
    writer.append(PdfReader(io.BytesIO(toc_pdf)))
    for part in parts:
        writer.append(PdfReader(io.BytesIO(part.pdf)))
    numbers = PdfReader(io.BytesIO(numbers_pdf))
    if len(numbers.pages) != len(writer.pages):
        raise RuntimeError(f"page numbering: {len(numbers.pages)} numbers for {len(writer.pages)} pages")
    for page, stamp in zip(writer.pages, numbers.pages):
        page.merge_page(stamp)
    # Bookmarks: every page of the book and its sections.
    writer.add_outline_item(title="Contents", page_number=n_title)
    for part in parts:
        parent = writer.add_outline_item(title=plain(part.title), page_number=first[part.doc])
        for sec in part.sections:
            if sec["level"] == 2:
                writer.add_outline_item(title=plain(sec["text"]), page_number=first[part.doc] + sec["page"], parent=parent)
    # The contents' entries link to their pages.
    height_pt = A4_MM[1] * MM_TO_PT
    for rect in rects:
        entry = entries[rect["entry"]]
        x0, y_top = rect["x"] * PX_TO_PT, rect["y"] * PX_TO_PT
        box = (x0, height_pt - y_top - rect["h"] * PX_TO_PT, x0 + rect["w"] * PX_TO_PT, height_pt - y_top)
        writer.add_annotation(
            page_number=n_title + rect["sheet"],
            annotation=Link(rect=box, target_page_index=entry["page"], fit=Fit.fit()),
        )
    writer.add_metadata({"/Title": config.get("title", ""), "/Author": config.get("author", "")})
    writer.page_mode = "/UseOutlines"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as fh:
        writer.write(fh)
    return {
        "pages": len(writer.pages),
        "parts": {p.doc: {"title": p.title, "first_page": first[p.doc] + 1, "pages": p.pages, "explorers": p.explorers}
                  for p in parts},
        "contents_pages": toc_pages,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the book's folder (holds _toc.yml)")
    parser.add_argument("--html", type=Path, default=None, help="the built book (default ROOT/_build/html)")
    parser.add_argument("--out", type=Path, default=None, help="the PDF (default ROOT/_build/pdf/book.pdf)")
    args = parser.parse_args(argv)
    try:
        result = build(args.root.resolve(), args.html, args.out)
    except RuntimeError as exc:
        print(f"make pdf: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out or args.root / '_build' / 'pdf' / 'book.pdf'}: {result['pages']} pages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
