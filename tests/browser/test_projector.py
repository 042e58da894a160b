"""The main explorer on a projector (1280 × 720) and a narrow window (800 px), in Voilà and JupyterLab.

The sliders and the whole figure fit on the screen at once at 1280 × 720; at 800 px the figures
follow the page's width instead of being clipped; moving the epochs slider redraws the decision
boundary beside the curve; and the browser console stays free of errors. Screenshots go to
.artifacts/ (or docs/images/ with EPOCHVIZ_UPDATE_DOCS=1) for a person to look at.
"""

from __future__ import annotations

import os
from itertools import pairwise

import pytest
from jupyter_pages import (
    KERNEL_TIMEOUT_S,
    NOTEBOOK7_RUN_ALL,
    REDRAW_TIMEOUT_S,
    ROOT,
    RUN_ALL_TIMEOUT_S,
    boundary_state,
    error_outputs,
    find_explorer,
    finish_notebook,
    log_console,
    outside_viewport,
    press,
    redraw,
    shut_down_kernels,
    slider_handle,
    start_notebook,
)

pytestmark = pytest.mark.browser

START_HERE = "00_start_here.ipynb"

IMAGES = (ROOT if os.environ.get("EPOCHVIZ_UPDATE_DOCS") == "1" else ROOT / ".artifacts") / "docs" / "images"
PROJECTOR, NARROW = {"width": 1280, "height": 720}, {"width": 800, "height": 720}


def _check_layout(page, explorer, where: str, size: dict) -> None:
    """At 1280 × 720 the controls and the curve are on screen at once; at 800 px nothing sticks out or is cut off."""
    assert error_outputs(page) == []
    width = size["width"]
    off = outside_viewport(page, explorer)
    if width == PROJECTOR["width"]:
        assert off == [], f"{where} at {width} × {size['height']}: outside the screen: {off}"
    else:  # narrow: the page scrolls down, but nothing sticks out on the right or is cut off
        assert [problem for problem in off if "cut off" in problem] == [], f"{where} at {width} px: {off}"
        right = page.evaluate(
            "() => Math.max(...Array.from(document.querySelectorAll("
            "'[data-test-explorer] .js-plotly-plot')).map(p => p.getBoundingClientRect().right))"
        )
        assert right <= width + 1, f"{where} at {width} px: a figure reaches {right:.0f} px"
    IMAGES.mkdir(parents=True, exist_ok=True)
    explorer.screenshot(path=IMAGES / f"explorer-{where}-{width}.png", animations="disabled")


def _check_explorer(page, where: str, size: dict) -> None:
    explorer = find_explorer(page, timeout_s=KERNEL_TIMEOUT_S)
    page.wait_for_function("() => document.querySelector('[data-test-explorer] .epochviz-boundary .js-plotly-plot')"
                           "?._fullData?.length > 0", timeout=KERNEL_TIMEOUT_S * 1000)  # a busy CI machine  # fmt: skip
    _check_layout(page, explorer, where, size)
    before = boundary_state(page)
    fewer = redraw(page, press(slider_handle(explorer, "epochs"), "ArrowLeft"))
    epochs = int(fewer.status_after.split()[1])
    # the panel is redrawn just after the curve: wait for it (it must come, within the redraw budget)
    page.wait_for_function(
        "epochs => document.querySelector('[data-test-explorer] .epochviz-boundary .js-plotly-plot')"
        "?._fullLayout?.title?.text?.includes(`after epoch ${epochs} `)", arg=epochs, timeout=REDRAW_TIMEOUT_S * 1000,
    )  # fmt: skip
    after = boundary_state(page)
    assert f"after epoch {epochs}" in after["title"] and after["z"] != before["z"], (before["title"], after["title"])


