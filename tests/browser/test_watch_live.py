"""`ev.watch()` in a real browser: the live figure draws while a loop runs; the switchboard follows its boxes.

Notebook 12 is run whole (its switchboard included); then a cell with the buggy loop of the README (the
model built inside the epoch loop) is added at its end and run, the way a learner types one. Nothing is
saved: the page's saves are answered without writing. The same cell runs in Notebook 7, and Voilà
presents notebook 12 with its live figures drawn. The README's screenshot of the live figure goes to
.artifacts/ (docs/images/ with EPOCHVIZ_UPDATE_DOCS=1).
"""

from __future__ import annotations

import os
import secrets
from types import SimpleNamespace

import nbformat
import pytest
from jupyter_pages import (
    KERNEL_TIMEOUT_S,
    NOTEBOOK7_RUN_ALL,
    NOTEBOOKS,
    REDRAW_TIMEOUT_S,
    ROOT,
    RUN_ALL_TIMEOUT_S,
    error_outputs,
    finish_notebook,
    log_console,
    shut_down_kernels,
    start_notebook,
    wait_for_figures,
)

pytestmark = pytest.mark.browser

NOTEBOOK = "12_does_my_loop_reset.ipynb"
BUGGY_LOOP = 'with ev.watch() as w:\n    ev.handwritten_loop("moons", epochs=10, mistakes=["model_inside_loop"])'
STEPS, EPOCHS = 100, 10  # 10 epochs of 10 batches (320 training samples of moons, batches of 32)
IMAGES = (ROOT if os.environ.get("EPOCHVIZ_UPDATE_DOCS") == "1" else ROOT / ".artifacts") / "docs" / "images"
VIEWPORT = {"width": 1280, "height": 1000}
STDOUT = "application/vnd.jupyter.stdout"

# Appends a code cell holding `code` to the current notebook (JupyterLab or Notebook 7), marks it with
# data-test-cell=`tag` and runs it, without waiting. While it runs, every change of the cell's figure is
# recorded: how many steps its faint curve held each time it was drawn. Reports in window.__cell:
# {phase: running → done | failed, error, drawn: [steps, …]}.
_RUN_NEW_CELL = """([code, tag]) => {
    const state = window.__cell = {phase: 'running', error: null, drawn: []};
    const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
    const app = window.jupyterapp, panel = app.shell.currentWidget, notebook = panel.content;
    const idle = () => panel.sessionContext.session.kernel.status === 'idle';
    notebook.activeCellIndex = notebook.widgets.length - 1;
    (async () => {
        await app.commands.execute('notebook:insert-cell-below');
        const cell = notebook.activeCell;
        cell.model.sharedModel.setSource(code);
        cell.node.setAttribute('data-test-cell', tag);
        const record = () => {
            const plot = cell.node.querySelector('.js-plotly-plot');
            const steps = plot && plot._fullData && plot._fullData.length ? (plot._fullData[0].x || []).length : 0;
            if (steps !== state.drawn[state.drawn.length - 1]) state.drawn.push(steps);
        };
        new MutationObserver(record).observe(cell.node, {subtree: true, childList: true, attributes: true});
        await app.commands.execute('notebook:run-cell');
        while (!idle()) await sleep(100);
        record();
        state.phase = 'done';
    })().catch(error => { state.phase = 'failed'; state.error = String(error); });
}"""

# What a Plotly figure in `root` shows: its traces, the epoch bands (shapes and their SVG), the annotations
# drawn in its SVG and whether each lies inside the plot, the legend and the title.
_FIGURE = """(root) => {
    const plot = root.querySelector('.js-plotly-plot');
    if (!plot || !plot._fullLayout) return null;
    const box = plot.getBoundingClientRect();
    const inside = node => { const r = node.getBoundingClientRect();
        return r.width > 0 && r.height > 0 && r.left >= box.left - 1 && r.right <= box.right + 1 &&
               r.top >= box.top - 1 && r.bottom <= box.bottom + 1; };
    return {
        traces: plot._fullData.map(trace => ({name: trace.name, points: (trace.y || []).length,
            finite: Array.from(trace.y || [], Number).filter(Number.isFinite).length})),
        bands: plot._fullLayout.shapes.filter(shape => shape.type === 'rect').length,
        bandsDrawn: plot.querySelectorAll('.shapelayer path').length,
        annotations: Array.from(plot.querySelectorAll('.infolayer .annotation-text')).map(
            text => ({text: text.textContent.trim(), visible: inside(text)})),
        legend: Array.from(plot.querySelectorAll('.legendtext')).map(
            text => ({text: text.textContent.trim(), visible: inside(text)})),
        title: plot._fullLayout.title.text,
        // the figure's title and the y axis's, as boxes: a long axis title once ran into the figure's
        titles: ['.g-gtitle', '.g-ytitle'].map(selector => {
            const r = plot.querySelector(selector).getBoundingClientRect();
            return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; }),
    };
}"""


def _watch_console(page) -> list[str]:
    """Every console error and uncaught page error of `page` from now on."""
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    return errors


