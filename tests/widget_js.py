"""Shared checks for the widgets' JavaScript (vaelib/js/*.js).

``check_conventions`` pins the DOM contract the browser tests rely on; ``run_node`` runs a widget module's exported
maths under Node.js, so each test can compare the very code the page runs against Python. A widget's module is
``js/common.js`` followed by ``js/NAME.js`` (``vaelib.widgets._js``); both helpers work on that whole module.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from vaelib.widgets import JS_DIR, _js

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")


def check_conventions(name: str, widget_class) -> str:
    """Assert that the widget's module is common.js + vaelib/js/NAME.js and follows the conventions; returns the
    widget's own file (without common.js)."""
    own = (JS_DIR / f"{name}.js").read_text(encoding="utf-8")
    common = (JS_DIR / "common.js").read_text(encoding="utf-8")
    assert widget_class._esm == _js(name) and _js(name).startswith(common) and _js(name).endswith(own)
    assert "export default" in own and "render(" in own and "export default" not in common
    assert f'widgetRoot("{name}"' in own, "the root must come from common.js's widgetRoot (data-vaelib-widget)"
    assert '"data-vaelib-widget": name' in common and 'make("label", { for: id }' in common
    # Sliders come from common.js: sliderRow, sliderTable, or latentPoint (the z1, z2 sliders of a latent plane).
    assert re.search(r"slider(Row|Table)\(|latentPoint\(", own) and 'type: "range"' in common and "aria-label" in own
    assert ("bindSlider(" in own or "model.save_changes()" in own or "latentPoint(" in own) \
        and "model.save_changes()" in common
    for src in (common, own):
        assert not re.search(r"\bimport\b[^;]*from", src), "no imports: the widget must not fetch anything"
        assert not re.search(r"https?://", src), "no external URLs"
    return own


def run_node(tmp_path, module: str, body: str, payload):
    """Run ``body`` under Node with ``m`` bound to vaelib/js/MODULE.js's exports and ``s`` to ``payload``.

    ``body`` prints one JSON value with console.log; it is returned parsed.
    """
    (tmp_path / f"{module}.mjs").write_text(_js(module), encoding="utf-8")
    (tmp_path / "in.json").write_text(json.dumps(payload))
    (tmp_path / "run.mjs").write_text(
        f'import * as m from "./{module}.mjs";\nimport {{ readFileSync }} from "node:fs";\n'
        'const s = JSON.parse(readFileSync(process.argv[2], "utf8"));\n' + body)
    out = subprocess.run([NODE, str(tmp_path / "run.mjs"), str(tmp_path / "in.json")],
                         capture_output=True, text=True, check=True, timeout=60)
    return json.loads(out.stdout)
