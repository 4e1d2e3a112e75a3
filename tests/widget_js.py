"""Shared checks for the widgets' JavaScript (vaelib/js/*.js).

``check_conventions`` pins the DOM contract the browser tests rely on; ``run_node`` runs a module's exported maths
under Node.js, so each test can compare the very code the page runs against Python.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from vaelib.widgets import JS_DIR

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")


def check_conventions(name: str, widget_class) -> str:
    """Assert that vaelib/js/NAME.js is the widget's module and follows the conventions; returns its source."""
    src = (JS_DIR / f"{name}.js").read_text(encoding="utf-8")
    assert widget_class._esm == src
    assert "export default" in src and "render(" in src
    assert f'"data-vaelib-widget": "{name}"' in src
    assert 'type: "range"' in src and "label" in src and 'role: "img"' in src and "aria-label" in src
    assert "model.save_changes()" in src
    assert not re.search(r"\bimport\b[^;]*from", src), "no imports: the widget must not fetch anything"
    assert not re.search(r"https?://", src), "no external URLs"
    return src


def run_node(tmp_path, module: str, body: str, payload):
    """Run ``body`` under Node with ``m`` bound to vaelib/js/MODULE.js's exports and ``s`` to ``payload``.

    ``body`` prints one JSON value with console.log; it is returned parsed.
    """
    shutil.copy(JS_DIR / f"{module}.js", tmp_path / f"{module}.mjs")
    (tmp_path / "in.json").write_text(json.dumps(payload))
    (tmp_path / "run.mjs").write_text(
        f'import * as m from "./{module}.mjs";\nimport {{ readFileSync }} from "node:fs";\n'
        'const s = JSON.parse(readFileSync(process.argv[2], "utf8"));\n' + body)
    out = subprocess.run([NODE, str(tmp_path / "run.mjs"), str(tmp_path / "in.json")],
                         capture_output=True, text=True, check=True, timeout=60)
    return json.loads(out.stdout)