def _never_save(page, server) -> None:
    """Answer the page's saves of a notebook without writing it: the committed notebooks stay as they are.

    Notebook 7 7.6 reads no settings from the `notebook7` fixture's user_settings_dir (its settings API
    answers {} for the docmanager), so its autosave stays on and saved notebook 12, outputs and added
    cell included, two minutes after the cells ran. The page is given the file's model as it is on disk.
    """

    def answer(route) -> None:
        if route.request.method != "PUT":
            route.fallback()
            return
        path = route.request.url.split("/api/contents/", 1)[1].split("?", 1)[0]
        route.fulfill(json=server.api("GET", f"/api/contents/{path}?content=0"))

    page.route("**/api/contents/**", answer)


def _from_the_first_cell(page, errors: list[str]) -> None:
    """Wait for the notebook's cells to start running, and forget the errors its opening caused.

    Opening a notebook saved with widget outputs but without their state logs "widget model not found"
    for each, and Notebook 7 7.6 throws "reading 'schema'" while it loads a document: both happen before
    any cell runs, and neither is this test's business (test_lab.py and test_notebook7.py open notebooks).
    """
    page.wait_for_function("() => /running|done|failed/.test(window.__notebook.phase)",
                           timeout=KERNEL_TIMEOUT_S * 1000)  # fmt: skip
    errors.clear()


def _run_new_cell(page, code: str) -> SimpleNamespace:
    """Add a cell holding `code` at the end of the open notebook, run it; return its locator and what it drew."""
    tag = secrets.token_hex(4)
    page.evaluate(_RUN_NEW_CELL, [code, tag])
    page.wait_for_function("() => /done|failed/.test(window.__cell.phase)", timeout=RUN_ALL_TIMEOUT_S * 1000)
    state = page.evaluate("() => window.__cell")
    assert state["phase"] == "done", state
    return SimpleNamespace(cell=page.locator(f"[data-test-cell='{tag}']"), drawn=state["drawn"])


def _check_live_figure(page, run: SimpleNamespace) -> dict:
    """The buggy loop's cell: drawn live while the loop ran, then whole, marked and summed up."""
    assert run.cell.locator(".js-plotly-plot").count() == 1, "the cell shows no live figure"
    partial = [steps for steps in run.drawn if 0 < steps < STEPS]
    assert partial, f"the figure was not drawn while the loop ran (steps drawn, in order: {run.drawn})"
    assert run.drawn[-1] == STEPS, f"the finished figure does not hold every step: {run.drawn}"
    shown = run.cell.evaluate(_FIGURE)
    counts = {trace["name"]: trace["finite"] for trace in shown["traces"]}
    assert counts == {"your loop: each step": STEPS, "your loop: epoch mean": EPOCHS}, counts
    assert shown["bands"] == EPOCHS and shown["bandsDrawn"] >= EPOCHS, shown
    assert {"text": "weights_reset", "visible": True} in shown["annotations"], shown["annotations"]
    assert all(entry["visible"] for entry in shown["legend"]) and len(shown["legend"]) == 2, shown["legend"]
    assert "weights_reset" in shown["title"], shown["title"]
    title, y_title = shown["titles"]
    overlap = min(title["right"], y_title["right"]) > max(title["left"], y_title["left"]) and min(
        title["bottom"], y_title["bottom"]) > max(title["top"], y_title["top"])  # fmt: skip
    assert not overlap, f"the y axis title runs into the figure's title: {shown['titles']}"
    summary = run.cell.locator(f'.jp-OutputArea-output[data-mime-type="{STDOUT}"]').inner_text()
    assert summary.startswith(f"Watched {EPOCHS} epochs, {STEPS} optimizer steps.") and "weights_reset" in summary, (
        summary
    )
    return shown


@pytest.fixture(scope="module")
def lab_notebook(browser, lab):
    """Notebook 12 in JupyterLab, all its cells run, with the console errors since they started running."""
    page = browser.new_page(viewport=VIEWPORT)
    errors = _watch_console(page)
    _never_save(page, lab)
    try:
        start_notebook(page, lab, NOTEBOOK)
        _from_the_first_cell(page, errors)
        finish_notebook(page, NOTEBOOK)
        yield SimpleNamespace(page=page, errors=errors)
    finally:
        page.close()
        shut_down_kernels(lab, NOTEBOOK)


def test_watch_draws_the_buggy_loop_live_in_lab(lab_notebook):
    page = lab_notebook.page
    assert error_outputs(page) == []
    run = _run_new_cell(page, BUGGY_LOOP)
    _check_live_figure(page, run)
    assert error_outputs(page) == []
    assert lab_notebook.errors == []
    assert log_console(page) == "", "JupyterLab's log console received something while the loop was watched"
    IMAGES.mkdir(parents=True, exist_ok=True)
    figure = run.cell.locator(".js-plotly-plot .svg-container")  # the figure's own size: its output is wider
    figure.scroll_into_view_if_needed()
    figure.screenshot(path=IMAGES / "watch.png", animations="disabled")


