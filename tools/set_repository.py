"""Point the book at another GitHub repository: the one setting a fork changes.

Usage (from the repository root)::

    python tools/set_repository.py https://github.com/YOUR-NAME/vae-book
    python tools/set_repository.py --check      # exit 1 if a chapter's setup cell disagrees with _config.yml

It rewrites ``repository.url`` in ``_config.yml`` (which drives the "Open in Colab", repository and issue buttons)
and the first cell of every ``chapters/*.ipynb`` (the Colab setup cell, which installs ``vaelib`` from that repository
with ``pip install "vaelib @ git+URL"``). Nothing else in the book names the repository.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
URL_RE = re.compile(r"https://github\.com/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
CONFIG_URL_RE = re.compile(r"^(  url:[ \t]*)(\S+)(.*)$", re.MULTILINE)
SETUP_HEADER = "# Setup: in Colab (or anywhere vaelib is missing) install it from the book's repository."


def setup_cell_source(url: str) -> str:
    """The exact source of every chapter's first cell, installing vaelib from ``url``."""
    return (
        f"{SETUP_HEADER} Nothing else is installed.\n"
        "import importlib.util, subprocess, sys\n"
        'if importlib.util.find_spec("vaelib") is None:\n'
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", '
        f'"vaelib @ git+{url}"], check=True)'
    )


def check_url(url: str) -> str:
    """``url`` without a trailing slash or ``.git``; ValueError unless it is https://github.com/OWNER/REPO."""
    url = url.strip().removesuffix("/").removesuffix(".git")
    if not URL_RE.fullmatch(url):
        raise ValueError(f"expected a GitHub repository URL like https://github.com/OWNER/REPO, got {url!r}")
    return url


def config_url(config: Path) -> str:
    """``repository.url`` as written in ``_config.yml``."""
    text = config.read_text(encoding="utf-8")
    block = re.search(r"^repository:\n((?:[ \t]+.*\n?)+)", text, re.MULTILINE)
    match = block and CONFIG_URL_RE.search(block.group(1))
    if not match:
        raise ValueError(f"{config} has no repository.url")
    return match.group(2)


def set_config_url(config: Path, url: str) -> None:
    """Rewrite ``repository.url`` in ``_config.yml`` in place, keeping comments and layout."""
    text = config.read_text(encoding="utf-8")
    block = re.search(r"^repository:\n((?:[ \t]+.*\n?)+)", text, re.MULTILINE)
    if not block:
        raise ValueError(f"{config} has no repository: section")
    body = CONFIG_URL_RE.sub(lambda m: f"{m.group(1)}{url}{m.group(3)}", block.group(1), count=1)
    config.write_text(text[: block.start(1)] + body + text[block.end(1):], encoding="utf-8")


def chapter_setup_source(notebook: Path) -> str:
    """The source of a notebook's first cell."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    if not nb.get("cells"):
        raise ValueError(f"{notebook} has no cells")
    source = nb["cells"][0]["source"]
    return "".join(source) if isinstance(source, list) else source


def set_chapter_url(notebook: Path, url: str) -> bool:
    """Make the notebook's first cell the setup cell for ``url``; returns True if the file changed."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    first = nb.cells[0] if nb.cells else None
    if first is None or first.cell_type != "code" or not first.source.startswith(SETUP_HEADER):
        raise ValueError(f"{notebook}: the first cell is not the Colab setup cell (it starts {SETUP_HEADER!r})")
    new = setup_cell_source(url)
    if first.source == new:
        return False
    first.source = new
    notebook.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")  # as tools/strip_notebooks.py writes
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Point the book (Colab buttons, setup cells) at a repository.")
    parser.add_argument("url", nargs="?", help="https://github.com/OWNER/REPO")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 on any disagreement")
    parser.add_argument("--root", type=Path, default=ROOT, help="the book's folder (default: this repository)")
    args = parser.parse_args(argv)
    config = args.root / "_config.yml"
    chapters = sorted((args.root / "chapters").glob("*.ipynb"))
    if args.check:
        url = config_url(config)
        wrong = [str(p) for p in chapters if chapter_setup_source(p) != setup_cell_source(url)]
        for p in wrong:
            print(f"setup cell does not install from {url}: {p}")
        return 1 if wrong else 0
    if not args.url:
        parser.error("give the repository URL (or --check)")
    try:
        url = check_url(args.url)
    except ValueError as err:
        parser.error(str(err))
    set_config_url(config, url)
    changed = [p for p in chapters if set_chapter_url(p, url)]
    print(f"repository.url = {url} in {config}; setup cell updated in {len(changed)} of {len(chapters)} chapters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
