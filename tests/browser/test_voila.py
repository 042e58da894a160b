"""`make present`: the notebooks as Voilà apps, code hidden and widgets live, in a real browser."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from jupyter_pages import (
    KERNEL_TIMEOUT_S,
    REDRAW_TIMEOUT_S,
    boundary_state,
    error_outputs,
    find_explorer,
    press,
    redraw,
    slider_handle,
    traces,
    wait_for_figures,
)

pytestmark = pytest.mark.browser

DRAWN = "document.querySelector('[data-test-explorer] .js-plotly-plot')._fullData.length > 0"
EMPTY_FIGURE = (
    "the explorer's figure is empty in Voilà (voila-dashboards/voila#1533): a FigureWidget view starts from the "
    "figure plotly sent when the widget was created (_widget_data, _widget_layout); an explorer draws after that, "
    "through one-shot messages that a page connecting later never sees"
)


def test_start_here_is_presented_with_a_live_explorer(browser, voila):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    console_errors = []
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    try:
        # Voilà runs the whole notebook before the page is complete
        page.goto(voila.address("/voila/render/00_start_here.ipynb"), timeout=KERNEL_TIMEOUT_S * 1000)
        explorer = find_explorer(page, timeout_s=KERNEL_TIMEOUT_S)
        assert page.locator(".jp-CodeCell .jp-InputArea, .jp-CodeMirrorEditor").count() == 0, (
            "the code should be hidden"
        )
        assert wait_for_figures(page, at_least=1) >= 1
        try:
            page.wait_for_function(f"() => {DRAWN}", timeout=30_000)
        except Exception:
            pytest.fail(EMPTY_FIGURE)
        assert any(trace["y"] for trace in traces(page)), EMPTY_FIGURE
        assert error_outputs(page) == []

        epochs = int(explorer.locator("[data-test-status]").inner_text().split()[1])
        fewer = redraw(page, press(slider_handle(explorer, "epochs"), "ArrowLeft"))
        assert fewer.status_after.startswith(f"epoch {epochs - 1} / {epochs - 1} ·"), fewer.status_after
        assert fewer.curve_after != fewer.curve_before
        # Voilà's page links Font Awesome from a CDN (its icons are bundled too): only that may fail offline
        assert [text for text in console_errors if not text.startswith("Failed to load resource")] == []
    finally:
        page.close()


BOUNDARY_REDRAWN = """([before, epochs]) => {
    const plot = document.querySelector('[data-test-explorer] .epochviz-boundary .js-plotly-plot');
    const now = plot && plot._fullData && plot._fullData.length
        ? plot._fullLayout.title.text + JSON.stringify(plot._fullData[0].z).slice(0, 2000) : null;
    return now !== null && now !== before && plot._fullLayout.title.text.includes(`after epoch ${epochs} `);
}"""


def test_explorer_follows_every_change_on_a_busy_machine(browser, voila):
    """Four changes in a row while every core is busy: the curve and the boundary follow each one, nothing fails.

    On a busy machine a FigureWidget's 5 MB module takes seconds to load in Voilà's page; anywidget 0.9.17 to
    0.11.0 then dropped every update to it, and the figure stayed on its first run while the status line moved on
    (pyproject.toml's `lab` extra says more). Console errors and uncaught exceptions in the page both count.
    """
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page_errors = []
    page.on("console", lambda message: message.type == "error" and page_errors.append(message.text))
    page.on("pageerror", lambda error: page_errors.append(f"uncaught: {error}"))
    try:
        page.goto(voila.address("/voila/render/00_start_here.ipynb"), timeout=KERNEL_TIMEOUT_S * 1000)
        explorer = find_explorer(page, timeout_s=KERNEL_TIMEOUT_S)
        page.wait_for_function("() => document.querySelector('[data-test-explorer] .epochviz-boundary .js-plotly-plot')"
                               "?._fullData?.length > 0", timeout=KERNEL_TIMEOUT_S * 1000)  # fmt: skip
        changes = {
            "fewer epochs (from the cache)": press(slider_handle(explorer, "epochs"), "ArrowLeft"),
            "weights restored (a retrain)": explorer.get_by_role("button", name="weights: restored").click,
            "fewer epochs again": press(slider_handle(explorer, "epochs"), "ArrowLeft"),
            "a smaller learning rate (a retrain)": press(slider_handle(explorer, "learning rate"), "ArrowLeft"),
        }
        for change, make in changes.items():
            boundary = boundary_state(page)
            drawn = redraw(page, make)
            assert drawn.curve_after != drawn.curve_before, f"{change}: the loss curve stayed on the old run"
            epochs = int(drawn.status_after.split()[1])
            before = boundary["title"] + boundary["z"].split(":", 1)[1]
            page.wait_for_function(BOUNDARY_REDRAWN, arg=[before, epochs], timeout=REDRAW_TIMEOUT_S * 1000)
        assert error_outputs(page) == []
        assert page_errors == [], "nothing in Voilà's page may fail or throw, however busy the machine"
    finally:
        page.close()
        for process in busy:
            process.kill()
            process.wait()
