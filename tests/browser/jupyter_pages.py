"""Driving JupyterLab and Voilà pages the way a learner does, and reading what they show.

Everything waits on a condition (a selector, a kernel state, a redrawn curve), never on a fixed
sleep: the machine running the tests may be busy with other notebooks.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Playwright may be missing: the `browser` fixture then skips, and this module still imports
    from playwright.sync_api import Locator, Page

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"

KERNEL_TIMEOUT_S = 180  # a kernel's start (torch import included) on a busy 2-core machine
RUN_ALL_TIMEOUT_S = 300  # the slowest notebook, top to bottom, with a busy machine
REDRAW_TIMEOUT_S = 60  # a slider change to its finished redraw (a retrain included)


def notebooks() -> list[Path]:
    """Every teaching notebook present now (they are written one by one; the tests follow)."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


STDERR = "application/vnd.jupyter.stderr"  # error outputs and stderr streams both render with this mime type

# --- JupyterLab: open a notebook, run it, read its outputs --------------------------------------------------------

# Runs in the page, unawaited, so that several notebooks can load and run at once; it reports in
# window.__notebook: {phase: loading → kernel → running → done | failed, error}.
_RUN_NOTEBOOK = """(name) => {
    const state = window.__notebook = {phase: 'loading', error: null};
    const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
    const current = () => window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const idle = panel => {
        const session = panel.sessionContext.session;
        return session && session.kernel && session.kernel.status === 'idle';
    };
    (async () => {
        while (!(current() && current().context && current().context.path === name)) await sleep(200);
        const app = window.jupyterapp, panel = current();
        state.phase = 'kernel';
        await panel.context.ready;
        while (!idle(panel)) {
            const accept = document.querySelector('.jp-Dialog .jp-mod-accept');
            if (accept) accept.click();  // "Select Kernel": take the one proposed (the notebook's python3)
            await sleep(200);
        }
        app.shell.collapseLeft();  // the notebook gets the whole width
        state.phase = 'running';
        await app.commands.execute('notebook:run-all-cells');  // Run ▸ Run All Cells; resolves when all ran
        while (!idle(panel)) await sleep(100);
        state.phase = 'done';
    })().catch(error => { state.phase = 'failed'; state.error = String(error); });
}"""

_ERRORS = """() => {
    const shown = [];
    for (const node of document.querySelectorAll(
            '.jp-OutputArea-output[data-mime-type="STDERR"], .jp-OutputArea-output.jp-mod-error')) {
        shown.push(node.textContent.trim().slice(0, 400));
    }
    for (const node of document.querySelectorAll('.jp-OutputArea-output, .widget-html-content')) {
        const text = node.textContent;
        if (/Error displaying widget|Failed to load model class|Failed to load view class/.test(text)) {
            shown.push(text.trim().slice(0, 400));
        }
    }
    // an explorer shows a failed computation in its own red box (epochviz/widgets/base.py, _show_error)
    for (const node of document.querySelectorAll('.epochviz-error')) {
        shown.push(node.textContent.trim().slice(0, 400));
    }
    return shown;
}""".replace("STDERR", STDERR)

