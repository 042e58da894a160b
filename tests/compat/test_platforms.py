"""epochviz on the versions a hosted notebook ships (Colab, Kaggle): installed over them, it replaces nothing and works.

`make compat` runs this file in one environment per platform: torch first, then the platform's
versions (tools/compat/<platform>.txt), then epochviz (`pip install -e .`), and EPOCHVIZ_PLATFORM
names the list. Only the Python side is tested: the kernel builds every figure and every explorer,
and each explorer hands the front end a displayable widget. Whether the platform's page then
draws it needs that platform's browser side, which cannot be run here.
"""

from __future__ import annotations

import os
import sys
import types
from importlib.metadata import version
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
import pytest

import epochviz as ev
from epochviz import plots, widgets

PLATFORM = os.environ.get("EPOCHVIZ_PLATFORM")
pytestmark = pytest.mark.skipif(PLATFORM is None, reason="run by `make compat`, in a platform's environment")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _pins() -> dict[str, str]:
    lines = Path(PLATFORM).read_text().splitlines()
    pins = dict(line.split("#")[0].strip().split("==") for line in lines if line.split("#")[0].strip())
    return {"torch": "2.13.0", **pins}


def test_installing_epochviz_replaced_none_of_the_platforms_packages():
    installed = {name: version(name).split("+")[0] for name in _pins()}  # torch's "+cpu" is the build, not the version
    assert installed == _pins()


@pytest.fixture(scope="module")
def runs() -> dict:
    moons = ev.train("moons", epochs=3, seed=0)
    return {
        "moons": moons,
        "line": ev.train("line", model="linear", epochs=3, lr=0.1, track_weights=True, seed=0),
        "windows": ev.sliding_windows(moons),
        "folds": ev.cross_validate(ev.digits(n=120), k=2, epochs=2, batch_size=16),
        "footprints": [ev.footprint("mlp", "moons", batch_size) for batch_size in (8, 64)],
    }


# every figure in ev.plots, from the runs above (the other names there return arrays, a dict or a class)
FIGURES = {
    "loss_curves": lambda r: plots.loss_curves(r["moons"]),
    "weights_over_epochs": lambda r: plots.weights_over_epochs(r["moons"]),
    "decision_boundary": lambda r: plots.decision_boundary(r["moons"], resolution=20),
    "sliding_epochs": lambda r: plots.sliding_epochs(r["windows"], r["moons"]),
    "cross_validation": lambda r: plots.cross_validation(r["folds"]),
    "loss_landscape": lambda r: plots.loss_landscape(r["line"], resolution=20),
    "memory_bars": lambda r: plots.memory_bars(r["footprints"], budget_mb=1.0),
    "sample_orders": lambda r: plots.sample_orders(r["moons"]),
    "reported_loss": lambda r: plots.reported_loss(r["moons"]),
}
NOT_FIGURES = {"Bowl", "decimate", "decision_surface", "running_average", "to_html"}


def test_every_figure_of_ev_plots_is_listed_here():
    assert set(plots.__all__) == set(FIGURES) | NOT_FIGURES


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_builds_and_becomes_a_page(name, runs, tmp_path):
    figure = FIGURES[name](runs)  # building it checks every property against this plotly's schema
    assert isinstance(figure, go.Figure) and figure.data
    assert [trace.type for trace in pio.from_json(figure.to_json()).data] == [trace.type for trace in figure.data]
    page = plots.to_html(figure, tmp_path / f"{name}.html").read_text()
    assert "Plotly.newPlot" in page


EXPLORERS = {
    "explorer": lambda: widgets.explorer("moons", epochs=4),
    "reset_explorer": lambda: widgets.reset_explorer(epochs=3),
    "batch_size_explorer": lambda: widgets.batch_size_explorer(epochs=3),
    "LandscapeExplorer": lambda: widgets.LandscapeExplorer(epochs=4),
    "MemoryExplorer": lambda: widgets.MemoryExplorer(batch_size=64, budget_mb=1.0),
    "CrossValidationExplorer": lambda: widgets.CrossValidationExplorer(k=2, epochs=3),
}


@pytest.mark.parametrize("name", EXPLORERS)
def test_every_explorer_draws_and_hands_the_front_end_a_widget(name):
    explorer = EXPLORERS[name]()
    assert explorer.figure.data, f"{name} drew nothing"
    assert "epochviz-error" not in explorer.message.value, explorer.message.value
    bundle = explorer._repr_mimebundle_()
    assert bundle[WIDGET_VIEW]["model_id"], bundle
    assert "interactive explorer appears here" in bundle["text/html"]


def test_the_main_explorer_redraws_when_a_control_moves():
    explorer = widgets.explorer("moons", epochs=4)
    explorer.controls["epochs"].value = 2  # a view change, drawn from the cache at once
    assert explorer.status.value.startswith("epoch 2 / 2 ·"), explorer.status.value
    explorer.controls["batch_size"].value = 64  # a retrain, on the worker
    explorer.wait()
    assert "5 steps per epoch" in explorer.status.value, explorer.status.value


def test_a_prediction_hands_the_front_end_a_widget():
    bundle = widgets.predict("How many steps make one epoch?", answer=10)._repr_mimebundle_()
    assert bundle[WIDGET_VIEW]["model_id"], bundle


@pytest.fixture
def colab(monkeypatch):
    """A kernel that looks like Colab's: `google.colab.output` is importable; returns what it was asked to do."""
    calls = []
    google, colab, output = (types.ModuleType(name) for name in ("google", "google.colab", "google.colab.output"))
    output.enable_custom_widget_manager = lambda: calls.append("enable_custom_widget_manager")
    google.colab, colab.output = colab, output
    for module in (google, colab, output):
        monkeypatch.setitem(sys.modules, module.__name__, module)
    return calls


def test_in_colab_an_explorer_turns_on_the_custom_widget_manager_its_figure_needs(colab):
    widgets.explorer("moons", epochs=2)
    # plotly 5 (Colab's) leaves it to us; plotly 6+'s FigureWidget is an anywidget, which asks once more itself
    assert colab[:1] == ["enable_custom_widget_manager"], colab
