"""Helpers for the chapters as notebooks: computed numbers shown in the text, and where the notebook runs.

``glue(name, value)`` keeps a number a chapter computed for its prose. In the book build (where myst-nb, the
build's notebook engine, is installed) it is myst-nb's ``glue``, and the page's text shows the value through
``{glue:text}`name``; everywhere else (Colab, a plain Jupyter) it prints ``name: value`` under the cell, so a
reader running the notebook still sees every number. Colab does not have myst-nb, which is why no chapter imports it.
"""
from __future__ import annotations

import sys

try:
    from myst_nb import glue as _myst_glue  # the book build
except ImportError:  # Colab, Jupyter without the book's tools
    _myst_glue = None


class Text:
    """A string that ``glue`` shows as it is, without quotes (``glue("name", Text("zero and one"))``)."""

    def __init__(self, s: str):
        self.s = str(s)

    def __repr__(self) -> str:
        return self.s

    def __str__(self) -> str:
        return self.s


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` with its noun in the right number, for computed sentences: ``counted(1, "epoch")`` is "1 epoch",
    ``counted(3000, "epoch")`` "3,000 epochs", ``counted(2, "pass", "passes")`` "2 passes"."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def glue(name: str, value, display: bool = False) -> None:
    """Keep ``value`` under ``name`` for the chapter's text; numpy and torch scalars become Python numbers.

    In the book build this is ``myst_nb.glue(name, value, display=display)``; elsewhere it prints ``name: value``.
    """
    value = value.item() if hasattr(value, "item") else value
    if _myst_glue is None:
        print(f"{name}: {value}")
    else:
        _myst_glue(name, value, display=display)


def in_colab() -> bool:
    """True inside a Google Colab runtime (its ``google.colab`` package is imported when the runtime starts)."""
    return "google.colab" in sys.modules


_CPU_NOTICE_SHOWN = False


def cpu_notice(device) -> None:
    """In Colab on a CPU runtime, say once per session that training runs on the CPU and how to get a GPU."""
    global _CPU_NOTICE_SHOWN
    if _CPU_NOTICE_SHOWN or getattr(device, "type", str(device)) != "cpu" or not in_colab():
        return
    _CPU_NOTICE_SHOWN = True
    print("vaelib: this Colab runtime has no GPU, so training runs on the CPU (slower). For a GPU: "
          "Runtime -> Change runtime type -> T4 GPU, then run the notebook again.")
