"""Build a reveal.js slide deck for every chapter, from the chapter notebook and ``make book``'s execution cache.

Run by ``make slides``::

    python book/slides.py            # -> _build/slides/NN-name.html, one deck per chapter, plus _build/slides/_static/

Nothing is executed. Each chapter's outputs (figures, printed numbers, explorers with their widget state) come from
the execution cache that ``make book`` fills (jupyter-cache in ``_build/.jupyter_cache``); the text comes from the
chapter notebook itself. A chapter whose code changed since ``make book`` last ran it is an error, not a re-run.

Which cells become slides is cell metadata, as in Jupyter's own slideshows (``slideshow.slide_type``):

- ``slide``: starts a new slide; ``subslide``: starts a new slide below the current one (reveal.js' vertical
  slides); ``fragment``: appears on the current slide at the next key press; ``-``: continues the current slide;
  ``notes``: speaker notes of the current slide (press ``s``); ``skip`` or no ``slideshow`` metadata: not in the deck.
- A markdown cell shows its text (maths typeset, ``{glue:text}`` numbers filled in from the run). A markdown cell with
  several headings becomes one slide per heading; a part headed ``Exercises`` (or ``References``) is left out.
- A code cell shows its outputs, not its code (tag the cell ``slide-show-code`` to show the code as well). A code
  cell that starts a slide is titled with the section it belongs to, unless the slide before it holds only a heading,
  which then becomes its title.
- Every deck starts with a title slide made from the chapter's title, linking the chapter's page and the PDF.

``tools/mark_slides.py`` sets the metadata from the book's rules (objectives, section headings, figures, explorers,
summary); instructors change a chapter's selection by editing a cell's ``slide_type`` (see instructors.md).

reveal.js, MathJax and the widget manager are copied from ``node_modules`` (``npm ci``) into
``_build/slides/_static/``: the decks work offline and make no request to another host.
"""
from __future__ import annotations

import argparse
import base64
import copy
import html
import json
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book"))

from copy_assets import copy_assets  # noqa: E402  (book/ is not a package)

SLIDE_TYPES = ("slide", "subslide", "fragment", "-", "skip", "notes")
#: Parts of a selected markdown cell under these headings are never shown (exercises belong to the book).
SKIP_SECTIONS = ("exercises", "references", "further reading")
SHOW_CODE_TAG = "slide-show-code"
#: Each deck must have this many slides (the title slide included); ``--any-length`` lifts the limits.
MIN_SLIDES, MAX_SLIDES = 10, 30
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
HEADING = re.compile(r"^(#{1,3})[ \t]+(.+?)[ \t#]*$", re.M)
GLUE_TEXT = re.compile(r"\{glue:text\}`([^`]+)`")
ROLE = re.compile(r"\{([a-z][a-z0-9:_-]*)\}`([^`]*)`")
FENCE = re.compile(r"^(`{3,}|:{3,})[ \t]*\{?([\w-]*)", re.M)


class SlidesError(RuntimeError):
    """Something the instructor or the build has to fix (printed as one message)."""


