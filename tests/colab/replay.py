"""Replay a student's Colab session: every chapter, "Run all", in an environment holding only what Colab has.

    python tests/colab/replay.py                     # all chapters (what `make test-colab` runs)
    python tests/colab/replay.py chapters/05-vae.ipynb

1. The environment (``.venv-colab``) holds Colab's preinstalled set, ``tests/colab/preinstalled.txt`` (ipywidgets
   7.7.1; no myst-nb, jupyter-book or anywidget). It is built once and reused while that file is unchanged.
   (About 6 GB: a CUDA build of torch, as Colab has.)
2. vaelib is installed into it as a chapter's setup cell does, with a plain ``pip install`` of this checkout, after
   removing what the previous replay installed. If that changes the version of any preinstalled package (which in
   Colab would force a runtime restart), the replay fails and names the packages.
3. Every chapter runs top to bottom in a kernel of that environment, quick configuration, each in a fresh working
   folder and a fresh model cache, as each Colab notebook gets a fresh machine. The data come from ``$VAELIB_DATA``
   when it is set (offline; CI does this), else torchvision downloads them once into ``~/.cache/vaelib/data``. The first failing cell stops the replay with its chapter, its cell number and the error.

This script runs in the book's own environment (it needs nbclient, as the book build does); only the kernels run in
the Colab-like one.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tools.execute import CellFailure, execute  # noqa: E402

PREINSTALLED = Path(__file__).with_name("preinstalled.txt")
ENV = ROOT / ".venv-colab"
KERNEL_NAME = "colab-like"


class ReplayFailure(RuntimeError):
    """A chapter failed in the Colab-like environment, or installing vaelib changed a preinstalled package."""


def env_python(env: Path = ENV) -> Path:
    return env / "bin" / "python"


def _pip(env: Path, *args: str, quiet: bool = True) -> str:
    cmd = [str(env_python(env)), "-m", "pip", *args, *(["-q"] if quiet else []), "--disable-pip-version-check"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise ReplayFailure(f"`pip {' '.join(args)}` failed in {env}:\n{done.stdout}{done.stderr}")
    return done.stdout


def installed(env: Path = ENV) -> dict[str, str]:
    """{normalised package name: version} of everything installed in ``env``."""
    listing = json.loads(_pip(env, "list", "--format=json", quiet=False))
    return {p["name"].lower().replace("_", "-"): p["version"] for p in listing}


def changed_versions(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The packages of ``before`` whose version differs in ``after`` (or that disappeared), as 'name a -> b'."""
    return [f"{name} {old} -> {after.get(name, 'removed')}" for name, old in sorted(before.items())
            if after.get(name) != old]


def build_env(env: Path = ENV, requirements: Path = PREINSTALLED) -> dict[str, str]:
    """The Colab-like environment, rebuilt only when ``requirements`` changed; returns its base package set."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp, base_file = env / ".colab-requirements.sha256", env / ".colab-base.json"
    if stamp.is_file() and stamp.read_text() == digest and base_file.is_file() and env_python(env).exists():
        write_kernelspec(env)
        return json.loads(base_file.read_text())
    print(f"colab replay: building {env.name} from {requirements.relative_to(ROOT)} (once; reused afterwards)")
    shutil.rmtree(env, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    _pip(env, "install", "-r", str(requirements))
    base = installed(env)
    missing = {"myst-nb", "jupyter-book", "anywidget"} & set(base)
    if missing:
        raise ReplayFailure(f"the Colab-like environment must not hold {sorted(missing)} (Colab does not)")
    base_file.write_text(json.dumps(base, indent=1))
    stamp.write_text(digest)
    write_kernelspec(env)
    return base


def write_kernelspec(env: Path) -> None:
    """Declare the environment's Python as the kernel ``colab-like`` (under ``env/share/jupyter/kernels``)."""
    kernel_dir = env / "share" / "jupyter" / "kernels" / KERNEL_NAME
    kernel_dir.mkdir(parents=True, exist_ok=True)
    (kernel_dir / "kernel.json").write_text(json.dumps({
        # -Xfrozen_modules=off: the debugger of Colab's ipykernel warns at every start without it.
        "argv": [str(env_python(env)), "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (Colab-like)", "language": "python"}))


def install_vaelib(env: Path, base: dict[str, str], source: Path = ROOT) -> dict[str, str]:
    """Remove what the last replay added, pip-install ``source`` as the setup cell does, check nothing else moved.

    Returns the packages the install added ({name: version}). Raises ReplayFailure naming every preinstalled package
    whose version changed.
    """
    extra = sorted(set(installed(env)) - set(base) - {"pip", "setuptools", "wheel"})
    if extra:
        _pip(env, "uninstall", "-y", *extra)
    with tempfile.TemporaryDirectory() as tmp:  # a clean copy: the build must not write into the checkout
        copy = Path(tmp) / "vaelib-src"
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns(
            ".git", ".venv*", "_build", "node_modules", "*.egg-info", "__pycache__", "chapters", "tests"))
        _pip(env, "install", str(copy))
    after = installed(env)
    moved = changed_versions(base, after)
    if moved:
        raise ReplayFailure("installing vaelib changed packages Colab preinstalls (a runtime restart in Colab): "
                            + "; ".join(moved))
    return {name: v for name, v in after.items() if name not in base}


