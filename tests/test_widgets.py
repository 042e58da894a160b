"""Explorers driven from code, as a learner's clicks would drive them."""

import importlib
import random
import threading

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

import epochviz as ev
from epochviz.policies import RESETS
from epochviz.widgets import (
    CrossValidationExplorer,
    LandscapeExplorer,
    MemoryExplorer,
    batch_size_explorer,
    explorer,
    reset_explorer,
)
from epochviz.widgets.base import sync_figure


def _epoch_trace(figure, label=None):
    """The bold per-epoch curve of the run labelled `label` (of the only run, when None)."""
    (trace,) = [
        t for t in figure.data
        if t.name == "train loss per epoch" and t.legendgroup != "ghosts" and label in (None, t.legendgroup)
    ]  # fmt: skip
    return trace


def _expected(values, **fixed):
    run = ev.train(values["dataset"], epochs=values["epochs"], batch_size=values["batch_size"], lr=values["lr"],
                   optimizer=values["optimizer"], reset=values["reset"], shuffle=values["shuffle"],
                   seed=values["seed"], **fixed)  # fmt: skip
    return run


@pytest.fixture
def small():
    return explorer("moons", epochs=10)


def test_it_starts_with_a_complete_figure_and_a_status_line(small):
    assert not small._worker.busy
    np.testing.assert_allclose(_epoch_trace(small.figure).y, small.run.epochs.train_loss)
    assert "epoch 10 / 10 · 10 steps per epoch · 3\u2009200 samples seen" in small.status.value
    assert "N = 320 training samples · batch 32 → <b>10 iterations per epoch</b>" in small.iterations.value


def test_fewer_epochs_is_a_view_change_that_trains_nothing(small, monkeypatch):
    monkeypatch.setattr(small, "compute", lambda *args: pytest.fail("a view change must not train"))
    small.controls["epochs"].value = 5
    assert not small._worker.busy
    assert len(_epoch_trace(small.figure).y) == 5
    small.controls["x"].value = "samples"
    assert list(_epoch_trace(small.figure).x) == [320, 640, 960, 1280, 1600]


def test_a_new_batch_size_changes_the_steps_per_epoch_not_the_samples(small):
    small.controls["batch_size"].value = 64
    small.wait()
    assert "5 steps per epoch · 3\u2009200 samples seen" in small.status.value
    assert "5 iterations per epoch" in small.iterations.value
    steps = next(t for t in small.figure.data if t.name == "each batch")
    assert len(steps.y) == 50


def test_train_more_continues_the_same_run_from_where_it_ended(small):
    before = small.run
    small.train_more()
    small.wait()
    assert small.controls["epochs"].value == 15 and small.run.completed_epochs == 15
    np.testing.assert_array_equal(small.run.params(11, "start"), small.run.params(10, "end"))
    np.testing.assert_array_equal(small.run.steps.loss[: len(before.steps)], before.steps.loss)


def test_start_over_retraces_the_same_path_and_new_seed_leaves_a_ghost(small):
    losses = small.run.epochs.train_loss.to_numpy()
    small.start_over()
    small.wait()
    np.testing.assert_array_equal(small.run.epochs.train_loss, losses)
    small.new_seed()
    small.wait()
    assert small.controls["seed"].value == 1 and not np.array_equal(small.run.epochs.train_loss, losses)
    ghosts = [t for t in small.figure.data if t.name.startswith("before: seed 0")]
    assert len(ghosts) == 1 and ghosts[0].opacity < 1
    np.testing.assert_allclose(ghosts[0].y, losses)
    small.clear_ghosts()
    assert not [t for t in small.figure.data if t.name.startswith("before")]


def test_weights_reset_draws_the_saw_tooth(small):
    small.controls["reset"].value = "weights"
    small.wait()
    steps = small.run.steps
    first_batches = steps[steps.batch == 1].loss.to_numpy()
    last_batches = steps[steps.batch == steps.batch.max()].loss.to_numpy()
    assert (first_batches[1:] > last_batches[:-1] + 0.02).all(), "each epoch should jump back up"
    assert small.run.config.reset == "weights"


def test_compare_overlays_every_reset_mode(small):
    small.controls["compare"].value = True
    small.wait()
    for mode in RESETS:
        assert len(_epoch_trace(small.figure, f"reset: {mode}").y) == 10


def _boundary(explorer):
    """The boundary panel's heatmap (its z as an array) and its title."""
    heatmap = explorer.panel.figure.data[0]
    return heatmap, np.array(heatmap.z, dtype=float), explorer.panel.figure.layout.title.text


