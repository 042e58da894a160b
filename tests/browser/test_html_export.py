"""`make html`: every notebook as a page that opens from disk, with no kernel and no network, figures alive."""

from __future__ import annotations

import shutil
import subprocess
import sys
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest
from jupyter_pages import ROOT, hover_and_zoom, notebooks, wait_for_figures

import epochviz as ev

pytestmark = pytest.mark.browser

EXPORT = ROOT / "tools" / "export_html.py"
PLOTLY = "application/vnd.plotly.v1+json"


def _export(*arguments: str) -> None:
    done = subprocess.run([sys.executable, str(EXPORT), *arguments], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def site(browser, tmp_path_factory):
    """Every notebook exported from its saved outputs (`make html` also runs them first, for the snapshots).

    The notebooks are copied first: each page is compared with the notebook it was made from. (It asks
    for `browser` only so that nothing is exported where the pages cannot be checked.)
    """
    out = tmp_path_factory.mktemp("site")
    copies = [out / path.name for path in notebooks()]
    for path, copy in zip(notebooks(), copies, strict=True):
        shutil.copyfile(path, copy)
    _export("--saved", "--out", str(out), *map(str, copies))
    return out


@pytest.fixture
def offline(browser):
    """A page that may load file:// only; every other request is blocked and recorded, as are console errors."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    blocked, errors = [], []

    def only_files(route) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", only_files)
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield SimpleNamespace(page=page, blocked=blocked, errors=errors)
    page.close()


def _check_offline_page(offline, html, figures: int) -> None:
    page = offline.page
    page.goto(html.as_uri())
    assert wait_for_figures(page, at_least=figures, timeout_s=30) == figures
    plots = page.locator(".js-plotly-plot")
    checked = [hover_and_zoom(page, plots.nth(index)) for index in range(min(figures, 2))]
    assert any(check["hover"] for check in checked), f"no hover label appeared: {checked}"
    assert all(check["zoomed"] is not False for check in checked), f"a zoomable figure did not zoom: {checked}"
    assert offline.blocked == [], "the page tried the network"
    assert offline.errors == []


def test_the_index_lists_every_page(site):
    index = (site / "index.html").read_text()
    for path in site.glob("*.ipynb"):
        assert f'href="{path.stem}.html"' in index
        assert (site / f"{path.stem}.html").exists()


@pytest.mark.parametrize("name", [path.stem for path in notebooks()])
def test_exported_page_works_offline(site, offline, name):
    notebook = nbformat.read(site / f"{name}.ipynb", as_version=4)
    figures = sum(PLOTLY in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", []))
    if figures == 0:
        pytest.skip(f"{name} has no saved figure yet (run `make notebooks`)")
    _check_offline_page(offline, site / f"{name}.html", figures)


def _explorer_page(offline, tmp_path, source: str) -> None:
    """Run a notebook holding an explorer (as `make html` does) and open its page, offline."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(f"import epochviz as ev\n{source}")]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "01_explorer.ipynb")
    _export("--out", str(tmp_path), str(tmp_path / "01_explorer.ipynb"))
    _check_offline_page(offline, tmp_path / "01_explorer.html", figures=1)


def test_the_main_explorer_is_precomputed_and_its_labelled_controls_redraw_what_train_computes(offline, tmp_path):
    _explorer_page(offline, tmp_path, 'ev.explorer("moons", epochs=4)')
    page = offline.page
    assert "Precomputed explorer" in page.inner_text("body") and "make lab" in page.inner_text("body")
    shown = "() => document.querySelector('.epochviz-offline-figure').data.map(trace => trace.y)"
    for reset, batch_size, lr, seed in (("never", 32, 0.1, 0), ("weights", 16, 0.316, 1), ("reinit", 64, 0.0316, 0)):
        for setting, label, value in (("reset", "reset", reset), ("batch_size", "batch size", batch_size),
                                      ("lr", "learning rate", lr), ("seed", "seed", seed)):  # fmt: skip
            page.get_by_label(label, exact=True).select_option(str(value))
            assert page.locator(f"[data-setting={setting}]").input_value() == str(value)
        steps, epochs, validation = page.evaluate(shown)
        run = ev.train("moons", epochs=4, reset=reset, batch_size=batch_size, lr=lr, seed=seed)
        np.testing.assert_allclose(steps, run.steps["loss"], rtol=1e-4)
        np.testing.assert_allclose(epochs, run.epochs["train_loss"], rtol=1e-4)
        np.testing.assert_allclose(validation, run.epochs["val_loss"], rtol=1e-4)
    page.get_by_label("epochs").fill("2")  # fewer epochs: the first epochs of the same runs
    steps, epochs, _ = page.evaluate(shown)
    assert len(epochs) == 2 and len(steps) == 2 * 5
    assert "epoch 2 · 5 steps per epoch · 640 samples seen" in page.inner_text(".epochviz-offline-status")
    assert offline.blocked == [] and offline.errors == []


def test_any_other_explorer_is_exported_as_its_note_and_a_snapshot(offline, tmp_path):
    _explorer_page(offline, tmp_path, "ev.widgets.LandscapeExplorer(epochs=3)")
    text = offline.page.inner_text("body")
    assert "an interactive explorer appears here" in text
    assert "snapshot" in text