def run_notebook(path: Path, env: Path = ENV, timeout: int = 1800) -> float:
    """Execute ``path`` cell by cell in a Colab-like kernel; returns seconds. ReplayFailure on the first error.

    ``timeout`` (seconds per cell) only catches a hung cell: Colab has none.
    """
    import nbformat

    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="colab-content-") as content:
        os.environ["VAELIB_CACHE"] = str(Path(content) / "model-cache")  # a fresh machine: nothing cached
        os.environ["JUPYTER_PATH"] = str(env / "share" / "jupyter")  # where the Colab-like kernel is declared
        try:
            seconds = execute(nb, path.name, KERNEL_NAME, content, timeout)
        except CellFailure as err:
            raise ReplayFailure(str(err)) from None
    check_widgets(nb, path.name)
    return seconds


def check_widgets(nb, name: str) -> int:
    """Every explorer a chapter builds must have been constructed and serialised by the kernel's ipywidgets (7.7.1
    here): its model is in the saved widget state. Returns the number of anywidget models."""
    built = sum(len(re.findall(r"\b[A-Z]\w*Explorer\(", c.source)) for c in nb.cells if c.cell_type == "code")
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    models = [m for m in state.values() if m.get("model_name") == "AnyModel"]
    if built and not models:
        raise ReplayFailure(f"{name} builds {built} explorer(s) but no anywidget model was serialised by the kernel")
    return len(models)


def self_check(env: Path = ENV) -> None:
    """The replay must catch what Colab would: a notebook that imports myst_nb (which Colab lacks) fails, by name."""
    import nbformat

    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "imports-myst-nb.ipynb"
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("from myst_nb import glue")]
        nbformat.write(nb, probe)
        try:
            run_notebook(probe, env)
        except ReplayFailure as err:
            if "cell 1" in str(err) and "ModuleNotFoundError" in str(err):
                return
            raise ReplayFailure(f"self-check: a notebook importing myst_nb failed for another reason: {err}") from None
        raise ReplayFailure("self-check: a notebook importing myst_nb ran: the environment is not Colab-like")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("chapters", nargs="*", type=Path, help="notebooks (default: chapters/*.ipynb)")
    args = parser.parse_args(argv)
    chapters = args.chapters or sorted((ROOT / "chapters").glob("*.ipynb"))
    try:
        base = build_env()
        added = install_vaelib(ENV, base)
        print(f"colab replay: vaelib installed; added {', '.join(f'{n} {v}' for n, v in sorted(added.items()))}; "
              f"no preinstalled package changed version (ipywidgets {base.get('ipywidgets')})")
        self_check()
        print("colab replay: self-check passed (a notebook importing myst_nb fails here, as in Colab)")
        for path in chapters:
            seconds = run_notebook(path.resolve())
            print(f"colab replay: {path.name} ran top to bottom in {seconds:.0f} s")
    except ReplayFailure as err:
        print(f"colab replay FAILED: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
