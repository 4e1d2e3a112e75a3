"""Run chapters in their full configuration (CONFIG = "full") on this machine, and estimate their time on a T4.

    python benchmarks/full_configs.py                         # every chapter; hours on a 2-core CPU
    python benchmarks/full_configs.py chapters/05-vae.ipynb   # one chapter

Each chapter runs top to bottom with ``CONFIG = "full"`` in a fresh model cache (as in a fresh Colab runtime), so a
chapter that reuses another's model trains it itself. Recorded per chapter, in ``benchmarks/full_configs.json``
(merged with what is there): the wall time, the device, the float32 matrix-multiply rate measured before and after
(a 2048^3 sgemm, best of 10), the sha256 of the chapter's parameters cell (``tests/test_full_configs.py`` checks
that the chapter's stated T4 time was measured with the parameters the chapter has now) and the T4 estimate.

The T4 estimate scales the measured time by a FLOP ratio: seconds here x (sgemm GFLOP/s here / 8,141 GFLOP/s, the
T4's float32 peak). It assumes the GPU runs the chapter at the same fraction of its peak as this CPU does. Small
models (a 784-400-20 MLP, batches of 128) keep a GPU far below its peak, limited by the fixed cost of each of their
many small kernel launches, so the real time on a T4 is likely longer: the figure is a lower estimate.
``benchmarks/gpu_check.py`` measures seconds per epoch on a real GPU.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).with_name("full_configs.json")
T4_FP32_GFLOPS = 8141.0   # NVIDIA Tesla T4: 8.1 TFLOP/s single precision (datasheet)


def parameters_cell(nb) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))


def parameters_digest(path: Path) -> str:
    """sha256 of the chapter's parameters cell source: what decides the full configuration."""
    return hashlib.sha256(parameters_cell(nbformat.read(path, as_version=4)).source.encode()).hexdigest()


def sgemm_gflops(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _timed(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def run_full(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    cell = parameters_cell(nb)
    if 'CONFIG = "quick"' not in cell.source:
        raise SystemExit(f"{path.name}: the parameters cell does not set CONFIG = \"quick\"")
    cell.source = cell.source.replace('CONFIG = "quick"', 'CONFIG = "full"', 1)
    with tempfile.TemporaryDirectory(prefix="full-config-") as tmp:
        os.environ["VAELIB_CACHE"] = str(Path(tmp) / "model-cache")
        client = NotebookClient(nb, timeout=6 * 3600, kernel_name="python3", resources={"metadata": {"path": tmp}})
        t = time.perf_counter()
        client.execute()
        return time.perf_counter() - t


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    chapters = [p.resolve() for p in args.chapters] or sorted((ROOT / "chapters").glob("*.ipynb"))
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for path in chapters:
        before = sgemm_gflops()
        print(f"{path.name}: running the full configuration ...", flush=True)
        seconds = run_full(path)
        rate = max(before, sgemm_gflops())
        device = "cuda" if torch.cuda.is_available() else "cpu"
        t4 = seconds * rate / T4_FP32_GFLOPS if device == "cpu" else None
        results[path.stem] = {
            "measured_on": str(date.today()), "machine": f"{platform.machine()} {os.cpu_count()} cores, {device}",
            "torch": torch.__version__, "seconds": round(seconds, 1), "sgemm_gflops": round(rate, 1),
            "t4_minutes_estimate": None if t4 is None else round(t4 / 60, 1),
            "parameters_sha256": parameters_digest(path),
        }
        print(f"{path.name}: {seconds / 60:.1f} min here ({rate:.0f} GFLOP/s sgemm)"
              + (f"; T4 estimate {t4 / 60:.1f} min" if t4 is not None else ""), flush=True)
        args.out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