def test_the_boundary_beside_the_curve_follows_the_epochs_slider_in_place_without_training(small, monkeypatch):
    heatmap, after_10, title = _boundary(small)
    assert small.panel.box.layout.display != "none" and "after epoch 10 · reset: never" in title
    monkeypatch.setattr(small, "compute", lambda *args: pytest.fail("a view change must not train"))
    small.controls["epochs"].value = 4
    moved, after_4, title = _boundary(small)
    assert moved is heatmap and "after epoch 4" in title  # the same trace, redrawn in place
    expected = ev.plots.decision_surface(small.run, 4, resolution=after_4.shape[0])
    np.testing.assert_allclose(after_4, expected["z"], atol=5e-4)  # the colours are sent to 3 decimals
    assert np.abs(after_4 - after_10).max() > 0.1  # epoch 4's boundary is not epoch 10's
    np.testing.assert_array_equal(np.array(heatmap.customdata), expected["customdata"])


def test_in_compare_mode_the_boundary_is_the_selected_reset_modes_and_says_so():
    compare = reset_explorer(epochs=3)
    compare.controls["reset"].value = "weights"
    _, z, title = _boundary(compare)
    weights = compare._shown[1]["weights"]
    assert "reset: weights" in title and compare.run.config.reset == "weights"
    np.testing.assert_allclose(z, ev.plots.decision_surface(weights, 3, resolution=z.shape[0])["z"], atol=5e-4)


def test_the_boundary_is_absent_for_data_without_classes_on_a_plane(small):
    assert explorer("line", epochs=3).panel.box.layout.display == "none"
    small.controls["dataset"].value = "line"
    small.wait()
    assert small.panel.box.layout.display == "none" and "epoch 10 / 10" in small.status.value
    small.controls["dataset"].value = "circles"
    small.wait()
    assert small.panel.box.layout.display != "none"
    assert len(small.panel.figure.data[1].x) + len(small.panel.figure.data[2].x) == 320  # circles' training samples


def test_train_more_in_compare_mode_continues_every_mode_and_trains_only_the_new_epochs(monkeypatch):
    explorer_module = importlib.import_module("epochviz.widgets.explorer")  # the module, not the function `explorer`
    widget = reset_explorer(epochs=4)
    before = {mode: np.array(_epoch_trace(widget.figure, f"reset: {mode}").y) for mode in RESETS}
    trained = dict.fromkeys(RESETS, 0)  # epochs trained per mode from now on
    real_train, real_resume = explorer_module.train, explorer_module.resume

    def counted_train(data, **settings):
        trained[settings["reset"]] += settings["epochs"]
        return real_train(data, **settings)

    def counted_resume(run, epochs, **options):
        trained[run.config.reset] += epochs - run.completed_epochs
        return real_resume(run, epochs, **options)

    monkeypatch.setattr(explorer_module, "train", counted_train)
    monkeypatch.setattr(explorer_module, "resume", counted_resume)
    widget.train_more()
    widget.wait()
    assert trained == dict.fromkeys(RESETS, 5)
    for mode in RESETS:
        after = _epoch_trace(widget.figure, f"reset: {mode}").y
        assert len(after) == 9
        np.testing.assert_array_equal(after[:4], before[mode])  # the first 4 epochs are the very same numbers
        straight = real_train("moons", epochs=9, reset=mode, batch_size=32, lr=0.1, shuffle=True, seed=0,
                              val_fraction=0.2)  # fmt: skip
        np.testing.assert_array_equal(after, straight.epochs.train_loss)  # as if it had trained 9 epochs at once
    continued = widget._shown[1]["never"]
    torch.testing.assert_close(continued.params(5, "start"), continued.params(4, "end"), rtol=0, atol=0)


def test_a_diverging_setting_says_so_in_the_widget_and_a_good_one_recovers():
    widget = explorer("line", epochs=5, lr=0.01)
    widget.controls["lr"].value = 10**1.5
    widget.wait()
    assert "became infinite" in widget.message.value and "smaller learning rate" in widget.message.value
    widget.controls["lr"].value = 0.01
    widget.wait()
    assert widget.message.value == "" and not widget.run.diverged


def test_the_top_of_the_learning_rate_slider_says_the_run_blew_up_though_its_loss_stays_finite():
    widget = explorer("moons", epochs=5)
    widget.controls["lr"].value = 10 ** widget.controls["lr"].max  # a log slider: max is the exponent
    widget.wait()
    assert not widget.run.diverged
    assert (
        "blew up without becoming infinite" in widget.message.value
        and "accuracy stayed at chance" in widget.message.value
    )
    assert widget.figure.layout.yaxis.type == "log"
    widget.controls["lr"].value = 0.1
    widget.wait()
    assert widget.message.value == ""


