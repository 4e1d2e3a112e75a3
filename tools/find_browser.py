"""Find a Chromium for the browser tests (Playwright drives it), or say in one line how to get one.

    python tools/find_browser.py        # prints the browser's path; exit status 1 and one line of advice if none

Looked for, in order: ``$CHROMIUM``; Debian's or Ubuntu's Chromium and Google Chrome on the PATH or in their usual
places (Linux, macOS); Playwright's own Chromium, present after ``python -m playwright install chromium`` (which
needs internet). ``make test`` runs this first, so a machine without a browser stops at once, before any test.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
PLACES = (
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/snap/bin/chromium",
    "/usr/bin/google-chrome",
    "/opt/google/chrome/chrome",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
)
ADVICE = ("no Chromium found for the browser tests: install one (Debian/Ubuntu: `sudo apt-get install chromium`; "
          "or Google Chrome), or let Playwright fetch its own with `.venv/bin/python -m playwright install chromium` "
          "(needs internet), or set CHROMIUM=/path/to/chromium")

# Headless Chromium as the tests and `make pdf` start it: no sandbox (containers), no GPU, and no background requests.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


PLAYWRIGHT_CACHES = ("~/.cache/ms-playwright", "~/Library/Caches/ms-playwright")
PLAYWRIGHT_BINARIES = ("chromium-*/chrome-linux*/chrome", "chromium-*/chrome-mac*/Chromium.app/Contents/MacOS/Chromium")


def playwright_chromium() -> str | None:
    """The Chromium that ``playwright install chromium`` downloaded, if it is there."""
    for cache in PLAYWRIGHT_CACHES:
        root = Path(os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or cache).expanduser()
        found = sorted(p for pattern in PLAYWRIGHT_BINARIES for p in root.glob(pattern) if os.access(p, os.X_OK))
        if found:
            return str(found[-1])
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    try:
        with sync_playwright() as p:
            path = p.chromium.executable_path
    except Exception:  # noqa: BLE001 - Playwright's driver missing or broken: no browser from it
        return None
    return path if path and Path(path).is_file() else None


def find_browser(env: dict | None = None) -> str | None:
    """The path of a usable Chromium, or None."""
    env = os.environ if env is None else env
    if env.get("CHROMIUM"):
        given = shutil.which(env["CHROMIUM"]) or env["CHROMIUM"]
        return given if Path(given).is_file() and os.access(given, os.X_OK) else None
    for name in NAMES:
        if shutil.which(name):
            return shutil.which(name)
    for place in PLACES:
        if Path(place).is_file() and os.access(place, os.X_OK):
            return place
    return playwright_chromium()


def main() -> int:
    path = find_browser()
    if path is None:
        given = os.environ.get("CHROMIUM")
        print(f"CHROMIUM={given} is not an executable browser" if given else ADVICE, file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
