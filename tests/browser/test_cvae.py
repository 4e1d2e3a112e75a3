"""The conditional VAE explorer on the built chapter 6 page, offline: picking a label and moving z redraw the image.

The widget (``vaelib.widgets.CVAEExplorer``, ``vaelib/js/cvae.js``) decodes ``[z1, z2, one_hot(y)]`` with the CVAE's
decoder weights embedded in the page, in the page's JavaScript, with no kernel. Its first slider picks the label y
(so does a click on the strip of all labels decoded at the same z), the next two move z. The decoding maths itself is
checked against PyTorch under Node (tests/test_widgets_cvae.py); here the built page must respond.
"""
from __future__ import annotations

from .test_pages import SET_RANGE_JS, _next_frames

PAGE = "chapters/06-latent-space.html"
ROOT = '[data-vaelib-widget="cvae"]'
#: js/cvae.js's strip geometry in CSS pixels: the plane canvas is PAD + 300 + 12 wide, the strip's tiles start at
#: x = PAD, y = 16 and are TILE wide with GAP between them (ten labels: floor((300 - 9 * 3) / 10) = 27).
PAD, GAP, TILE, WIDTH, TOP = 34, 3, 27, 346, 16

STATE_JS = """(r) => {
    const image = r.querySelector('canvas.vaelib-cvae-image');
    const value = (suffix) => r.querySelector(`input[type="range"][id$="-${suffix}"]`).value;
    return { image: image.toDataURL(), label: image.getAttribute('aria-label'),
             strip: r.querySelector('canvas.vaelib-cvae-strip').toDataURL(),
             readout: r.querySelector('.vaelib-cvae-readout').textContent,
             digit: value('digit'), z1: value('z1'), z2: value('z2') };
}"""


def test_picking_a_label_and_moving_z_change_the_decoded_image(open_page):
    visit = open_page(PAGE)
    page, root = visit.page, visit.page.locator(ROOT)
    assert root.count() == 1 and not visit.external_requests, (
        f"{PAGE}: {root.count()} rendered conditional VAE explorers ({ROOT}); requests to other hosts: "
        f"{visit.external_requests}")
    root.scroll_into_view_if_needed()
    digit = root.locator('input[type="range"][id$="-digit"]')
    z1 = root.locator('input[type="range"][id$="-z1"]')
    assert digit.count() == 1 and z1.count() == 1
    assert digit.get_attribute("min") == "0" and digit.get_attribute("max") == "9"
    before = root.evaluate(STATE_JS)

    # Pick another label with the slider: the image changes, z stays.
    label = "1" if before["digit"] != "1" else "7"
    digit.evaluate(SET_RANGE_JS, label)
    _next_frames(page)
    picked = root.evaluate(STATE_JS)
    assert picked["digit"] == label
    assert picked["image"] != before["image"], "picking another label did not change the decoded image"
    assert (picked["z1"], picked["z2"]) == (before["z1"], before["z2"])
    assert picked["strip"] != before["strip"], "the strip does not outline the picked label"

    # Move z: the image changes, the label stays.
    target = "2" if float(picked["z1"]) != 2 else "-2"
    z1.evaluate(SET_RANGE_JS, target)
    _next_frames(page)
    moved = root.evaluate(STATE_JS)
    assert float(moved["z1"]) == float(target) and moved["digit"] == label
    assert moved["image"] != picked["image"], "moving z1 did not change the decoded image"
    assert f"z = ({float(target):.2f}," in moved["readout"] and f"z = ({float(target):.2f}," in moved["label"]

    # Click the strip's first tile (label 0): the label is picked, the image redrawn.
    strip = root.locator("canvas.vaelib-cvae-strip")
    box = strip.bounding_box()
    scale = box["width"] / WIDTH
    strip.click(position={"x": (PAD + TILE / 2) * scale, "y": (TOP + TILE / 2) * scale})
    _next_frames(page)
    clicked = root.evaluate(STATE_JS)
    assert clicked["digit"] == "0", f"clicking the strip's first tile picked {clicked['digit']}"
    assert clicked["image"] != moved["image"] and clicked["z1"] == moved["z1"]
    assert not visit.problems(), "\n".join(visit.problems())