_SWITCHBOARD = """() => {
    // the switchboard (an explorer whose controls are checkboxes): its status, findings, and figure title
    const root = Array.from(document.querySelectorAll('.epochviz-explorer'))
        .find(node => node.querySelector('input[type=checkbox]'));
    if (!root) return null;
    root.setAttribute('data-test-switchboard', '');
    const plot = root.querySelector('.js-plotly-plot');
    return {status: root.querySelector('.epochviz-status').textContent.trim(),
            findings: Array.from(root.querySelectorAll('.epochviz-note li')).map(item => item.textContent.trim()),
            title: plot && plot._fullLayout ? plot._fullLayout.title.text : '',
            steps: plot && plot._fullData && plot._fullData.length ? (plot._fullData[0].y || []).length : 0};
}"""


def _switchboard_shows(page, status: str, finding: str | None, title: str) -> dict:
    """Wait until the switchboard's status starts with `status`, its findings are just `finding`, its title `title`."""
    page.wait_for_function(
        f"""([status, finding, title]) => {{
            const shown = ({_SWITCHBOARD})();
            return shown && shown.status.startsWith(status) && shown.title === title && shown.steps > 0 &&
                   (finding === null ? shown.findings.length === 0 :
                    shown.findings.length === 1 && shown.findings[0].startsWith(finding + ':'));
        }}""",
        arg=[status, finding, title],
        timeout=REDRAW_TIMEOUT_S * 1000,
    )
    return page.evaluate(_SWITCHBOARD)


def test_switchboard_follows_a_ticked_mistake_in_lab(lab_notebook):
    page = lab_notebook.page
    clean = "Watched 10 epochs, 100 optimizer steps. Nothing was reset"
    _switchboard_shows(page, clean, None, "nothing reset so far")
    mistake = page.locator("[data-test-switchboard]").get_by_role("checkbox", name="forget optimizer.zero_grad()")
    mistake.check()
    ticked = _switchboard_shows(page, f"Watched {EPOCHS} epochs, {STEPS} optimizer steps. Found 1 problem",
                                "grads_not_zeroed", "found: grads_not_zeroed")  # fmt: skip
    assert ticked["steps"] == STEPS, ticked
    mistake.uncheck()
    _switchboard_shows(page, clean, None, "nothing reset so far")
    assert error_outputs(page) == []
    assert lab_notebook.errors == []
    assert log_console(page) == "", "JupyterLab's log console received something while the switchboard was used"


def test_watch_draws_the_buggy_loop_live_in_notebook7(browser, notebook7):
    page = browser.new_page(viewport=VIEWPORT)
    errors = _watch_console(page)
    _never_save(page, notebook7)
    page.set_default_timeout((KERNEL_TIMEOUT_S + RUN_ALL_TIMEOUT_S) * 1000)
    try:
        page.goto(notebook7.address(f"/notebooks/{NOTEBOOK}"))
        page.evaluate(f"(name) => {{ ({NOTEBOOK7_RUN_ALL})(name); }}", NOTEBOOK)  # not awaited: see the errors
        _from_the_first_cell(page, errors)
        page.wait_for_function("() => /done|failed/.test(window.__notebook.phase)")
        state = page.evaluate("() => window.__notebook")
        assert state["phase"] == "done", f"{NOTEBOOK} in Notebook 7: {state}\n{notebook7.log_tail()}"
        page.set_default_timeout(30_000)
        _check_live_figure(page, _run_new_cell(page, BUGGY_LOOP))
        assert error_outputs(page) == []
        assert errors == []
    finally:
        page.close()
        shut_down_kernels(notebook7, NOTEBOOK)


_LIVE_FIGURES = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
    .filter(plot => !plot.closest('.epochviz-explorer') && plot._fullData)
    .map(plot => ({steps: plot._fullData.length ? (plot._fullData[0].y || []).length : 0,
                   title: plot._fullLayout.title.text}))"""


def test_notebook_12_is_presented_with_its_live_figures_in_voila(browser, voila):
    """Voilà shows a page after the notebook ran: the live figures must show where each loop ended."""
    source = nbformat.read(NOTEBOOKS / NOTEBOOK, as_version=4)
    watched = sum("ev.watch()" in cell.source for cell in source.cells if cell.cell_type == "code")
    assert watched >= 1, f"{NOTEBOOK} has no cell with ev.watch()"
    page = browser.new_page(viewport=VIEWPORT)
    errors = _watch_console(page)
    try:
        page.goto(voila.address(f"/voila/render/{NOTEBOOK}"), timeout=KERNEL_TIMEOUT_S * 1000)
        wait_for_figures(page, at_least=watched + 1, timeout_s=KERNEL_TIMEOUT_S)  # the watched loops, the switchboard
        figures = page.evaluate(_LIVE_FIGURES)
        assert len(figures) == watched, figures
        assert all(figure["steps"] > 0 for figure in figures), f"a live figure is empty in Voilà: {figures}"
        verdicts = [figure["title"] for figure in figures]
        assert all(title == "nothing reset so far" or title.startswith("found: ") for title in verdicts), verdicts
        assert error_outputs(page) == []
        # Voilà's page links Font Awesome from a CDN (its icons are bundled too): only that may fail offline
        assert [text for text in errors if not text.startswith("Failed to load resource")] == []
    finally:
        page.close()
