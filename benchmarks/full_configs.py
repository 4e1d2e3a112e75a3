"""Run chapters in their full configuration (CONFIG = "full") on this machine, and estimate their time on a T4.

    python benchmarks/full_configs.py                         # every chapter; hours on a 2-core CPU
    python benchmarks/full_configs.py chapters/05-vae.ipynb   # one chapter
    python benchmarks/full_configs.py --write-chapters        # only write the recorded times into the chapters

Each chapter runs top to bottom with ``CONFIG = "full"`` in a fresh model cache (as in a fresh Colab runtime), so a
chapter that reuses another's model trains it itself. Recorded per chapter, in ``benchmarks/full_configs.json``
(merged with what is there): the wall time, the device, the float32 matrix-multiply rate measured before and after
(a 2048^3 sgemm, best of 10), the sha256 of the full configuration's parameter values (``tests/test_full_configs.py``
checks that the chapter's stated T4 time was measured with the full configuration the chapter has now). The T4
estimate is computed from the record where it is stated (:func:`t4_seconds`).
Each chapter that a GPU is meant for then states the figures in a markdown cell right after its parameters cell (cell
id ``full-config``, written by :func:`write_statements`, whose text :func:`statement` makes from the record;
``tests/test_full_configs.py`` checks that the two agree).

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
import math
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
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

from bench_fit import matmul_peak  # noqa: E402  (the 2048^3 sgemm rate, best of 10, as make bench measures it)
from tools.strip_notebooks import dumps  # noqa: E402

OUT = Path(__file__).with_name("full_configs.json")
T4_FP32_GFLOPS = 8141.0   # NVIDIA Tesla T4: 8.1 TFLOP/s single precision (datasheet)


def parameters_cell(nb) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))


def full_source(source: str) -> str:
    """A parameters cell's source with ``CONFIG = "full"`` in place of ``CONFIG = "quick"`` (SystemExit without it)."""
    if 'CONFIG = "quick"' not in source:
        raise SystemExit('the parameters cell does not set CONFIG = "quick"')
    return source.replace('CONFIG = "quick"', 'CONFIG = "full"', 1)


def with_full_config(path: Path) -> nbformat.NotebookNode:
    """The chapter at ``path``, its parameters cell switched to the full configuration."""
    nb = nbformat.read(path, as_version=4)
    cell = parameters_cell(nb)
    cell.source = full_source(cell.source)
    return nb


def full_parameters(source: str) -> dict:
    """The values a parameters cell gives its names (the upper-case ones) with ``CONFIG = "full"``.

    The cell is plain assignments (``EPOCHS = {"quick": 5, "full": 100}[CONFIG]``), run here with CONFIG set to
    "full"."""
    names: dict = {}
    exec(full_source(source), {}, names)
    return {k: v for k, v in names.items() if k.isupper()}


