"""Copy the browser assets the book serves itself into ``_book_static/vendor/``.

Run by ``make book`` after ``npm ci``. Sources:

- ``node_modules/`` (from ``package.json`` + ``package-lock.json``): require.js, the Jupyter widget manager
  (``@jupyter-widgets/html-manager``, whose ``embed-amd.js`` also defines ``@jupyter-widgets/base`` and ``controls``)
  and MathJax 3;
- the installed ``anywidget`` Python package: its AMD module ``share/jupyter/nbextensions/anywidget/index.js`` under
  ``sys.prefix``, so the page runs exactly the anywidget version that produced the widget state.

``_config.yml`` lists ``_book_static`` in ``html_static_path``, so these land in ``_build/html/_static/vendor/``.
Nothing here is committed: ``_book_static/vendor/`` and ``node_modules/`` are ignored by git.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def anywidget_amd() -> Path:
    """Path of anywidget's AMD module in the running Python environment."""
    path = Path(sys.prefix) / "share" / "jupyter" / "nbextensions" / "anywidget" / "index.js"
    if not path.is_file():
        raise FileNotFoundError(
            f"anywidget's AMD module is missing at {path}; install anywidget into this environment "
            f"(pip install -r requirements.txt) and run this script with that environment's Python."
        )
    return path


def copy_assets(root: Path = ROOT, dest: Path | None = None) -> Path:
    """Copy every asset into ``dest`` (default ``root/_book_static/vendor``), replacing what was there."""
    modules = root / "node_modules"
    dest = dest or root / "_book_static" / "vendor"
    if not (modules / "requirejs").is_dir():
        raise FileNotFoundError(f"{modules} has no requirejs: run `npm ci` in {root} first.")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    no_maps = shutil.ignore_patterns("*.map", "*.LICENSE.txt")
    (dest / "requirejs").mkdir()
    shutil.copy2(modules / "requirejs" / "require.js", dest / "requirejs" / "require.js")
    manager = modules / "@jupyter-widgets" / "html-manager" / "dist"
    shutil.copytree(manager, dest / "html-manager", ignore=shutil.ignore_patterns("*.map", "embed.js", "libembed-amd.js"))
    shutil.copytree(modules / "mathjax" / "es5", dest / "mathjax", ignore=no_maps)
    (dest / "anywidget").mkdir()
    shutil.copy2(anywidget_amd(), dest / "anywidget" / "index.js")
    for package in ("requirejs", "@jupyter-widgets/html-manager", "mathjax"):
        for name in ("LICENSE", "LICENSE.txt", "LICENSE.md"):
            if (modules / package / name).is_file():
                shutil.copy2(modules / package / name, dest / f"{package.replace('/', '_').lstrip('@')}-{name}")
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (holds node_modules/)")
    parser.add_argument("--dest", type=Path, default=None, help="target folder (default ROOT/_book_static/vendor)")
    args = parser.parse_args(argv)
    dest = copy_assets(args.root.resolve(), args.dest)
    print(f"copied book assets into {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
