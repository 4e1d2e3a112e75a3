"""A small Sphinx extension for the book (loaded through ``sphinx.local_extensions`` in ``_config.yml``).

- Directive ``chapter-parameters``: for every chapter notebook in the book (``chapters/*.ipynb`` listed in
  ``_toc.yml``), a link to the chapter and the source of its ``parameters`` cell. The instructors' page uses it, so
  the list it shows is always the chapters' current parameters, never a copy that drifts.
- Links to the lecture slides and the printable edition (``make slides``, ``make pdf``; published beside the book,
  in ``slides/`` and ``pdf/`` at the site's root): every chapter page links its deck under its title, the root page
  links the PDF, and the directive ``slide-decks`` (on the instructors' page) lists every chapter's deck. Config value
  ``vaebook_site_prefix`` (default ``""``): the path from the book's root to the site's root (the students' edition,
  published under ``students/``, sets ``"../"``).
- Config value ``vaebook_students`` (default False): the students' edition. Every exercise solution is removed from
  the pages. (sphinx-exercise 1.2's own ``hide_solutions`` drops a ``solution-start`` but keeps its
  ``solution-end``, which then crashes the HTML writer, and it would leave the content in between visible; so we let
  sphinx-exercise merge each gated solution into one node first and remove those nodes afterwards.)
"""
from __future__ import annotations

import json
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective


def parameters_source(notebook: Path) -> str | None:
    """The source of the notebook's code cell tagged ``parameters`` (None if it has none)."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            source = cell.get("source", "")
            return "".join(source) if isinstance(source, list) else source
    return None


class ChapterParameters(SphinxDirective):
    """List each chapter with its parameters cell."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        srcdir = Path(self.env.srcdir)
        docs = sorted(d for d in self.env.found_docs if d.startswith("chapters/") and (srcdir / f"{d}.ipynb").is_file())
        if not docs:
            return [nodes.paragraph(text="No chapter has been added to the book yet.")]
        lines: list[str] = []
        for doc in docs:
            path = srcdir / f"{doc}.ipynb"
            self.env.note_dependency(str(path))
            source = parameters_source(path)
            lines += [f"{{doc}}`/{doc}` (`{doc}.ipynb`)", ""]
            if source is None:
                lines += ["This chapter has no `parameters` cell.", ""]
            else:
                fence = "````" if "```" in source else "```"
                lines += [f"{fence}python", *source.splitlines(), fence, ""]
        container = nodes.container(classes=["vaebook-chapter-parameters"])
        self.state.nested_parse(StringList(lines, source=self.get_source_info()[0]), self.content_offset, container)
        return [container]


def _to_site(docname: str, prefix: str, target: str) -> str:
    """Relative URL from the page of ``docname`` to ``target`` at the site's root."""
    return "../" * docname.count("/") + prefix + target


def _chapter_docs(env) -> list[str]:
    srcdir = Path(env.srcdir)
    return sorted(d for d in env.found_docs if d.startswith("chapters/") and (srcdir / f"{d}.ipynb").is_file())


class SlideDecks(SphinxDirective):
    """List every chapter with a link to its lecture slides."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        docs = _chapter_docs(self.env)
        if not docs:
            return [nodes.paragraph(text="No chapter has been added to the book yet.")]
        prefix = self.config.vaebook_site_prefix
        lines = []
        for doc in docs:
            deck = _to_site(self.env.docname, prefix, f"slides/{Path(doc).name}.html")
            lines.append(f"- {{doc}}`/{doc}`: <a href=\"{deck}\">slides</a> (`_build/slides/{Path(doc).name}.html`)")
        container = nodes.container(classes=["vaebook-slide-decks"])
        self.state.nested_parse(StringList(lines, source=self.get_source_info()[0]), self.content_offset, container)
        return [container]


def add_edition_links(app: Sphinx, doctree: nodes.document) -> None:
    """Under a chapter's title, a link to its slides and the PDF; on the root page, a link to the PDF."""
    env = app.env
    docname = env.docname
    prefix = app.config.vaebook_site_prefix
    pdf = _to_site(docname, prefix, "pdf/book.pdf")
    srcdir = Path(env.srcdir)
    if docname.startswith("chapters/") and (srcdir / f"{docname}.ipynb").is_file():
        deck = _to_site(docname, prefix, f"slides/{Path(docname).name}.html")
        html = (
            f'<p class="vaebook-deck-link">Teaching from this chapter? <a href="{deck}">Its lecture slides</a>. '
            f'Reading on paper? <a href="{pdf}">The whole book as one PDF</a>.</p>'
        )
    elif docname == app.config.root_doc:
        html = (
            f'<p class="vaebook-deck-link">The whole book is also a <a href="{pdf}">printable PDF</a>, and every '
            f"chapter has lecture slides (see the page for instructors).</p>"
        )
    else:
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        return
    title = next(iter(section.findall(nodes.title)), None)
    raw = nodes.raw("", html, format="html")
    if title is not None and title.parent is section:
        section.insert(section.index(title) + 1, raw)
    else:
        section.insert(0, raw)


def remove_solutions(app: Sphinx, doctree: nodes.document) -> None:
    """In the students' edition, drop every solution (gated solutions are merged into one node by now)."""
    if not app.config.vaebook_students:
        return
    from sphinx_exercise.nodes import solution_end_node, solution_node, solution_start_node

    for node in list(doctree.findall(lambda n: isinstance(n, (solution_node, solution_start_node, solution_end_node)))):
        node.parent.remove(node)


def setup(app: Sphinx) -> dict:
    app.add_directive("chapter-parameters", ChapterParameters)
    app.add_directive("slide-decks", SlideDecks)
    app.add_config_value("vaebook_site_prefix", "", "env", str)
    app.connect("doctree-read", add_edition_links)
    app.add_config_value("vaebook_students", False, "env", bool)
    app.connect("doctree-read", remove_solutions)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
