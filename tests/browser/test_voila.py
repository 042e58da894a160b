"""`make present`: the notebooks as Voilà apps, code hidden and widgets live, in a real browser."""

from __future__ import annotations

import pytest
from jupyter_pages import (
    KERNEL_TIMEOUT_S,
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