def test_a_longer_ghost_does_not_stretch_the_axis_or_squeeze_the_epoch_labels():
    widget = explorer("moons", epochs=20)
    widget.controls["reset"].value = "weights"  # the 20-epoch "never" curve becomes a ghost
    widget.wait()
    widget.controls["epochs"].value = 6
    widget.wait()
    assert any(trace.legendgroup == "ghosts" for trace in widget.figure.data)
    low, high = widget.figure.layout.xaxis.range
    assert low < 0 < 6 < high < 6.5
    labels = [shape.label.text for shape in widget.figure.layout.shapes if shape.label.text]
    assert labels == [f"epoch {k}" for k in range(1, 7)]


def test_two_hundred_rapid_changes_end_on_the_last_setting_with_no_error_and_no_thread_left():
    widget = explorer("moons", epochs=4)
    rng = random.Random(0)
    choices = {
        "epochs": list(range(1, 9)),
        "batch_size": [value for _, value in widget.controls["batch_size"].options][:7],
        "reset": list(RESETS),
        "lr": [0.01, 0.1, 0.3],
        "optimizer": ["sgd", "momentum", "adam"],
        "shuffle": [True, False],
        "seed": [0, 1, 2],
        "x": ["epoch", "step", "samples", "seconds"],
    }
    for _ in range(200):
        name = rng.choice(list(choices))
        widget.controls[name].value = rng.choice(choices[name])
    widget.wait()
    values = {name: control.value for name, control in widget.controls.items()}
    expected = _expected(values)
    assert widget.message.value == ""
    np.testing.assert_allclose(_epoch_trace(widget.figure).y, expected.epochs.train_loss)
    assert f"epoch {values['epochs']} / {values['epochs']}" in widget.status.value
    assert not [thread for thread in threading.enumerate() if thread.name == "epochviz-worker"]


def test_sync_figure_changes_traces_in_place_when_their_shape_allows():
    widget = go.FigureWidget(go.Figure([go.Scatter(x=[1, 2], y=[1, 2], name="a")]))
    trace = widget.data[0]
    sync_figure(widget, go.Figure([go.Scatter(x=[1, 2, 3], y=[3, 2, 1], name="a")], layout={"title": "t"}))
    assert widget.data[0] is trace and list(trace.y) == [3, 2, 1] and widget.layout.title.text == "t"
    sync_figure(widget, go.Figure([go.Bar(x=[1], y=[1]), go.Scatter(x=[0], y=[0])]))
    assert [t.type for t in widget.data] == ["bar", "scatter"]


def _arrays(value, path=()):
    """Paths of the NumPy arrays inside a figure's plain data."""
    if isinstance(value, np.ndarray):
        return [path]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _arrays(item, (*path, key))]
    if isinstance(value, (list, tuple)):
        return [found for i, item in enumerate(value) for found in _arrays(item, (*path, i))]
    return []


def test_the_browser_can_answer_every_trace_with_a_delta_and_the_kernel_raises_nothing(small):
    """The browser sends back what it redrew differently: a whole list for a list it was sent, but for a NumPy
    array (sent as a typed array) a dict of changed elements ({"0": …}), against which plotly's Python side
    raised "the truth value of an array … is ambiguous" into the log console."""
    small.controls["reset"].value = "weights"  # a redraw in place, with more traces
    small.wait()
    for figure in small.figures():  # the loss curve and the boundary beside it
        assert all(_arrays(trace._props) == [] for trace in figure.data)
        assert _arrays(figure._layout) == []

    def changed(value):  # what the browser answers for a property it was sent
        if isinstance(value, np.ndarray):
            return {"0": 0.5}
        return [0.5] * len(value) if isinstance(value, list) and value and not isinstance(value[0], dict) else []

    for figure in small.figures():
        deltas = [
            {"uid": trace.uid, **{name: changed(value) for name, value in trace._props.items() if len(changed(value))}}
            for trace in figure.data
        ]
        figure._trace_edit_in_process = True
        figure._handler_js2py_traceDeltas(
            {"new": {"trace_deltas": deltas, "trace_edit_id": figure._last_trace_edit_id}}
        )


def test_the_small_explorers_each_show_their_idea():
    resets = reset_explorer(epochs=3)
    assert {t.legendgroup for t in resets.figure.data} == {f"reset: {mode}" for mode in RESETS}
    sizes = batch_size_explorer(epochs=3)
    assert sizes.controls["x"].value == "samples" and list(sizes.shown_controls) == ["batch_size", "epochs", "x"]
    memory = MemoryExplorer(batch_size=4096, budget_mb=1.0)
    assert "out of memory" in memory.status.value and "largest batch that fits" in memory.message.value
    memory.controls["accumulate"].value = 4  # micro-batches of 1024: their activations and the data need 1.05 MB
    memory.wait()
    assert "out of memory" in memory.status.value and "data 0.452 MB" in memory.message.value
    memory.controls["accumulate"].value = 8
    memory.wait()
    assert memory.status.value.startswith("fits: 8 micro-batches")
    landscape = LandscapeExplorer(epochs=10)
    landscape.controls["epochs"].value = 3
    assert not landscape._worker.busy and "after 3 epochs" in landscape.status.value