@pytest.mark.parametrize("size", [PROJECTOR, NARROW], ids=["1280x720", "800px"])
def test_voila_explorer_fits_a_projector_and_redraws_the_boundary(browser, voila, size):
    page = browser.new_page(viewport=size)
    console_errors = []
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    try:
        page.goto(voila.address("/voila/render/00_start_here.ipynb"), timeout=KERNEL_TIMEOUT_S * 1000)
        _check_explorer(page, "voila", size)
        assert console_errors == [], "epochviz's Voilà template fetches nothing: no request may fail, nothing may throw"
    finally:
        page.close()


_EPOCH_LABELS = """() => Array.from(document.querySelectorAll(
    '[data-test-explorer] .js-plotly-plot:not(.epochviz-boundary .js-plotly-plot) .shapelayer text'))
    .filter(t => t.textContent.startsWith('epoch')).map(t => {
        const box = t.getBoundingClientRect(); return {text: t.textContent, left: box.left, right: box.right}; })"""


def _check_ghosts_and_blow_up(page, explorer) -> None:
    """The instructor's two embarrassments: a longer ghost squeezing the epoch labels, and a blow-up read as 0."""
    redraw(page, explorer.get_by_role("button", name="weights: restored").click)  # "never" becomes a ghost
    fewer = redraw(page, press(slider_handle(explorer, "epochs"), "PageDown"))
    epochs = int(fewer.status_after.split()[1])
    axis_end = page.evaluate("() => document.querySelector('[data-test-explorer] .js-plotly-plot')"
                             "._fullLayout.xaxis.range[1]")  # fmt: skip
    assert axis_end < epochs + 0.5, f"the x axis runs to {axis_end} for {epochs} epochs: the ghost stretched it"
    labels = sorted(page.evaluate(_EPOCH_LABELS), key=lambda label: label["left"])
    assert labels, "no epoch label is drawn"
    overlaps = [(a["text"], b["text"]) for a, b in pairwise(labels) if b["left"] < a["right"]]
    assert overlaps == [], f"epoch labels run into each other: {overlaps}"
    redraw(page, press(slider_handle(explorer, "learning rate"), "End"))
    message = explorer.locator(".widget-html").filter(has_text="blew up")
    assert message.count() >= 1, "at the top of the learning-rate slider the explorer must say the run blew up"


@pytest.mark.parametrize("size", [PROJECTOR, NARROW], ids=["1280x720", "800px"])
def test_lab_explorer_fits_a_projector_and_redraws_the_boundary(browser, lab, size):
    page = browser.new_page(viewport=size)
    console_errors = []
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    try:
        start_notebook(page, lab, "00_start_here.ipynb")
        finish_notebook(page, "00_start_here.ipynb")
        _check_explorer(page, "lab", size)
        if size == PROJECTOR:
            _check_ghosts_and_blow_up(page, find_explorer(page))
        assert console_errors == []
        assert log_console(page) == "", "JupyterLab's log console received something while the explorer was used"
    finally:
        page.close()
        shut_down_kernels(lab, "00_start_here.ipynb")


@pytest.mark.parametrize("size", [PROJECTOR, NARROW], ids=["1280x720", "800px"])
def test_notebook7_explorer_fits_a_projector(browser, notebook7, size):
    page = browser.new_page(viewport=size)
    console_errors = []
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    page.set_default_timeout((KERNEL_TIMEOUT_S + RUN_ALL_TIMEOUT_S) * 1000)
    try:
        page.goto(notebook7.address(f"/notebooks/{START_HERE}"))
        state = page.evaluate(NOTEBOOK7_RUN_ALL, START_HERE)
        assert state["phase"] == "done", f"{START_HERE} in Notebook 7: {state}"
        page.set_default_timeout(30_000)
        explorer = find_explorer(page, timeout_s=KERNEL_TIMEOUT_S)
        _check_layout(page, explorer, "notebook7", size)
        # a click, not a key press: in Notebook 7 a slider's arrow keys move the focus to the cell (see test_notebook7)
        retrained = redraw(page, explorer.get_by_role("button", name="weights: restored").click)
        assert retrained.curve_after != retrained.curve_before
        assert console_errors == []
    finally:
        page.close()
        shut_down_kernels(notebook7, START_HERE)
