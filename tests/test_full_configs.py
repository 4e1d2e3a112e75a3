"""The CPU-sized full configurations run to completion: chapters 1 and 3 with CONFIG = "full".

(The other chapters' full configurations are meant for a GPU; each chapter states their expected time on a T4.)
``benchmarks/gpu_check.py --smoke`` is run here too, so that the GPU check script itself is exercised on the CPU.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from vaelib.data import data_root

ROOT = Path(__file__).resolve().parents[1]
CPU_SIZED = ["01-bayes-generative", "03-kl-divergence"]


def with_full_config(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assert 'CONFIG = "quick"' in cell.source
    cell.source = cell.source.replace('CONFIG = "quick"', 'CONFIG = "full"', 1)
    return nb


@pytest.mark.skipif(not (data_root() / "MNIST" / "raw").is_dir(), reason=f"no MNIST under {data_root()} (set VAELIB_DATA)")
@pytest.mark.parametrize("name", CPU_SIZED)
def test_full_configuration_runs_to_completion(name, tmp_path, monkeypatch):
    monkeypatch.setenv("VAELIB_CACHE", str(tmp_path / "model-cache"))
    nb = with_full_config(ROOT / "chapters" / f"{name}.ipynb")
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "Traceback" not in printed


@pytest.mark.skipif(not (data_root() / "MNIST" / "raw").is_dir(), reason=f"no MNIST under {data_root()} (set VAELIB_DATA)")
def test_gpu_check_script_runs_on_the_cpu_in_smoke_mode():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "every check passed" in done.stdout
