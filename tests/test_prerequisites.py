"""What a fresh machine lacks is named at once, in one line: a browser for `make test`, npm for `make book`."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools import find_browser as fb

ROOT = Path(__file__).resolve().parents[1]


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def nothing_installed(monkeypatch, tmp_path):
    monkeypatch.setattr(fb, "NAMES", ())
    monkeypatch.setattr(fb, "PLACES", ())
    monkeypatch.setattr(fb, "PLAYWRIGHT_CACHES", (str(tmp_path / "no-cache"),))
    monkeypatch.delenv("PLAYWRIGHT_BROWSERS_PATH", raising=False)
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)   # `import` fails: no Playwright driver either
    return tmp_path


def test_no_browser_anywhere_is_none(nothing_installed):
    assert fb.find_browser({}) is None


def test_chromium_variable_wins_and_must_be_executable(nothing_installed):
    browser = executable(nothing_installed / "bin" / "my-chrome")
    assert fb.find_browser({"CHROMIUM": str(browser)}) == str(browser)
    assert fb.find_browser({"CHROMIUM": str(nothing_installed / "missing")}) is None


def test_a_system_browser_in_its_usual_place(nothing_installed, monkeypatch):
    chrome = executable(nothing_installed / "opt" / "google" / "chrome" / "chrome")
    monkeypatch.setattr(fb, "PLACES", (str(chrome),))
    assert fb.find_browser({}) == str(chrome)


def test_playwrights_own_chromium(nothing_installed, monkeypatch):
    cache = nothing_installed / "ms-playwright"
    chrome = executable(cache / "chromium-1187" / "chrome-linux" / "chrome")
    monkeypatch.setattr(fb, "PLAYWRIGHT_CACHES", (str(cache),))
    assert fb.find_browser({}) == str(chrome)


def bare_path(tmp_path: Path, *commands: str) -> str:
    """A PATH holding only links to the given commands (and what make's recipes need: sh, test)."""
    bin_dir = tmp_path / "bare-bin"
    bin_dir.mkdir()
    for name in ("sh", "test", "echo", *commands):
        found = shutil.which(name)
        if found:
            (bin_dir / name).symlink_to(found)
    return str(bin_dir)


def run_make(target: str, env: dict) -> subprocess.CompletedProcess:
    """`make -s TARGET` as a user types it, even when these tests themselves run under make (CI's `make test`)."""
    env = {key: value for key, value in env.items() if key not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    return subprocess.run([shutil.which("make"), "-s", target], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def message_lines(stderr: str) -> list[str]:
    """What the recipe printed, without make's own `make: *** ... Error 1` (`make[N]:` when nested)."""
    return [line for line in stderr.splitlines() if line.strip() and not re.match(r"make(\[\d+\])?:", line)]


def test_make_test_without_a_browser_stops_at_once_in_one_line(tmp_path):
    env = {**os.environ, "CHROMIUM": str(tmp_path / "no-such-browser")}
    done = run_make("need-browser", env)
    assert done.returncode != 0
    lines = message_lines(done.stderr)
    assert lines == [f"CHROMIUM={tmp_path / 'no-such-browser'} is not an executable browser"]
    assert "need-npm need-browser test-unit" in (ROOT / "Makefile").read_text()   # checked before any test runs


def test_make_book_without_npm_stops_at_once_in_one_line(tmp_path):
    env = {**os.environ, "PATH": bare_path(tmp_path, "python3")}
    done = run_make("need-npm", env)
    assert done.returncode != 0
    lines = message_lines(done.stderr)
    assert len(lines) == 1 and "needs Node.js and npm" in lines[0] and "apt-get install nodejs npm" in lines[0]
    assert "book: need-npm venv" in (ROOT / "Makefile").read_text()   # before the virtual environment is built
