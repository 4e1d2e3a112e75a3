"""Keep the execution cache honest: clear it when vaelib's sources changed since the chapters were executed.

jupyter-cache keys an executed notebook on the notebook's own contents only, but the executed pages also depend on
vaelib (its Python, and its widgets' JavaScript, which the pages embed). So ``make book`` runs this first::

    python book/cache_guard.py [--cache _build/.jupyter_cache]

It hashes ``vaelib/**/*.py``, ``vaelib/js/*`` and ``pyproject.toml`` and keeps the digest *inside* the cache folder
(``vaelib-sources.sha256``). The cache is kept when the digest matches and cleared when it differs or is missing. The
digest travels with the cache, so a CI cache that restores ``_build/.jupyter_cache`` keeps its executions across
runs while vaelib is unchanged (file dates play no part: a fresh checkout has new ones).
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIGEST_NAME = "vaelib-sources.sha256"


def sources(root: Path = ROOT) -> list[Path]:
    """The files whose contents the executed chapters depend on, besides the notebooks themselves."""
    files = [*root.glob("vaelib/**/*.py"), *root.glob("vaelib/js/*"), root / "pyproject.toml"]
    return sorted(p for p in files if p.is_file() and "__pycache__" not in p.parts)


def digest(root: Path = ROOT) -> str:
    h = hashlib.sha256()
    for path in sources(root):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def guard(cache: Path, root: Path = ROOT) -> str:
    """Clear ``cache`` unless it was made from the current sources; returns 'kept', 'cleared' or 'new'."""
    current = digest(root)
    stored = cache / DIGEST_NAME
    if stored.is_file() and stored.read_text().strip() == current:
        return "kept"
    state = "cleared" if cache.exists() else "new"
    if cache.exists():
        shutil.rmtree(cache)
    cache.mkdir(parents=True)
    stored.write_text(current + "\n")
    return state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=ROOT / "_build" / ".jupyter_cache")
    args = parser.parse_args(argv)
    state = guard(args.cache)
    if state == "cleared":
        print(f"cache_guard: vaelib changed since the chapters were executed: cleared {args.cache}, every chapter runs again")
    return 0


if __name__ == "__main__":
    sys.exit(main())