def test_the_memory_explorer_measures_in_compute_and_only_draws_records(monkeypatch):
    from epochviz import memory
    from epochviz.widgets import memory_explorer

    widget = MemoryExplorer(batch_size=4096, budget_mb=1.0)
    measured = []  # (batch size, on the explorer's worker thread?) for every footprint measured from now on
    real = memory.footprint

    def counted(model, data, batch_size, optimizer="sgd"):
        measured.append((batch_size, threading.current_thread() is not threading.main_thread()))
        return real(model, data, batch_size, optimizer)

    monkeypatch.setattr(memory, "footprint", counted)
    monkeypatch.setattr(memory_explorer, "footprint", counted)
    widget.controls["budget_mb"].value = 10.0  # a view change: every bar and the verdict come from the records
    assert measured == [] and widget.status.value.startswith("fits: the whole batch")
    widget.controls["accumulate"].value = 3  # micro-batches of 1366 samples: measured once, by compute, on the worker
    widget.wait()
    assert measured == [(1366, True)] and widget.status.value.startswith("fits: 3 micro-batches of ≤ 1366")
    assert {"1366", "4096"} <= set(widget.figure.data[0].x)


def test_the_cross_validation_explorer_shows_the_leak():
    widget = CrossValidationExplorer(k=3, epochs=20)  # fewer epochs leave the folds too little time to memorise
    fair, leaky = widget._cache[widget.request().key].values()
    assert leaky.optimism > fair.optimism
    assert "no reset (leaks): validation" in widget.status.value


def test_an_explorer_saved_without_its_kernel_shows_a_note_not_an_error():
    bundle = explorer("moons", epochs=2)._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "interactive explorer appears here" in bundle["text/html"]
    assert bundle["text/plain"] == "RunExplorer: run this notebook to play with it."


def test_a_prediction_reveals_the_measured_answer_beside_the_guess():
    number = ev.widgets.predict("How many steps?", answer=10, unit="steps", explanation="320 / 32.")
    number.guess.value = 10.4
    number.reveal()
    assert "Spot on" in number.verdict.value and "<b>10 steps</b>" in number.verdict.value
    number.guess.value = 20
    number.reveal()
    assert "Not quite" in number.verdict.value
    choice = ev.widgets.predict("Lower?", answer="lower", options=["lower", "higher"])
    choice.reveal()
    assert "Pick an answer first" in choice.verdict.value
    choice.guess.value = "lower"
    choice.reveal()
    assert "Spot on" in choice.verdict.value
    assert "<details>" in choice._repr_mimebundle_()["text/html"]  # folded away where nothing runs
    with pytest.raises(ValueError, match="answer must be one of the options"):
        ev.widgets.predict("?", answer="maybe", options=["yes", "no"])


def test_a_prediction_can_ask_before_anything_is_measured_and_be_told_the_answer_later():
    prediction = ev.widgets.predict("Lower?", options=["lower", "higher"], explanation="It learns.")
    saved = prediction._repr_mimebundle_()["text/html"]
    assert "lower</b>" not in saved and "The cells below measure it" in saved  # the saved page gives nothing away
    prediction.guess.value = "higher"
    prediction.reveal()
    assert "Noted: higher" in prediction.verdict.value and "next cell measures" in prediction.verdict.value
    prediction.measured("lower")  # the run cell measured it: the checked guess is marked at once
    assert "Not quite" in prediction.verdict.value and "measured <b>lower</b>" in prediction.verdict.value
    with pytest.raises(ValueError, match=r"answer must be one of the options \['lower', 'higher'\]; got 'same'"):
        prediction.measured("same")
    assert prediction.answer == "lower"


def test_an_explorer_that_starts_out_of_memory_says_so_and_recovers():
    widget = explorer("moons", epochs=2, batch_size=256, memory_budget_mb=0.05)
    assert "OutOfMemoryError" in widget.message.value and "largest batch that fits" in widget.message.value
    widget.controls["batch_size"].value = 16
    widget.wait()
    assert widget.message.value == "" and widget.run.completed_epochs == 2
    widget.controls["batch_size"].value = 256
    widget.wait()
    assert "OutOfMemoryError" in widget.message.value


def _descendants(widget):
    return [widget, *(found for child in getattr(widget, "children", ()) for found in _descendants(child))]


def test_only_an_explorer_that_fills_its_progress_bar_shows_one(small):
    assert small.progress in _descendants(small.layout())
    landscape = LandscapeExplorer(epochs=3)
    assert landscape.progress not in _descendants(landscape.layout()), "an empty grey bar beside 'after 3 epochs'"
