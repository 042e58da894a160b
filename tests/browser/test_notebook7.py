"""Notebook 7 (`jupyter notebook`, what many classes open): the first notebook runs clean and its explorer reacts.

Notebook 7 is built from JupyterLab's own plugins, but its page is another app: one document per
browser tab at /notebooks/<name>, a shell without JupyterLab's side panels. So the notebook is run
here through Notebook 7's own `window.jupyterapp`, and read with the same helpers as in JupyterLab.
"""

from __future__ import annotations

import pytest
from jupyter_pages import (
    KERNEL_TIMEOUT_S,
    NOTEBOOK7_RUN_ALL,
    RUN_ALL_TIMEOUT_S,
    error_outputs,
    explorer_state,
    find_explorer,
    redraw,
    shut_down_kernels,
    traces,
    wait_for_figures,
)

pytestmark = pytest.mark.browser

START_HERE = "00_start_here.ipynb"


@pytest.fixture(scope="module")
def start_here(browser, notebook7):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout((KERNEL_TIMEOUT_S + RUN_ALL_TIMEOUT_S) * 1000)
    try:
        page.goto(notebook7.address(f"/notebooks/{START_HERE}"))
        state = page.evaluate(NOTEBOOK7_RUN_ALL, START_HERE)
        assert state["phase"] == "done", f"{START_HERE} in Notebook 7: {state}\n{notebook7.log_tail()}"
        page.set_default_timeout(30_000)
        yield page
    finally:
        page.close()
        shut_down_kernels(notebook7, START_HERE)


def test_start_here_runs_clean_and_draws_the_explorer_in_notebook7(start_here):
    assert start_here.locator("#main-panel .jp-NotebookPanel").count() == 1, "not Notebook 7's single-document page"
    assert error_outputs(start_here) == []
    assert wait_for_figures(start_here, at_least=2) >= 2  # the "See" figure and the explorer's
    find_explorer(start_here)
    assert any(trace["y"] for trace in traces(start_here)), "the explorer's figure has no data"


def test_explorer_retrains_on_a_click_in_notebook7(start_here):
    """A click on "weights: restored" retrains and redraws. (Arrow keys on a slider's handle are not
    used here: in Notebook 7 7.6 under headless Chromium the key press moved the focus to the active cell, not
    the slider.)"""
    explorer = find_explorer(start_here)
    epochs = int(explorer_state(start_here)["status"].split()[1])
    reset = explorer.get_by_role("button", name="weights: restored")  # ToggleButtons are buttons too
    change = redraw(start_here, reset.click)
    assert change.trained, "a new reset mode is a new run: it must train"
    assert change.status_after.startswith(f"epoch {epochs} / {epochs} ·"), change.status_after
    assert change.curve_after != change.curve_before
    assert error_outputs(start_here) == []
