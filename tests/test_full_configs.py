"""The CPU-sized full configurations run to completion: chapters 1 and 3 with CONFIG = "full".

The other chapters' full configurations are meant for a GPU: each states, right after its parameters cell, the time
its full configuration took when ``benchmarks/full_configs.py`` ran it to completion, and the T4 estimate scaled from
it; a test checks that the statement is the recorded one and was measured with the parameters the chapter has now.
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
sys.path.insert(0, str(ROOT / "benchmarks"))
from full_configs import (  # noqa: E402
    CPU_SIZED, OUT, STATEMENT_ID, parameters_digest, read_records, statement, with_full_config,
)

GPU_SIZED = [p.stem for p in sorted((ROOT / "chapters").glob("*.ipynb")) if p.stem not in CPU_SIZED]


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


@pytest.mark.parametrize("name", GPU_SIZED)
def test_gpu_sized_chapter_states_its_measured_full_configuration_time(name):
    path = ROOT / "chapters" / f"{name}.ipynb"
    records = read_records()
    assert name in records, f"{name}: no measurement in {OUT.name}: run python benchmarks/full_configs.py {path}"
    record = records[name]
    assert record["parameters_sha256"] == parameters_digest(path), (
        f"{name}: its full configuration changed since {OUT.name} measured it: run "
        f"python benchmarks/full_configs.py {path}")
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.get("id") == STATEMENT_ID]
    assert cells and cells[0].source == statement(record), (
        f"{name}: the '{STATEMENT_ID}' cell does not state the recorded figures: run "
        f"python benchmarks/full_configs.py --write-chapters")
    params = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    assert nb.cells[params + 1] is cells[0], f"{name}: the '{STATEMENT_ID}' cell belongs right after the parameters"


def test_durations_are_stated_in_seconds_or_minutes():
    from full_configs import duration
    assert [duration(s) for s in (3.2, 45, 89.6, 156, 599, 4400)] == ["3 s", "45 s", "90 s", "2.6 min", "10.0 min",
                                                                        "73 min"]


def test_the_parameters_digest_follows_the_full_configuration_only(tmp_path):
    from full_configs import full_parameters

    def chapter(source: str) -> Path:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = ["parameters"]
        path = tmp_path / f"ch{len(list(tmp_path.iterdir()))}.ipynb"
        nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
        return path

    base = 'CONFIG = "quick"\nSEED = 0\nEPOCHS = {"quick": 5, "full": 100}[CONFIG]\nHIDDEN = (400,)'
    assert full_parameters(base) == {"CONFIG": "full", "SEED": 0, "EPOCHS": 100, "HIDDEN": (400,)}
    original = parameters_digest(chapter(base))
    assert parameters_digest(chapter(base.replace('"quick": 5', '"quick": 7') + "  # a comment")) == original
    assert parameters_digest(chapter(base.replace('"full": 100', '"full": 101'))) != original
    assert parameters_digest(chapter(base.replace("(400,)", "(400, 200)"))) != original


def test_a_measurement_on_a_gpu_is_stated_as_such():
    record = {"machine": "x86_64 16 cores, cuda", "cpu": "AMD EPYC", "gpu": "NVIDIA H200", "threads": 16,
              "seconds": 250.0, "sgemm_gflops": 900.0, "measured_on": "2026-12-03", "torch": "2.14.1",
              "t4_seconds_estimate": None}
    text = statement(record)
    assert "ran to completion in 4.2 min on an NVIDIA H200" in text and "T4" not in text
