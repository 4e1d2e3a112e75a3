"""Every page of the built book, in Debian's Chromium: it loads cleanly and offline, its maths is typeset, its
widgets respond, its images have alt text, it passes an axe-core audit, and chapters offer Colab and download.

Pages come from ``_toc.yml``, so a chapter is tested as soon as it is listed there. Build the book first
(``make test-browser`` does).

Widget convention (see ``vaelib/widgets.py``): every vaelib widget's root element carries ``data-vaelib-widget``,
draws into a ``<canvas>`` or ``<svg>`` and has at least one ``<input type="range">``; moving a slider redraws.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from .conftest import AXE_JS, BOOK_ROOT, source_of, toc_pages

PAGES = toc_pages()
CHAPTERS = [p for p in PAGES if source_of(p).suffix == ".ipynb"]


def html_path(page: str) -> str:
    return f"{page}.html"


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_without_errors(visits, page):
    visit = visits(html_path(page))
    assert not visit.problems(), f"{page}: " + "\n".join(visit.problems())
    assert not visit.unrendered_widgets, f"{page}: widget views never rendered: {visit.unrendered_widgets}"


@pytest.mark.parametrize("page", PAGES)
def test_page_requests_no_other_host(visits, page):
    visit = visits(html_path(page))
    assert not visit.external_requests, f"{page} asked hosts other than 127.0.0.1 for: {visit.external_requests}"


@pytest.mark.parametrize("page", PAGES)
def test_maths_is_typeset(visits, page):
    page_ = visits(html_path(page)).page
    report = page_.evaluate(
        """() => {
            const maths = Array.from(document.querySelectorAll('article .math'));
            return {
                total: maths.length,
                untypeset: maths.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 60)),
                errors: Array.from(document.querySelectorAll('mjx-merror')).map(e => e.textContent.slice(0, 80)),
                containers: document.querySelectorAll('article mjx-container').length,
            };
        }"""
    )
    assert not report["untypeset"], f"{page}: maths left as source: {report['untypeset'][:5]}"
    assert not report["errors"], f"{page}: MathJax errors: {report['errors'][:5]}"
    if report["total"]:
        assert report["containers"] >= report["total"]


def _looks_like_a_file_name(alt: str, src: str) -> bool:
    name = Path(urlsplit(src).path).name
    return alt == src or (bool(name) and alt.endswith(name)) or bool(re.fullmatch(r"\S+\.(png|jpe?g|gif|svg|webp)", alt))


@pytest.mark.parametrize("page", PAGES)
def test_images_have_alt_text_and_load(visits, page):
    images = visits(html_path(page)).page.evaluate(
        """() => Array.from(document.querySelectorAll('article img')).map(img => ({
            src: img.getAttribute('src'), alt: (img.getAttribute('alt') || '').trim(),
            loaded: img.complete && img.naturalWidth > 0,
        }))"""
    )
    # docutils writes the image's URI as its alt when none was given: that is no alt text either.
    no_alt = [i["src"][:80] for i in images if not i["alt"] or _looks_like_a_file_name(i["alt"], i["src"])]
    broken = [i["src"][:80] for i in images if not i["loaded"]]
    assert not no_alt, f"{page}: images without alt text: {no_alt}"
    assert not broken, f"{page}: images that did not load: {broken}"


@pytest.mark.parametrize("page", PAGES)
def test_accessibility_audit(visits, page):
    page_ = visits(html_path(page)).page
    assert AXE_JS.is_file(), f"{AXE_JS} is missing: run `npm ci` (axe-core is a devDependency in package.json)"
    # axe-core is UMD: with require.js on the page (widget pages) it would register as an anonymous AMD module
    # instead of setting window.axe, so hide `define` while it loads.
    page_.add_script_tag(content="window.__vaebookDefine = window.define; window.define = undefined;")
    page_.add_script_tag(path=str(AXE_JS))
    page_.add_script_tag(content="window.define = window.__vaebookDefine;")
    violations = page_.evaluate(
        """async () => {
            const scope = document.querySelector('article.bd-article') || document.querySelector('main');
            const result = await axe.run(scope, {resultTypes: ['violations']});
            return result.violations
                .filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => ({id: v.id, impact: v.impact, help: v.help,
                            nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' :: ' + n.html.slice(0, 120))}));
        }"""
    )
    assert not violations, f"{page}: axe-core serious/critical violations:\n" + json.dumps(violations, indent=1)


@pytest.mark.parametrize("page", CHAPTERS)
def test_chapter_has_colab_and_download_buttons(visits, page):
    config = yaml.safe_load((BOOK_ROOT / "_config.yml").read_text(encoding="utf-8"))
    repo = urlsplit(config["repository"]["url"]).path.strip("/")
    branch = config["repository"].get("branch", "master")
    page_ = visits(html_path(page)).page
    colab = f"{config['launch_buttons']['colab_url'].rstrip('/')}/github/{repo}/blob/{branch}/{page}.ipynb"
    assert page_.locator(f'a[href="{colab}"]').count() == 1, f"{page}: no 'Open in Colab' link to {colab}"
    download = page_.locator(f'a.btn-download-source-button[href$="{Path(page).name}.ipynb"]')
    assert download.count() == 1, f"{page}: no download button for the notebook"
    response = page_.request.get(page_.url.rsplit("/", 1)[0] + "/" + download.get_attribute("href"))
    assert response.ok, f"{page}: the downloadable notebook answers HTTP {response.status}"
    notebook = response.json()
    assert notebook["nbformat"] == 4 and notebook["cells"], f"{page}: the download is not a notebook"


# The explorers issue 5 requires on the static page, by chapter: the value (prefix) of their `data-vaelib-widget`.
REQUIRED_EXPLORERS = {
    "chapters/01-bayes-generative": "bayes",
    "chapters/03-kl-divergence": "kl",
    "chapters/04-variational-inference-elbo": "elbo",
    "chapters/06-latent-space": "latent",
}


@pytest.mark.parametrize("page", [p for p in PAGES if p in REQUIRED_EXPLORERS])
def test_required_explorer_is_on_the_page(visits, page):
    name = REQUIRED_EXPLORERS[page]
    count = visits(html_path(page)).page.locator(f'[data-vaelib-widget^="{name}"]').count()
    assert count >= 1, f"{page}: no rendered '{name}' explorer (an element with data-vaelib-widget='{name}...')"


# --- widgets -------------------------------------------------------------------------------------------------------

SNAPSHOT_JS = """(root) => ({
    graphics: Array.from(root.querySelectorAll('canvas')).map(c => { try { return c.toDataURL(); }
                                                                     catch (e) { return 'tainted'; } })
        .concat(Array.from(root.querySelectorAll('svg')).map(s => s.outerHTML))
        .concat(Array.from(root.querySelectorAll('img')).map(i => i.src)),
    text: root.innerText,
    values: Array.from(root.querySelectorAll('input, select, textarea')).map(i => i.value),
})"""

SET_RANGE_JS = """(input, value) => {
    input.value = value;
    input.dispatchEvent(new Event('input', {bubbles: true}));
    input.dispatchEvent(new Event('change', {bubbles: true}));
}"""


def _next_frames(page, n: int = 3) -> None:
    """Let the widget redraw: a few animation frames, then a short pause for asynchronous drawing."""
    page.evaluate(f"() => new Promise(r => {{ let k = {n}; const f = () => (--k ? requestAnimationFrame(f) : r()); "
                  f"requestAnimationFrame(f); }})")
    page.wait_for_timeout(150)


def _range_targets(page, slider) -> list[str]:
    """Values to try on a range input: its maximum, its minimum and a middle step, skipping the current one."""
    info = slider.evaluate("s => ({min: +(s.min || 0), max: +(s.max || 100), step: s.step, value: s.value})")
    low, high = info["min"], info["max"]
    mid = low + (high - low) / 3
    targets = [str(high), str(low), str(mid)]
    return [t for t in targets if float(t) != float(info["value"])]


def _vaelib_widget_problems(page) -> tuple[int, list[str]]:
    roots = page.locator("[data-vaelib-widget]")
    problems = []
    for i in range(roots.count()):
        root = roots.nth(i)
        name = root.get_attribute("data-vaelib-widget") or f"#{i}"
        root.scroll_into_view_if_needed()
        if root.locator("canvas, svg").count() == 0:
            problems.append(f"vaelib widget {name}: draws no <canvas> or <svg>")
        sliders = root.locator('input[type="range"]')
        if sliders.count() == 0:
            problems.append(f"vaelib widget {name}: has no <input type=range>")
        for j in range(sliders.count()):
            slider = sliders.nth(j)
            label = slider.get_attribute("aria-label") or slider.get_attribute("id") or f"slider {j}"
            changed = False
            for target in _range_targets(page, slider):
                before = root.evaluate(SNAPSHOT_JS)["graphics"]
                slider.evaluate(SET_RANGE_JS, target)
                _next_frames(page)
                if root.evaluate(SNAPSHOT_JS)["graphics"] != before:
                    changed = True
                    break
            if not changed:
                problems.append(f"vaelib widget {name}: moving {label} does not redraw its figure")
    return roots.count(), problems


def _ipywidget_problems(page) -> tuple[int, list[str]]:
    """Other widget views (plain ipywidgets): operate the first control and expect the view to change."""
    areas = page.locator(".widget-subarea:not(:has([data-vaelib-widget]))")
    problems, tested = [], 0
    for i in range(areas.count()):
        area = areas.nth(i)
        area.scroll_into_view_if_needed()
        before = area.evaluate(SNAPSHOT_JS)
        if area.locator(".widget-play button").count():  # a Play widget drives the others (jslink): press play
            area.locator(".widget-play button").first.click()
            page.wait_for_timeout(600)
        elif area.locator(".noUi-handle").count():
            handle = area.locator(".noUi-handle").first
            handle.focus()
            for _ in range(3):
                handle.press("ArrowRight")
        elif area.locator('input[type="range"]').count():
            slider = area.locator('input[type="range"]').first
            slider.evaluate(SET_RANGE_JS, _range_targets(page, slider)[0])
        elif area.locator('input[type="number"], input[type="text"]').count():
            box = area.locator('input[type="number"], input[type="text"]').first
            box.fill("7" if box.input_value() != "7" else "3")
            box.press("Enter")
        elif area.locator("button").count():
            area.locator("button").first.click()
            page.wait_for_timeout(600)
        else:
            continue  # an output-only view (e.g. HTML): nothing to operate
        tested += 1
        _next_frames(page)
        if area.evaluate(SNAPSHOT_JS) == before:
            problems.append(f"widget view {i}: operating its first control changed nothing visible")
    return tested, problems


@pytest.mark.parametrize("page", PAGES)
def test_widgets_respond_to_input(open_page, page):
    visit = open_page(html_path(page))
    n_views = visit.page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
    if n_views == 0 and visit.page.locator("[data-vaelib-widget]").count() == 0:
        return  # a page without widgets (e.g. the introduction) passes trivially: nothing to operate
    assert not visit.unrendered_widgets, f"{page}: widget views never rendered: {visit.unrendered_widgets}"
    n_vaelib, problems = _vaelib_widget_problems(visit.page)
    n_other, other = _ipywidget_problems(visit.page)
    problems += other
    assert n_vaelib + n_other > 0, f"{page}: {n_views} widget views but none could be operated"
    problems += visit.problems()  # e.g. an exception thrown by a widget's JavaScript while it redraws
    assert not problems, f"{page}:\n" + "\n".join(problems)
