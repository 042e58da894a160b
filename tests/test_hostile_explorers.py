"""The main explorer under hostile use (issue 26): models with buffers, explorers never freed, train_more(n), no
validation rows."""

import gc
import weakref

import pytest
import torch
from ipywidgets.widgets.widget import _instances
from torch import nn

import epochviz as ev
from epochviz import checks
from epochviz.models import MODELS
from epochviz.widgets import LandscapeExplorer, MemoryExplorer, explorer
from epochviz.widgets.explorer import RunExplorer

EPOCHS = 2  # every run here is tiny: two epochs of moons in batches of 64


def _small(data="moons", **settings) -> RunExplorer:
    widget = explorer(data, **{"epochs": EPOCHS, "batch_size": 64, **settings})
    widget.wait()
    return widget


class WithBuffer(nn.Module):
    """Your own module keeping a buffer (a running mean of its inputs, as batch norm keeps)."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 2)
        self.register_buffer("seen", torch.zeros(2))

    def forward(self, x):
        if self.training:
            self.seen.mul_(0.9).add_(0.1 * x.detach().mean(0))
        return self.layer(x - self.seen)


# --- 6: every built-in model, and your own module with and without buffers --------------------------------------


@pytest.mark.parametrize("model", [*MODELS, "own", "own with buffers"])
def test_the_explorer_works_for_every_model(model):
    model = {"own": nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2)), "own with buffers": WithBuffer()}.get(
        model, model
    )
    widget = _small(model=model)
    assert "epochviz-error" not in widget.message.value, widget.message.value
    assert f"epoch {EPOCHS} / {EPOCHS}" in widget.status.value
    run = widget.run
    if run.cannot_predict_because:  # the panel says why it draws no boundary, in place of the figure
        assert widget.panel.box.children == (widget.panel.note,)
        assert "buffers" in widget.panel.note.value and widget.panel.box.layout.display == "flex"
    else:  # the boundary is drawn, from the run's own predictions
        assert widget.panel.box.children == (widget.panel.figure,) and widget.panel.figure.data
    widget.controls["epochs"].value = 1  # a change redraws without the error coming back
    widget.wait()
    assert "epochviz-error" not in widget.message.value and "epoch 1 / 1" in widget.status.value


def test_only_models_with_buffers_are_refused_a_boundary():
    assert ev.train("moons", epochs=1, model="mlp_batchnorm").cannot_predict_because
    assert ev.train("moons", epochs=1, model=WithBuffer()).cannot_predict_because
    assert ev.train("moons", epochs=1, model="mlp").cannot_predict_because == ""


def test_the_boundary_comes_back_after_a_model_with_buffers():
    widget = _small(model="mlp_batchnorm")
    assert widget.panel.box.children == (widget.panel.note,)
    widget.panel.show(ev.train("moons", epochs=1), "reset: never")
    assert widget.panel.box.children == (widget.panel.figure,) and widget.panel.figure.data


# --- 7: explorers are freed, and close() frees one ------------------------------------------------------------


def _registered() -> int:
    return len(_instances)


def test_dropped_explorers_are_freed():
    gc.collect()
    before = _registered()
    refs = []
    for seed in range(30):  # a class re-running an explorer cell all lesson
        widget = _small(seed=seed)
        widget.buttons["more"].click()  # a button's callback used once
        widget.wait()
        refs.append(weakref.ref(widget))
        del widget
    gc.collect()
    assert [ref() for ref in refs if ref() is not None] == []
    assert _registered() <= before + 5  # their widgets left the registry too


def test_other_explorers_are_freed():
    refs = [weakref.ref(MemoryExplorer("moons")), weakref.ref(LandscapeExplorer())]
    gc.collect()
    assert [ref() for ref in refs if ref() is not None] == []


def test_a_shown_explorer_stays_alive_while_shown():
    widget = _small()
    widget._repr_mimebundle_()
    ref = weakref.ref(widget)
    del widget
    gc.collect()
    assert ref() is not None  # display(explorer(...)) with no name kept: its sliders must still work
    ref().close()


def test_close_frees_an_explorer_and_its_widgets():
    widget = _small()
    widget._repr_mimebundle_()
    parts = [*widget.controls.values(), widget.figure, widget.panel.figure, *widget.buttons.values()]
    widget.close()
    assert all(part.comm is None for part in parts)
    assert widget._cache == {} and widget._ghosts == []
    ref = weakref.ref(widget)
    del widget
    gc.collect()
    assert ref() is None


def test_a_control_moved_after_close_raises_nothing():
    widget = _small()
    widget.close()
    widget.controls["epochs"].value = 1
    widget.controls["dataset"].value = "circles"
    widget.buttons["more"].click()
    widget.wait()
    with pytest.raises(RuntimeError, match="closed"):
        widget.refresh()


def test_a_closed_figure_gives_a_clear_message_not_a_none_error():
    widget = _small()
    widget.figure.close()
    widget.controls["epochs"].value = 1
    widget.wait()
    assert "NoneType" not in widget.message.value
    assert "figure was closed" in widget.message.value and "close()" in widget.message.value


def test_close_stops_a_training_in_flight():
    widget = explorer("moons", epochs=EPOCHS, batch_size=64)
    widget.controls["epochs"].value = 60
    widget.close()
    widget.wait()
    assert widget._cache == {}


# --- 13: train_more(n) is checked at the public edge ----------------------------------------------------------


@pytest.mark.parametrize("n", [0, -5, checks.MAX_EPOCHS])
def test_train_more_refuses_a_number_out_of_range(n):
    widget = _small()
    with pytest.raises(ValueError, match=rf"train_more's epochs .*from 1 to {checks.MAX_EPOCHS - EPOCHS:,}.*got {n}"):
        widget.train_more(n)
    assert widget.controls["epochs"].value == EPOCHS and widget.controls["epochs"].max == 100


@pytest.mark.parametrize("n", [2.5, "5", True, None])
def test_train_more_refuses_what_is_not_a_whole_number(n):
    widget = _small()
    with pytest.raises(TypeError, match=r"train_more's epochs .*must be a whole number"):
        widget.train_more(n)


def test_train_more_up_to_the_limit_is_a_valid_setting():
    widget = _small()
    widget.controls["epochs"].value = 1  # drawn from the cache: nothing trains
    widget.controls["epochs"].unobserve_all()  # only the slider's range is checked here, not a 10 000-epoch run
    widget.train_more(checks.MAX_EPOCHS - 1)
    assert widget.controls["epochs"].value == widget.controls["epochs"].max == checks.MAX_EPOCHS
    with pytest.raises(ValueError, match="already stands at its limit"):
        widget.train_more(1)


# --- 10: no validation rows: the chance level is the training rows', never nan% --------------------------------


def test_at_chance_without_validation_rows_names_the_training_chance():
    widget = _small("circles", lr=1e-4, val_fraction=0.0)
    message = widget.message.value
    assert "never rose above chance" in message and "nan" not in message
    assert "50%" in message and "training samples" in message


def test_chance_accuracy_falls_back_to_the_training_rows():
    run = ev.train("circles", epochs=1, val_fraction=0.0)
    assert run.chance_accuracy() == run.chance_accuracy(run.train_indices) == 0.5
