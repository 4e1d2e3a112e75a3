"""Run a notebook top to bottom in a named kernel and stop at the first failing cell, naming it.

Shared by the replays of ``make test``: a student's Colab session (``tests/colab/replay.py``) and an instructor's
edits (``tests/instructor/edits.py``).
"""
from __future__ import annotations

import time


class CellFailure(RuntimeError):
    """A cell raised (or hung past the timeout); the message names the notebook, the cell and the error."""


def execute(nb, name: str, kernel_name: str, workdir: str, timeout: int = 1800) -> float:
    """Execute the code cells of ``nb`` (an nbformat notebook, filled with outputs in place) in the kernel
    ``kernel_name``, with ``workdir`` as the working folder; returns seconds. Raises CellFailure on the first error.

    ``timeout`` (seconds per cell) only catches a hung cell: on a busy 2-core machine one training cell of chapter 5
    or 7 has taken several minutes (chapter 5 whole: 573 s beside other work).
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    client = NotebookClient(nb, kernel_name=kernel_name, timeout=timeout, allow_errors=False,
                            resources={"metadata": {"path": workdir}}, store_widget_state=True)
    start = time.perf_counter()
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except (CellExecutionError, CellTimeoutError) as err:
                first = next((line for line in cell.source.splitlines() if line.strip()), "")
                reason = getattr(err, "ename", type(err).__name__) + ": " + str(getattr(err, "evalue", err))
                raise CellFailure(f"{name}, cell {index} (starts `{first[:80]}`): {reason.strip()[:2000]}") from None
        client.set_widgets_metadata()
    return time.perf_counter() - start
