"""A small Sphinx extension for the book (loaded through ``sphinx.local_extensions`` in ``_config.yml``).

- Directive ``chapter-parameters``: for every chapter notebook in the book (``chapters/*.ipynb`` listed in
  ``_toc.yml``), a link to the chapter and the source of its ``parameters`` cell. The instructors' page uses it, so
  the list it shows is always the chapters' current parameters, never a copy that drifts.
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


def remove_solutions(app: Sphinx, doctree: nodes.document) -> None:
    """In the students' edition, drop every solution (gated solutions are merged into one node by now)."""
    if not app.config.vaebook_students:
        return
    from sphinx_exercise.nodes import solution_end_node, solution_node, solution_start_node

    for node in list(doctree.findall(lambda n: isinstance(n, (solution_node, solution_start_node, solution_end_node)))):
        node.parent.remove(node)


def setup(app: Sphinx) -> dict:
    app.add_directive("chapter-parameters", ChapterParameters)
    app.add_config_value("vaebook_students", False, "env", bool)
    app.connect("doctree-read", remove_solutions)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