# --- Chapters and their executions ------------------------------------------------------------------------------
def toc_docs(root: Path = ROOT) -> list[str]:
    """Every document of ``_toc.yml`` in the book's order (root first), without its suffix."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    docs = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                docs.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts") or []:
        walk(part.get("chapters"))
    return [re.sub(r"\.(ipynb|md)$", "", d) for d in docs]


def chapter_notebooks(root: Path = ROOT) -> list[Path]:
    """The chapter notebooks listed in ``_toc.yml`` (``chapters/*.ipynb``), in the book's order."""
    paths = [root / f"{doc}.ipynb" for doc in toc_docs(root)]
    return [p for p in paths if p.parent.name == "chapters" and p.is_file()]


def _code_signature(nb: nbformat.NotebookNode) -> list[str]:
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def executed_notebook(path: Path, cache) -> nbformat.NotebookNode:
    """The notebook at ``path`` with the outputs of its latest execution in the jupyter-cache ``cache``.

    The cached execution must be of exactly this code (every code cell's source); the text and the metadata (the
    slide selection) are taken from the notebook as it is now, so choosing other slides never needs a re-run.
    """
    nb = nbformat.read(path, as_version=4)
    wanted = _code_signature(nb)
    records = [r for r in cache.list_cache_records() if Path(r.uri).resolve() == path.resolve()]
    if not records:  # a cache made in another checkout (e.g. restored in CI): match by file name
        records = [r for r in cache.list_cache_records() if Path(r.uri).name == path.name]
    for record in sorted(records, key=lambda r: r.created, reverse=True):
        cached = cache.get_cache_bundle(record.pk).nb
        if _code_signature(cached) != wanted:
            continue
        merged = copy.deepcopy(nb)
        code_cells = [c for c in merged.cells if c.cell_type == "code"]
        for cell, done in zip(code_cells, (c for c in cached.cells if c.cell_type == "code")):
            cell.outputs = done.outputs
            cell.execution_count = done.execution_count
        if "widgets" in cached.metadata:
            merged.metadata["widgets"] = cached.metadata["widgets"]
        return merged
    raise SlidesError(
        f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: no execution of its current code in the "
        f"execution cache ({'none at all' if not records else 'the code changed since'}). Run `make book` first "
        f"(it executes the chapters into _build/.jupyter_cache); `make slides` never runs a chapter."
    )


def glue_values(nb: nbformat.NotebookNode) -> dict[str, str]:
    """``{name: text/plain}`` of every value the chapter glued (myst-nb's ``glue`` outputs)."""
    values = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get("scrapbook")
            if meta:
                values[meta["name"]] = out.get("data", {}).get(meta.get("mime_prefix", "") + "text/plain", "")
    return values


# --- Markdown -----------------------------------------------------------------------------------------------------
def _markdown():
    from markdown_it import MarkdownIt
    from mdit_py_plugins.amsmath import amsmath_plugin
    from mdit_py_plugins.colon_fence import colon_fence_plugin
    from mdit_py_plugins.deflist import deflist_plugin
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    def math(content: str, config: dict) -> str:
        if config.get("display_mode"):
            return f'<div class="math">\\[{html.escape(content)}\\]</div>\n'
        return f'<span class="math">\\({html.escape(content)}\\)</span>'

    md = (
        MarkdownIt("commonmark", {"html": True})
        .enable("table")
        .use(dollarmath_plugin, allow_labels=True, allow_space=True, allow_digits=True, renderer=math)
        .use(amsmath_plugin, renderer=lambda content: f'<div class="math">{html.escape(content)}</div>\n')
        .use(colon_fence_plugin)
        .use(deflist_plugin)
    )
    default_fence = md.renderer.rules.get("fence")
    admonitions = {"note", "tip", "important", "warning", "caution", "attention", "hint", "seealso", "admonition"}

    def fence(tokens, idx, options, env):
        token = tokens[idx]
        info = token.info.strip()
        match = re.match(r"\{([\w-]+)\}\s*(.*)", info)
        if not match:
            return default_fence(tokens, idx, options, env)
        name, argument = match.groups()
        body = "\n".join(line for line in token.content.splitlines() if not re.match(r"^:[\w-]+:", line))
        if name == "math":
            return f'<div class="math">\\[{html.escape(body)}\\]</div>\n'
        if name in admonitions:
            title = html.escape(argument or name.capitalize())
            return f'<div class="admonition {name}"><p class="admonition-title">{title}</p>{md.render(body)}</div>\n'
        return ""  # exercises, solutions and other book-only directives are not shown

    md.renderer.rules["fence"] = fence
    md.renderer.rules["colon_fence"] = fence
    return md


MD = None


def markdown_html(text: str, glue: dict[str, str], inline: bool = False) -> str:
    """Render a markdown cell's text (MyST roles resolved: ``glue:text`` filled in, ``ref`` as its text)."""
    global MD
    from myst_nb.core.variables import format_plain_text

    if MD is None:
        MD = _markdown()

    def glued(match: re.Match) -> str:
        key, _, spec = match.group(1).rpartition(":") if ":" in match.group(1) else (match.group(1), "", "")
        if key not in glue:
            raise SlidesError(f"the text uses {{glue:text}}`{match.group(1)}` but the chapter glued no {key!r}")
        return format_plain_text(glue[key], spec)

    def role(match: re.Match) -> str:
        content = match.group(2)
        explicit = re.match(r"(.*?)\s*<[^<>]+>$", content, re.S)
        return explicit.group(1) if explicit else content

    text = GLUE_TEXT.sub(glued, text)
    text = ROLE.sub(role, text)
    rendered = MD.renderInline(text) if inline else MD.render(text)
    # Links to other chapters point to their pages in the book (the site has slides/ beside chapters/).
    return re.sub(
        r'href="(?![a-z]+:|#|/)([^"#]+?)\.(?:ipynb|md)(#[^"]*)?"',
        lambda m: f'href="../chapters/{Path(m.group(1)).name}.html{m.group(2) or ""}"',
        rendered,
    )


def split_at_headings(text: str) -> list[tuple[int, str, str]]:
    """``[(level, heading, text)]``: the cell cut before every heading of level 1-3 (outside fenced blocks).

    Text before the first heading belongs to the first part (level 0, heading '' when there is no heading at all).
    """
    cuts, fence = [], None
    offset = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        opened = re.match(r"^(`{3,}|:{3,})", stripped)
        if fence is None and opened:
            fence = opened.group(1)[0] * len(opened.group(1))
        elif fence is not None and stripped.startswith(fence) and stripped.strip(fence[0]) == "":
            fence = None
        elif fence is None:
            m = re.match(r"^(#{1,3})[ \t]+(.+?)[ \t#]*$", line.rstrip("\n"))
            if m:
                cuts.append((offset, len(m.group(1)), m.group(2)))
        offset += len(line)
    if not cuts:
        return [(0, "", text)]
    parts = []
    if cuts[0][0] > 0 and text[: cuts[0][0]].strip():
        parts.append((0, "", text[: cuts[0][0]]))
    for i, (start, level, heading) in enumerate(cuts):
        end = cuts[i + 1][0] if i + 1 < len(cuts) else len(text)
        parts.append((level, heading, text[start:end]))
    return parts


def plain_heading(heading: str, glue: dict[str, str]) -> str:
    """A heading's text as HTML (its maths typeset, markup kept)."""
    return markdown_html(heading, glue, inline=True).strip()


def _script_json(value) -> str:
    """JSON to put inside a <script> element (no "</" that would end it)."""
    return json.dumps(value).replace("</", "<\\/")


# --- Outputs ------------------------------------------------------------------------------------------------------
def outputs_html(cell: nbformat.NotebookNode) -> tuple[str, bool]:
    """The cell's outputs as HTML (as the book shows them); also whether one of them is a widget."""
    alt = cell.metadata.get("mystnb", {}).get("image", {}).get("alt", "")
    pieces, widget = [], False
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream":
            if out.get("name") == "stdout" and out.get("text", "").strip():
                pieces.append(f'<pre class="output">{html.escape(ANSI.sub("", out["text"]))}</pre>')
            continue  # stderr: progress bars and warnings, which the slides leave out
        if kind == "error":
            raise SlidesError(f"cell {cell.get('id')} failed when it was executed: {out.get('ename')}")
        if "scrapbook" in out.get("metadata", {}):
            continue  # a glued value: shown in the text where it is quoted
        data = out.get("data", {})
        if WIDGET_VIEW in data:
            widget = True
            view = _script_json(data[WIDGET_VIEW])
            pieces.append(f'<div class="widget"><script type="{WIDGET_VIEW}">{view}</script></div>')
        elif "text/html" in data:
            pieces.append(f'<div class="output html">{data["text/html"]}</div>')
        elif "image/svg+xml" in data:
            pieces.append(f'<div class="output figure">{data["image/svg+xml"]}</div>')
        elif "image/png" in data or "image/jpeg" in data:
            mime = "image/png" if "image/png" in data else "image/jpeg"
            b64 = data[mime] if isinstance(data[mime], str) else base64.b64encode(data[mime]).decode()
            pieces.append(
                f'<div class="output figure"><img src="data:{mime};base64,{b64.strip()}" '
                f'alt="{html.escape(alt, quote=True)}"></div>'
            )
        elif "text/latex" in data:
            pieces.append(f'<div class="math">{html.escape(data["text/latex"])}</div>')
        elif "text/plain" in data:
            pieces.append(f'<pre class="output">{html.escape(ANSI.sub("", data["text/plain"]))}</pre>')
    return "\n".join(pieces), widget


# --- The deck -----------------------------------------------------------------------------------------------------
@dataclass
class Slide:
    vertical: bool
    body: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    heading_only: bool = False
    source: list[str] = field(default_factory=list)   # the cell ids shown (data-cells, for instructors)

    def html(self) -> str:
        notes = f'<aside class="notes">{"".join(self.notes)}</aside>' if self.notes else ""
        cells = html.escape(" ".join(dict.fromkeys(self.source)), quote=True)
        return f'<section data-cells="{cells}"><div class="fit">{"".join(self.body)}</div>{notes}</section>'


def slide_type(cell: nbformat.NotebookNode) -> str:
    kind = cell.metadata.get("slideshow", {}).get("slide_type", "skip") or "skip"
    if kind not in SLIDE_TYPES:
        raise SlidesError(f"cell {cell.get('id')}: slideshow.slide_type {kind!r} is not one of {', '.join(SLIDE_TYPES)}")
    return kind


def skipped(section: str) -> bool:
    """True for a section that is never shown on slides (Exercises, References)."""
    return section.strip().lower().startswith(SKIP_SECTIONS)


def build_slides(nb: nbformat.NotebookNode, chapter: str, links: dict[str, str]) -> tuple[list[Slide], bool, str]:
    """The deck's slides (title slide first), whether any holds a widget, and the chapter's title (HTML)."""
    glue = glue_values(nb)
    title = next(
        (m.group(1) for c in nb.cells if c.cell_type == "markdown" for m in [re.search(r"^#[ \t]+(.+)$", c.source, re.M)] if m),
        chapter,
    )
    title_html = plain_heading(title, glue)
    title_slide = Slide(vertical=False, source=["title"])
    title_slide.body.append(
        f'<p class="book-title">{html.escape(links["book_title"])}</p><h1>{title_html}</h1>'
        f'<p class="deck-links"><a href="{links["page"]}">The chapter in the book</a> · '
        f'<a href="{links["pdf"]}">The printable book (PDF)</a></p>'
    )
    slides = [title_slide]
    widgets = False
    section = ""          # the current section heading (level 2), also from cells that are not shown

    def start(vertical: bool, cell_id: str) -> Slide:
        slide = Slide(vertical=vertical, source=[cell_id])
        slides.append(slide)
        return slide

    for cell in nb.cells:
        kind = slide_type(cell)
        cell_id = cell.get("id", "")
        if cell.cell_type == "markdown":
            parts = split_at_headings(cell.source)
            for i, (level, heading, text) in enumerate(parts):
                if level == 2:
                    section = heading
                if kind == "skip" or skipped(section):
                    continue
                if level == 0 and len(parts) > 1:
                    continue  # text before the cell's first heading ends the section before: left out
                body = markdown_html(text, glue)
                part_kind = kind if i == 0 or (i == 1 and parts[0][0] == 0) else (
                    "subslide" if kind == "subslide" else "slide"
                )
                if part_kind == "notes":
                    slides[-1].notes.append(body)
                    continue
                if part_kind in ("slide", "subslide"):
                    slide = start(part_kind == "subslide", cell_id)
                    if level == 3 and section:
                        slide.body.append(f'<p class="context">{plain_heading(section, glue)}</p>')
                    slide.body.append(body)
                    slide.heading_only = bool(heading) and text.strip().lstrip("#").strip() == heading.strip()
                else:
                    slides[-1].body.append(f'<div class="fragment">{body}</div>' if part_kind == "fragment" else body)
                    slides[-1].heading_only = False
                    slides[-1].source.append(cell_id)
        elif cell.cell_type == "code":
            if kind == "skip" or skipped(section):
                continue
            shown, has_widget = outputs_html(cell)
            if SHOW_CODE_TAG in cell.metadata.get("tags", []):
                shown = f'<pre class="code"><code>{html.escape(cell.source)}</code></pre>' + shown
            if not shown:
                continue
            widgets = widgets or has_widget
            if kind == "notes":
                slides[-1].notes.append(shown)
            elif kind in ("slide", "subslide"):
                if slides[-1].heading_only:
                    slide = slides[-1]        # a heading alone titles the figure that follows it
                    slide.heading_only = False
                    slide.source.append(cell_id)
                else:
                    slide = start(kind == "subslide", cell_id)
                    if section:
                        slide.body.append(f'<p class="context">{plain_heading(section, glue)}</p>')
                slide.body.append(shown)
            else:
                slides[-1].body.append(f'<div class="fragment">{shown}</div>' if kind == "fragment" else shown)
                slides[-1].source.append(cell_id)
    return slides, widgets, title_html


def nest(slides: list[Slide]) -> str:
    """Horizontal slides, each with the vertical slides (``subslide``) below it."""
    stacks: list[list[Slide]] = []
    for slide in slides:
        if slide.vertical and stacks:
            stacks[-1].append(slide)
        else:
            stacks.append([slide])
    out = []
    for stack in stacks:
        if len(stack) == 1:
            out.append(stack[0].html())
        else:
            out.append("<section>" + "".join(s.html() for s in stack) + "</section>")
    return "\n".join(out)


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title_text}: slides</title>
<link rel="icon" href="_static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="_static/vendor/reveal.js/reset.css">
<link rel="stylesheet" href="_static/vendor/reveal.js/reveal.css">
<link rel="stylesheet" href="_static/vendor/reveal.js/theme/white.css">
<link rel="stylesheet" href="_static/vaebook-slides.css">
<!-- reveal.js before require.js: its UMD build would otherwise register as an anonymous AMD module -->
<script src="_static/vendor/reveal.js/reveal.js"></script>
<script src="_static/vendor/reveal.js/plugin/notes/notes.js"></script>
<script>window.MathJax = {{"options": {{"processHtmlClass": "tex2jax_process|mathjax_process|math|output_area"}}}};</script>
<script defer src="_static/vendor/mathjax/tex-mml-chtml.js"></script>
{widget_scripts}
</head>
<body>
<div class="reveal" data-chapter="{chapter}">
<div class="slides">
{slides}
</div>
</div>
{widget_state}
<script src="_static/vaebook-slides.js"></script>
</body>
</html>
"""

WIDGET_SCRIPTS = """<script src="_static/vendor/requirejs/require.js"></script>
<script src="_static/vaebook-widgets.js"></script>
<script src="_static/vendor/html-manager/embed-amd.js"></script>"""


def render_deck(nb: nbformat.NotebookNode, chapter: str, links: dict[str, str]) -> tuple[str, int]:
    """The deck's HTML and its number of slides."""
    slides, widgets, title_html = build_slides(nb, chapter, links)
    state = ""
    if widgets:
        payload = nb.metadata.get("widgets", {}).get(WIDGET_STATE)
        if not payload:
            raise SlidesError(f"{chapter}: a slide shows an explorer but the executed notebook saved no widget state")
        state = f'<script type="{WIDGET_STATE}">{_script_json(payload)}</script>'
    page = PAGE.format(
        title_text=html.escape(re.sub(r"<[^>]+>", "", title_html)),
        chapter=html.escape(chapter),
        slides=nest(slides),
        widget_scripts=WIDGET_SCRIPTS if widgets else "",
        widget_state=state,
    )
    return page, len(slides)


def copy_deck_assets(root: Path, out: Path) -> None:
    """reveal.js, MathJax, require.js and the widget manager (from node_modules) and the decks' own files."""
    static = out / "_static"
    vendor = copy_assets(root, static / "vendor")
    reveal = root / "node_modules" / "reveal.js"
    if not (reveal / "dist" / "reveal.js").is_file():
        raise SlidesError(f"{reveal} is missing: run `npm ci` (make slides does) to fetch reveal.js.")
    no_maps = shutil.ignore_patterns("*.map", "*.esm.js")
    shutil.copytree(reveal / "dist", vendor / "reveal.js", ignore=no_maps)
    shutil.copytree(reveal / "plugin" / "notes", vendor / "reveal.js" / "plugin" / "notes", ignore=no_maps)
    shutil.copy2(reveal / "LICENSE", vendor / "reveal.js-LICENSE")
    for name in ("vaebook-slides.css", "vaebook-slides.js"):
        shutil.copy2(root / "book" / "slides_static" / name, static / name)
    shutil.copy2(root / "book" / "static" / "vaebook-widgets.js", static / "vaebook-widgets.js")
    shutil.copy2(root / "book" / "favicon.svg", static / "favicon.svg")


def book_title(root: Path) -> str:
    return yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")).get("title", "")


def build(root: Path = ROOT, out: Path | None = None, check_length: bool = True) -> dict[str, int]:
    """Write every chapter's deck into ``out`` (default ``_build/slides``); returns ``{deck file: slides}``."""
    from jupyter_cache import get_cache

    out = out or root / "_build" / "slides"
    cache_dir = root / "_build" / ".jupyter_cache"
    if not (cache_dir / "global.db").is_file():
        raise SlidesError(f"No execution cache at {cache_dir}: run `make book` first (make slides never runs a chapter).")
    cache = get_cache(cache_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    copy_deck_assets(root, out)
    counts, problems = {}, []
    for path in chapter_notebooks(root):
        nb = executed_notebook(path, cache)
        links = {
            "page": f"../chapters/{path.stem}.html",   # the site: slides/ and pdf/ beside chapters/
            "pdf": "../pdf/book.pdf",
            "book_title": book_title(root),
        }
        page, n = render_deck(nb, path.stem, links)
        (out / f"{path.stem}.html").write_text(page, encoding="utf-8")
        counts[f"{path.stem}.html"] = n
        if check_length and not MIN_SLIDES <= n <= MAX_SLIDES:
            problems.append(f"{path.stem}: {n} slides (a deck has {MIN_SLIDES} to {MAX_SLIDES})")
    if problems:
        raise SlidesError(
            "; ".join(problems) + ". Choose other cells (slideshow.slide_type in the cell metadata, see "
            "instructors.md) or pass --any-length."
        )
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the book's folder (holds _toc.yml)")
    parser.add_argument("--out", type=Path, default=None, help="target folder (default ROOT/_build/slides)")
    parser.add_argument("--any-length", action="store_true", help=f"allow decks outside {MIN_SLIDES}-{MAX_SLIDES} slides")
    args = parser.parse_args(argv)
    try:
        counts = build(args.root.resolve(), args.out, check_length=not args.any_length)
    except SlidesError as exc:
        print(f"make slides: {exc}", file=sys.stderr)
        return 1
    for name, n in counts.items():
        print(f"{name}: {n} slides")
    print(f"wrote {len(counts)} decks into {args.out or args.root / '_build' / 'slides'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