_FIGURES = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).filter(
    plot => plot.querySelector('.main-svg') && plot._fullData && plot._fullData.length > 0).length"""


def start_notebook(page: Page, lab, name: str) -> None:
    """Open notebooks/`name` in JupyterLab and have it run all its cells, without waiting for any of it.

    Each page gets a workspace of its own: JupyterLab would otherwise restore the notebooks that
    earlier pages opened, and one of them could end up in front.
    """
    page.goto(lab.address(f"/lab/workspaces/{secrets.token_hex(6)}/tree/{name}"))
    page.evaluate(_RUN_NOTEBOOK, name)


def finish_notebook(page: Page, name: str) -> None:
    """Wait until the notebook started by `start_notebook` has run its last cell."""
    try:
        page.wait_for_function("() => /done|failed/.test(window.__notebook.phase)",
                               timeout=(KERNEL_TIMEOUT_S + RUN_ALL_TIMEOUT_S) * 1000)  # fmt: skip
    except Exception as timeout:
        raise AssertionError(f"{name} did not finish: {page.evaluate('() => window.__notebook')}") from timeout
    state = page.evaluate("() => window.__notebook")
    assert state["phase"] == "done", f"{name}: {state}"


def error_outputs(page: Page) -> list[str]:
    """The text of every error a learner would see: tracebacks, stderr, widgets that failed to show."""
    return page.evaluate(_ERRORS)


def log_console(page: Page) -> str:
    """What JupyterLab's log-console status item says: empty while the log holds nothing.

    Errors raised outside any cell (in a widget's callback, say) land in that log, with only a
    count in the status bar to show for them; a test that uses explorers must see it empty.
    """
    return page.evaluate("() => document.querySelector('.jp-LogConsoleStatusItem')?.innerText ?? ''").strip()


def wait_for_figures(page: Page, at_least: int = 1, timeout_s: float = 60) -> int:
    """Wait until `at_least` Plotly figures are drawn with data; return how many there are."""
    page.wait_for_function(f"() => ({_FIGURES})() >= {at_least}", timeout=timeout_s * 1000)
    return page.evaluate(_FIGURES)


def shut_down_kernels(server, name: str) -> None:
    """End the kernel sessions of notebook `name`, so the next notebook has the CPU to itself."""
    for session in server.api("GET", "/api/sessions"):
        if Path(session.get("path", "")).name == name:
            server.api("DELETE", f"/api/sessions/{session['id']}")


# --- the explorer: find it, move its controls, time its redraws ---------------------------------------------------

_MARK_EXPLORER = """() => {
    // the first main explorer (epochviz/widgets/base.py gives it these classes), once drawn
    for (const root of document.querySelectorAll('.epochviz-explorer')) {
        const status = root.querySelector('.epochviz-status');
        if (!root.querySelector('.js-plotly-plot') || !status) continue;
        if (!/^epoch \\d+ \\/ \\d+ ·/.test(status.textContent.trim())) continue;
        root.setAttribute('data-test-explorer', '');
        status.setAttribute('data-test-status', '');
        return true;
    }
    return false;
}"""

_READ = """const read = () => {
    const root = document.querySelector('[data-test-explorer]');
    const plot = root.querySelector('.js-plotly-plot');
    return {
        status: root.querySelector('[data-test-status]').textContent.trim(),
        curve: Array.from(plot.querySelectorAll('path.js-line')).map(path => path.getAttribute('d') || '').join('|'),
    };
};"""

_PROBE = (
    """() => {
    READ
    const complete = /^epoch (\\d+) \\/ \\1 ·/;  // a finished draw: "epoch 12 / 12 · …"
    const before = read();
    const probe = {start: null, first: null, final: null, sawTraining: false, before: before, after: null};
    const check = () => {
        if (probe.final !== null) return;
        const now = read();
        probe.sawTraining = probe.sawTraining || now.status.startsWith('training');
        const redrawn = now.curve !== before.curve;
        if (redrawn && probe.first === null) probe.first = performance.now();
        const done = probe.sawTraining || now.status !== before.status;
        if (redrawn && done && complete.test(now.status)) {
            probe.final = performance.now();
            probe.after = now;
            observer.disconnect();
        }
    };
    const observer = new MutationObserver(check);
    observer.observe(document.querySelector('[data-test-explorer]'),
                     {subtree: true, childList: true, attributes: true, characterData: true});
    const started = () => { if (probe.start === null) probe.start = performance.now(); };
    document.addEventListener('keydown', started, {capture: true, once: true});
    document.addEventListener('click', started, {capture: true, once: true});
    window.__probe = probe;
}"""
).replace("READ", _READ)


@dataclass
class Redraw:
    """One control change, timed in the page: from the key press or click to the curve redrawn."""

    first_ms: float  # the first change of the drawn curve (a retrain draws partial results first)
    final_ms: float  # the finished curve, its status line updated
    trained: bool  # whether it went through "training…" (else it was drawn from the cache)
    status_before: str
    status_after: str
    curve_before: str = field(repr=False)
    curve_after: str = field(repr=False)


def find_explorer(page: Page, timeout_s: float = 60) -> Locator:
    """The main explorer (`ev.explorer`) on the page, once its figure and status line are drawn."""
    page.wait_for_function(_MARK_EXPLORER, timeout=timeout_s * 1000)
    return page.locator("[data-test-explorer]")


def explorer_state(page: Page) -> dict:
    return page.evaluate(f"() => {{ {_READ} return read(); }}")


def slider_handle(explorer: Locator, label: str) -> Locator:
    slider = explorer.locator(".widget-slider").filter(has=explorer.page.locator(".widget-label", has_text=label))
    return slider.locator(".noUi-handle").first


def redraw(page: Page, change) -> Redraw:
    """Make `change()` (a key press or a click) and wait for the explorer to finish redrawing.

    Finished means: the drawn curve changed, the status line shows a complete run, and either
    that line changed (a view change) or the explorer went through "training…" (a retrain).
    """
    page.evaluate(_PROBE)
    change()
    page.wait_for_function("() => window.__probe.final !== null", timeout=REDRAW_TIMEOUT_S * 1000)
    probe = page.evaluate("() => window.__probe")
    return Redraw(
        first_ms=probe["first"] - probe["start"], final_ms=probe["final"] - probe["start"],
        trained=probe["sawTraining"], status_before=probe["before"]["status"], status_after=probe["after"]["status"],
        curve_before=probe["before"]["curve"], curve_after=probe["after"]["curve"],
    )  # fmt: skip


def press(handle: Locator, key: str):
    """A change that focuses a slider's handle and presses `key` (ArrowLeft, ArrowRight…)."""

    def change() -> None:
        handle.focus()
        handle.press(key)

    return change


def traces(page: Page) -> list[dict]:
    """The explorer figure's traces as Plotly holds them: name, legend group, x and y."""
    return page.evaluate("""() => document.querySelector('[data-test-explorer] .js-plotly-plot')._fullData.map(
        trace => ({name: trace.name, group: trace.legendgroup || '',
                   x: Array.from(trace.x || [], Number), y: Array.from(trace.y || [], Number)}))""")


# --- any Plotly figure: where a data point is on screen, and what its axes show --------------------------------

_POINT = """(plot) => {
    // somewhere Plotly shows a hover label, in page pixels: the middle point of the first line, or the
    // middle of the first heatmap or contour (Plotly's axes map data to pixels)
    const layout = plot._fullLayout;
    if (layout.hovermode === false) return null;
    const box = plot.getBoundingClientRect();
    for (const trace of plot._fullData) {
        if (trace.visible !== true || trace.hoverinfo === 'skip' || !trace.xaxis) continue;
        const xaxis = layout[trace.xaxis.replace('x', 'xaxis')], yaxis = layout[trace.yaxis.replace('y', 'yaxis')];
        let x = null, y = null;
        if (trace.type === 'scatter' && trace.x && trace.x.length >= 3) {
            const i = Math.floor(trace.x.length / 2);
            x = xaxis.c2p(xaxis.d2c(trace.x[i]));
            y = yaxis.c2p(yaxis.d2c(trace.y[i]));
        } else if (trace.type === 'heatmap' || trace.type === 'contour') {
            x = xaxis._length / 2;
            y = yaxis._length / 2;
        }
        if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
        return {x: box.left + xaxis._offset + x, y: box.top + yaxis._offset + y,
                zoomable: layout.dragmode === 'zoom' && !xaxis.fixedrange, axis: xaxis._name,
                left: box.left + xaxis._offset, width: xaxis._length, range: xaxis.range.slice()};
    }
    return null;
}"""


def hover_and_zoom(page: Page, plot: Locator) -> dict:
    """Hover the middle of a line (or heatmap) in `plot`, then drag across it; report what Plotly showed.

    Returns {"hover": the hover label's text, "zoomed": whether the x range changed (None: not zoomable)}.
    """
    plot.scroll_into_view_if_needed()
    point = plot.evaluate(_POINT)
    if point is None:
        return {"hover": None, "zoomed": None}
    page.mouse.move(point["x"], point["y"])
    label = plot.locator(".hoverlayer text")
    label.first.wait_for(timeout=10_000)
    hover = " ".join(label.all_text_contents())
    if not point["zoomable"]:
        return {"hover": hover, "zoomed": None}
    page.mouse.move(point["left"] + 0.3 * point["width"], point["y"])
    page.mouse.down()
    page.mouse.move(point["left"] + 0.6 * point["width"], point["y"], steps=8)
    page.mouse.up()
    changed = "([plot, axis, before]) => plot._fullLayout[axis].range.some((end, i) => end !== before[i])"
    try:
        page.wait_for_function(changed, arg=[plot.element_handle(), point["axis"], point["range"]], timeout=10_000)
    except Exception:
        return {"hover": hover, "zoomed": False}
    return {"hover": hover, "zoomed": True}


# --- the explorer on a projector: what is on screen, and the boundary beside the curve ----------------------------

_BOUNDARY = """() => {
    const plot = document.querySelector('[data-test-explorer] .epochviz-boundary .js-plotly-plot');
    if (!plot || !plot._fullData || !plot._fullData.length) return null;
    return {title: plot._fullLayout.title.text, z: JSON.stringify(plot._fullData[0].z).length + ':' +
            JSON.stringify(plot._fullData[0].z).slice(0, 2000)};
}"""

_ON_SCREEN = """() => {
    // the explorer's controls and every figure in it, as boxes in the viewport (CSS pixels)
    const root = document.querySelector('[data-test-explorer]');
    const box = node => { const r = node.getBoundingClientRect();
                          return {left: r.left, top: r.top, right: r.right, bottom: r.bottom}; };
    return {viewport: {width: window.innerWidth, height: window.innerHeight},
            controls: Array.from(root.querySelectorAll('.widget-slider, .widget-dropdown, .widget-toggle-buttons'))
                .map(box),
            // the loss curve (the boundary panel may sit below it, a scroll away)
            figures: Array.from(root.querySelectorAll('.js-plotly-plot .main-svg:first-child'))
                .filter(svg => !svg.closest('.epochviz-boundary')).map(box),
            // a figure drawn wider than the box that holds it is cut off (or hidden under its neighbour)
            clipped: Array.from(root.querySelectorAll('.js-plotly-plot')).filter(plot => {
                const svg = plot.querySelector('.main-svg'), holder = plot.closest('.widget-box') || plot.parentElement;
                return svg && svg.getBoundingClientRect().right > holder.getBoundingClientRect().right + 1;
            }).map(plot => plot.closest('.epochviz-boundary') ? 'boundary' : 'curve')};
}"""


def boundary_state(page: Page) -> dict | None:
    """The boundary panel's title and (the start of) its z, or None when the panel shows nothing."""
    return page.evaluate(_BOUNDARY)


def outside_viewport(page: Page, explorer: Locator) -> list[str]:
    """What of the explorer's controls and figures lies outside the viewport, with the explorer scrolled to its top."""
    explorer.evaluate("root => root.scrollIntoView({block: 'start'})")
    shown = page.evaluate(_ON_SCREEN)
    width, height = shown["viewport"]["width"], shown["viewport"]["height"]
    return [f"{kind} is drawn wider than its box and cut off" for kind in shown["clipped"]] + [
        f"{kind} {i}: {box}"
        for kind in ("controls", "figures")
        for i, box in enumerate(shown[kind])
        if box["left"] < -1 or box["top"] < -1 or box["right"] > width + 1 or box["bottom"] > height + 1
    ]


# Notebook 7: waits for the notebook's kernel, runs Run ▸ Run All Cells and waits until the kernel is idle again;
# reports in window.__notebook: {phase: loading → kernel → running → done | failed, error}.
NOTEBOOK7_RUN_ALL = """async (name) => {
    const state = window.__notebook = {phase: 'loading', error: null};
    const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
    const current = () => window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const idle = panel => {
        const session = panel.sessionContext.session;
        return session && session.kernel && session.kernel.status === 'idle';
    };
    try {
        while (!(current() && current().context && current().context.path === name)) await sleep(200);
        const app = window.jupyterapp, panel = current();
        state.phase = 'kernel';
        await panel.context.ready;
        while (!idle(panel)) {
            const accept = document.querySelector('.jp-Dialog .jp-mod-accept');
            if (accept) accept.click();  // "Select Kernel": take the one proposed (the notebook's python3)
            await sleep(200);
        }
        state.phase = 'running';
        await app.commands.execute('notebook:run-all-cells');
        while (!idle(panel)) await sleep(100);
        state.phase = 'done';
    } catch (error) {
        state.phase = 'failed';
        state.error = String(error);
    }
    return state;
}"""