def parameters_digest(path: Path) -> str:
    """sha256 of the full configuration's parameter values (names and reprs, sorted): what the measurement depends
    on. Editing comments or the quick values leaves it unchanged; changing a full value changes it."""
    values = full_parameters(parameters_cell(nbformat.read(path, as_version=4)).source)
    text = json.dumps({k: repr(v) for k, v in values.items()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def t4_seconds(seconds: float, sgemm_gflops: float) -> float:
    """The T4 estimate: seconds measured here, scaled by this machine's sgemm rate over the T4's float32 peak."""
    return seconds * sgemm_gflops / T4_FP32_GFLOPS


def read_records(out: Path = OUT) -> dict:
    """The records in ``out`` (full_configs.json), {} when there is none yet."""
    return json.loads(out.read_text()) if out.is_file() else {}


#: The chapters whose full configuration is CPU-sized: they run it in the test suite and state no T4 time.
CPU_SIZED = ("01-bayes-generative", "03-kl-divergence")
STATEMENT_ID = "full-config"


def duration(seconds: float, round_down: bool = False) -> str:
    """A duration as the chapters state it: "45 s", "2.6 min", "73 min"; ``round_down`` truncates at the precision
    shown, so that a lower bound stays one (2.9 s is "at least 2 s", not 3)."""
    if round_down:
        step = 1 if seconds < 90 else 6 if seconds < 600 else 60
        seconds = math.floor(seconds / step) * step
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 600 else f"{seconds / 60:.0f} min"


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, without trademark signs), else "<architecture> CPU"."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].replace("(R)", "").replace("(TM)", "")
                return " ".join(name.split())
    except OSError:
        pass
    return f"{platform.machine()} CPU"


def statement(record: dict) -> str:
    """The chapter's sentence about its full configuration, from its record in full_configs.json (the T4 figure by
    :func:`t4_seconds`)."""
    measured = f"measured {record['measured_on']}, torch {record['torch']}"
    if record.get("gpu"):
        return (f"**How long the full configuration takes.** With `CONFIG = \"full\"` this chapter ran to completion "
                f"in {duration(record['seconds'])} on an {record['gpu']} ({measured}). The book itself runs the quick "
                f"configuration.")
    threads = record.get("threads")
    cores = "one core" if threads == 1 else f"{threads} cores" if threads else "the cores"
    t4 = t4_seconds(record["seconds"], record["sgemm_gflops"])
    return (
        f"**How long the full configuration takes.** With `CONFIG = \"full\"` this chapter ran to completion in "
        f"{duration(record['seconds'])} on {cores} of an {record.get('cpu', record['machine'].split()[0] + ' CPU')}, "
        f"whose float32 matrix products reach {record['sgemm_gflops']:.0f} GFLOP/s there ({measured}). Scaled by the "
        f"ratio of that rate to a Colab T4's float32 peak (8,141 GFLOP/s), that is **at least {duration(t4, round_down=True)} "
        f"on a T4**: a lower estimate, since models this small keep a GPU "
        f"far below its peak (`benchmarks/full_configs.py` explains the estimate, `benchmarks/gpu_check.py` measures "
        f"a real GPU). The book itself runs the quick configuration."
    )


def write_statements(results: dict, root: Path = ROOT) -> list[str]:
    """Put :func:`statement` of each recorded GPU-sized chapter into its ``full-config`` cell (created right after the
    parameters cell when missing). Returns the names of the chapters whose notebook changed."""
    changed = []
    for path in sorted((root / "chapters").glob("*.ipynb")):
        if path.stem in CPU_SIZED or path.stem not in results:
            continue
        nb = nbformat.read(path, as_version=4)
        text = statement(results[path.stem])
        cell = next((c for c in nb.cells if c.get("id") == STATEMENT_ID), None)
        if cell is None:
            cell = nbformat.v4.new_markdown_cell(text)
            cell.id = STATEMENT_ID
            cell.metadata["slideshow"] = {"slide_type": "skip"}
            nb.cells.insert(nb.cells.index(parameters_cell(nb)) + 1, cell)
        elif cell.source == text:
            continue
        cell.source = text
        path.write_text(dumps(nb), encoding="utf-8")
        changed.append(path.stem)
    return changed


def run_full(path: Path) -> float:
    nb = with_full_config(path)
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
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for the chapters' kernels and the sgemm (default: torch's own choice); "
                             "the T4 estimate scales by the rate measured with the same threads")
    parser.add_argument("--write-chapters", action="store_true",
                        help="run nothing: write the recorded figures into the chapters' full-config cells")
    args = parser.parse_args(argv)
    chapters = [p.resolve() for p in args.chapters] or sorted((ROOT / "chapters").glob("*.ipynb"))
    if args.write_chapters:
        print("updated:", ", ".join(write_statements(read_records(args.out))) or "nothing")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):   # the kernels inherit them
            os.environ[var] = str(args.threads)
    for path in chapters:
        before = matmul_peak()
        print(f"{path.name}: running the full configuration ...", flush=True)
        seconds = run_full(path)
        rate = max(before, matmul_peak())
        device = "cuda" if torch.cuda.is_available() else "cpu"
        # Read just before adding the record: another run of this script may have added its own meanwhile.
        results = read_records(args.out)
        results[path.stem] = {
            "measured_on": str(date.today()), "machine": f"{platform.machine()} {os.cpu_count()} cores, {device}",
            "cpu": cpu_model(),
            **({"gpu": torch.cuda.get_device_name()} if device == "cuda" else {}),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__, "seconds": round(seconds, 1), "sgemm_gflops": round(rate, 1),
            "parameters_sha256": parameters_digest(path),
        }
        print(f"{path.name}: {seconds / 60:.1f} min here ({rate:.0f} GFLOP/s sgemm)"
              + (f"; T4 estimate {duration(t4_seconds(seconds, rate))}" if device == "cpu" else ""), flush=True)
        args.out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print("updated:", ", ".join(write_statements(results)) or "nothing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
