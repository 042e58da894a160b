"""The figures show what the runs recorded: right traces, right places, right words."""

import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import epochviz as ev
from epochviz.crossval import CrossValidation
from epochviz.plots import (
    Bowl,
    cross_validation,
    decimate,
    loss_curves,
    loss_differences,
    loss_landscape,
    memory_bars,
    sliding_epochs,
    to_html,
    weights_over_epochs,
)
from epochviz.plots.style import MAX_POINTS, PALETTE, RESET_COLOURS, epoch_marks, series_colours
from epochviz.policies import RESETS
from epochviz.run import Run
from epochviz.step_memory import MB, Footprint

MODES = RESETS
X_TITLES = {"epoch": "epoch", "step": "optimizer step", "samples": "training samples seen",
            "seconds": "seconds (wall clock)"}  # fmt: skip


@pytest.fixture(scope="module")
def runs():
    """A 3-epoch run on moons per reset policy: 320 training samples, batches of 32, so 10 steps an epoch."""
    return [ev.train("moons", epochs=3, reset=mode, optimizer="momentum", seed=0) for mode in MODES]


@pytest.fixture(scope="module")
def line_run():
    return ev.train("line", model="linear", epochs=4, lr=0.1, track_weights=True, seed=0)


def _traces(figure, name):
    return [trace for trace in figure.data if trace.name == name]


# --- loss_curves ------------------------------------------------------------------------------


def test_each_run_gets_its_batches_its_epochs_and_its_validation_in_a_stable_order(runs):
    figure = loss_curves(runs)
    assert [(trace.legendgroup, trace.name) for trace in figure.data] == [
        (f"reset: {mode}", name) for mode in MODES for name in ("each batch", "train loss per epoch", "validation loss")
    ]
    for run, (steps, epochs, validation) in zip(runs, np.reshape(figure.data, (len(runs), 3)), strict=True):
        assert len(steps.x) == run.total_steps == 30
        np.testing.assert_array_equal(steps.y, run.steps.loss)
        np.testing.assert_array_equal(epochs.y, run.epochs.train_loss)
        np.testing.assert_array_equal(validation.y, run.epochs.val_loss)
        assert validation.line.dash == "dash" and epochs.line.width >= 2.5 > steps.line.width
    assert [trace.line.color for trace in _traces(figure, "train loss per epoch")] == [RESET_COLOURS[m] for m in MODES]


def test_the_traces_depend_on_the_arguments_not_on_how_long_the_runs_are(runs):
    def shape(figure):
        return [(trace.type, trace.legendgroup, trace.name) for trace in figure.data]

    labelled = dict(zip(MODES, runs, strict=True))
    shorter = {mode: run.first(1) for mode, run in labelled.items()}
    assert shape(loss_curves(labelled, x="step")) == shape(loss_curves(shorter, x="step"))
    assert len(loss_curves(labelled, show_steps=False).data) == 2 * len(runs)
    assert len(loss_curves(labelled, show_steps=False, show_validation=False).data) == len(runs)
    unvalidated = ev.train("moons", epochs=2, val_fraction=0)
    validation = _traces(loss_curves(unvalidated), "validation loss")[0]
    assert len(validation.x) == 0 and validation.showlegend is False


@pytest.mark.parametrize("x", X_TITLES)
def test_every_x_unit_places_steps_epochs_and_boundaries_consistently(runs, x):
    run = runs[0]
    figure = loss_curves(run, x=x)
    steps, epochs, validation = figure.data
    assert figure.layout.xaxis.title.text == X_TITLES[x]
    assert figure.layout.yaxis.title.text == "loss (cross-entropy)"
    expected = {"epoch": [1, 2, 3], "step": [10, 20, 30], "samples": [320, 640, 960], "seconds": run.epochs.elapsed_s}[
        x
    ]
    np.testing.assert_allclose(epochs.x, expected)
    np.testing.assert_array_equal(validation.x, epochs.x)
    bands = figure.layout.shapes
    np.testing.assert_allclose([band.x0 for band in bands], [0, *expected[:-1]])
    np.testing.assert_allclose([band.x1 for band in bands], expected)
    if x != "seconds":  # an epoch's value sits where its last step does (seconds: after validating)
        np.testing.assert_allclose(steps.x[9::10], epochs.x)


def test_in_epoch_units_a_step_sits_at_its_share_of_the_epoch(runs):
    steps = loss_curves(runs[0]).data[0]
    # step 13 is batch 3 of 10 in epoch 2
    assert steps.x[12] == pytest.approx(1 + 3 / 10)
    assert steps.x[0] == pytest.approx(0.1)


def test_an_unknown_x_unit_is_named_with_the_choices(runs):
    with pytest.raises(ValueError, match=r"x must be one of 'epoch', 'step', 'samples', 'seconds'; got 'minutes'"):
        loss_curves(runs, x="minutes")
    with pytest.raises(TypeError, match="Run"):
        loss_curves(["not a run"])


def test_hover_text_says_epoch_batch_samples_and_loss_in_words(runs):
    steps, epochs, _ = loss_curves(runs[0]).data
    assert steps.hovertemplate.startswith("epoch %{customdata[0]}, batch %{customdata[1]} of %{customdata[2]}<br>")
    assert "%{customdata[4]:,} samples seen" in steps.hovertemplate and "loss %{y:.3g}" in steps.hovertemplate
    np.testing.assert_array_equal(steps.customdata[12], [2, 3, 10, 13, 416])  # epoch, batch, of, step, samples
    assert epochs.hovertemplate.startswith("end of epoch %{customdata[0]}<br>%{customdata[1]:,} samples seen")
    assert "train accuracy" in epochs.hovertemplate
    assert (
        "seconds" not in steps.hovertemplate
        and " s into training" in loss_curves(runs[0], x="seconds").data[0].hovertemplate
    )


def test_runs_sharing_a_reset_mode_are_told_apart_by_what_differs():
    small, large = ev.train("moons", epochs=1, batch_size=16), ev.train("moons", epochs=1, batch_size=64)
    figure = loss_curves([small, large], show_steps=False)
    assert [trace.legendgroup for trace in figure.data[::2]] == ["batch_size=16", "batch_size=64"]
    colours = [trace.line.color for trace in figure.data[::2]]
    assert colours[0] == RESET_COLOURS["never"] and colours[1] != colours[0]


def test_a_diverged_run_says_where_it_diverged_on_a_log_axis():
    run = ev.train("line", model="linear", epochs=5, lr=20.0)
    epoch, step = run.diverged_at
    figure = loss_curves(run, x="step")
    (note,) = figure.layout.annotations
    assert note.text == f"diverged at epoch {epoch}, step {step}:<br>loss became non-finite"
    assert note.x == run.total_steps == step - 1  # the arrow points at the last finite loss
    assert note.y == pytest.approx(np.log10(run.steps.loss.iloc[-1]))  # in log10 units, as plotly wants on log axes
    assert figure.layout.yaxis.type == "log"
    assert loss_curves(ev.train("line", model="linear", epochs=2)).layout.yaxis.type != "log"


def test_long_step_traces_are_thinned_but_epoch_values_stay_exact(runs):
    run = _synthetic_run(runs[0], epochs=2, steps_per_epoch=3000)
    steps, epochs, _ = loss_curves(run).data
    assert len(steps.x) <= MAX_POINTS
    assert run.steps.loss.max() in steps.y and run.steps.loss.min() in steps.y
    np.testing.assert_array_equal(epochs.y, run.epochs.train_loss)


def _synthetic_run(like: Run, *, epochs: int, steps_per_epoch: int) -> Run:
    """A Run written through its own recording API: many steps without training them."""
    run = Run(config=replace(like.config, batch_size=1, epochs=epochs), data=like.data,
              train_indices=np.arange(steps_per_epoch), val_indices=like.val_indices)  # fmt: skip
    rng = np.random.default_rng(0)
    for epoch in range(1, epochs + 1):
        losses = rng.uniform(0.2, 0.8, steps_per_epoch)
        losses[steps_per_epoch // 3] = 5.0  # a spike the thinning must keep
        run.add_steps(epoch, np.ones(steps_per_epoch, dtype=int), losses, np.linspace(0, 1, steps_per_epoch) + epoch)
        weights = like.params(1, "start")
        run.add_epoch(train_loss=float(losses.mean()), val_loss=0.5, train_accuracy=0.5, val_accuracy=0.5,
                      start=weights, end=weights, elapsed_s=epoch + 1.0)  # fmt: skip
    return run


# --- epoch marks and decimation ----------------------------------------------------------------


def test_epochs_are_labelled_bands_while_few_and_sparse_lines_when_many():
    bands = epoch_marks(np.arange(4.0))
    assert [band["type"] for band in bands] == ["rect"] * 3
    assert [band["label"]["text"] for band in bands] == ["epoch 1", "epoch 2", "epoch 3"]
    labels = [band.get("label", {}).get("text") for band in epoch_marks(np.arange(13.0))]
    assert labels == [f"epoch {k}" if k % 2 == 0 else None for k in range(1, 13)], "12 narrow bands: every 2nd"
    assert [band["label"]["text"] for band in epoch_marks(np.arange(21.0)) if "label" in band] == [
        "epoch 5", "epoch 10", "epoch 15", "epoch 20",
    ]  # fmt: skip
    assert all("label" not in band for band in epoch_marks(np.arange(4.0), span=100.0)), "too narrow for the range"
    many = epoch_marks(np.arange(101.0))
    assert 0 < len(many) <= 20 and {mark["type"] for mark in many} == {"line"}


def test_decimation_keeps_everything_below_the_threshold():
    values = np.random.default_rng(1).normal(size=MAX_POINTS)
    np.testing.assert_array_equal(decimate(values), np.arange(MAX_POINTS))


@settings(max_examples=40, deadline=None)
@given(length=st.integers(2, 3000), max_points=st.integers(4, 300), seed=st.integers(0, 10))
def test_decimation_is_bounded_ordered_and_keeps_the_ends_and_extremes(length, max_points, seed):
    values = np.random.default_rng(seed).normal(size=length)
    kept = decimate(values, max_points)
    assert len(kept) <= max_points
    assert np.all(np.diff(kept) > 0)
    assert {0, length - 1, int(values.argmax()), int(values.argmin())} <= set(kept.tolist())


# --- loss_differences ------------------------------------------------------------------------


def test_loss_differences_draws_each_run_minus_the_first_step_by_step(runs):
    same = ev.train("moons", epochs=3, reset=MODES[0], optimizer="momentum", seed=0)
    figure = loss_differences({"first": runs[0], "again": same, "other reset": runs[1]})
    again, other = figure.data
    assert again.name == "again" and np.array_equal(again.y, np.zeros(30)), "the very same bits: a flat line at 0"
    np.testing.assert_array_equal(other.y, runs[1].steps.loss.to_numpy() - runs[0].steps.loss.to_numpy())
    assert len(other.x) == 30 and "first" in figure.layout.yaxis.title.text


def test_loss_differences_refuses_runs_that_trained_other_steps(runs):
    with pytest.raises(ValueError, match="at least two"):
        loss_differences([runs[0]])
    longer = ev.train("moons", epochs=4, seed=0)
    with pytest.raises(ValueError, match="'longer' has 40 steps"):
        loss_differences({"first": runs[0], "longer": longer})


# --- weights_over_epochs ------------------------------------------------------------------------


def test_weights_continue_across_epochs_unless_reset(runs):
    figure = weights_over_epochs(runs)
    traces = dict(zip(MODES, figure.data, strict=True))
    never, weights, reinit = traces["never"], traces["weights"], traces["reinit"]
    assert [trace.name for trace in figure.data] == [f"reset: {mode}" for mode in MODES]
    for trace in figure.data:  # start and end of every epoch, from run.params
        np.testing.assert_allclose(trace.x, [0, 1, 1, 2, 2, 3])
        assert trace.y[0] == 0
    np.testing.assert_allclose(never.y[1::2][:-1], never.y[2::2])  # epoch k+1 starts where k ended
    np.testing.assert_allclose(weights.y[2::2], 0)  # ...or back at the initial weights
    assert np.all(reinit.y[2::2] > 0) and not np.allclose(reinit.y[1::2][:-1], reinit.y[2::2])  # ...or somewhere new
    assert np.all(weights.y[1::2] > 0) and never.y[-1] > weights.y[-1]
    run = runs[0]
    assert never.y[-1] == pytest.approx(np.linalg.norm(run.params(3, "end") - run.params(1, "start")))
    assert figure.layout.xaxis.title.text == "epoch" and len(figure.layout.shapes) == 3


def test_tracked_weights_give_a_point_per_step_and_a_drop_to_zero_at_a_reset():
    tracked = {mode: ev.train("line", model="linear", epochs=3, lr=0.1, reset=mode, track_weights=True)
               for mode in ("never", "weights")}  # fmt: skip
    never, weights = weights_over_epochs(tracked).data
    run = tracked["never"]
    assert len(never.x) == run.total_steps + run.completed_epochs
    distances = np.linalg.norm(run.step_weights() - run.params(1, "start"), axis=1)
    np.testing.assert_allclose(never.y[: run.steps_per_epoch], distances[: run.steps_per_epoch], rtol=1e-6)
    at_one = np.flatnonzero(np.isclose(weights.x, 1.0))  # end of epoch 1, then epoch 2's first step
    assert weights.y[at_one[0]] > 0 and weights.y[at_one[1]] == 0


# --- loss_landscape ------------------------------------------------------------------------------


def test_the_landscape_optimum_is_the_least_squares_fit(line_run):
    figure = loss_landscape(line_run)
    x = line_run.data.x.numpy()[line_run.train_indices, 0]
    y = line_run.data.y.numpy()[line_run.train_indices]
    slope, intercept = np.polyfit(x, y, 1)
    (best,) = _traces(figure, "least-squares best")
    assert best.x[0] == pytest.approx(slope, rel=1e-5) and best.y[0] == pytest.approx(intercept, rel=1e-5)
    contour = figure.data[0]
    for i, j in [(0, 0), (17, 40), (59, 59)]:
        a, b = contour.x[j], contour.y[i]
        assert contour.z[i][j] == pytest.approx(np.mean((a * x + b - y) ** 2), rel=1e-4)
    assert figure.layout.xaxis.title.text == "slope a" and figure.layout.yaxis.title.text == "intercept b"


def test_the_landscape_path_follows_every_step_and_covers_start_end_and_optimum(line_run):
    figure = loss_landscape(line_run, resolution=30)
    contour, path, start, end, best = figure.data
    assert np.shape(contour.z) == (30, 30)
    # every step's weights, and each epoch's end after its steps, shaded by epoch
    epochs = line_run.steps.epoch.to_numpy()
    steps = line_run.step_weights()
    expected = np.vstack([np.vstack([steps[epochs == k], line_run.params(k, "end")]) for k in range(1, 5)])
    np.testing.assert_allclose(np.column_stack([path.x, path.y]), expected, rtol=1e-6)
    np.testing.assert_array_equal(path.marker.color, np.concatenate([[*epochs[epochs == k], k] for k in range(1, 5)]))
    assert start.text == ("start",) and end.name == "end after 4 epochs"
    for trace in (path, best):
        assert figure.layout.xaxis.range[0] < min(trace.x) and max(trace.x) < figure.layout.xaxis.range[1]
        assert figure.layout.yaxis.range[0] < min(trace.y) and max(trace.y) < figure.layout.yaxis.range[1]


def test_the_bowl_curvature_is_the_largest_eigenvalue_of_the_losss_hessian(line_run):
    """Oracle: torch's Hessian of the mean squared error over the run's training rows."""
    x = line_run.data.x[line_run.train_indices, 0].double()
    y = line_run.data.y[line_run.train_indices].double()
    hessian = torch.autograd.functional.hessian(lambda w: ((w[0] * x + w[1] - y) ** 2).mean(), torch.zeros(2).double())
    assert Bowl.of(line_run).curvature == pytest.approx(torch.linalg.eigvalsh(hessian).max().item(), rel=1e-9)


@pytest.mark.parametrize(("share", "zigzags", "converges"), [(0.8, False, True), (1.5, True, True), (2.1, True, False)])
def test_full_batch_steps_creep_below_1_over_l_zigzag_in_below_2_over_l_and_diverge_above(share, zigzags, converges):
    """A learning rate of `share`/L: the slope's distance from the best slope changes sign at every step
    above 1/L, and shrinks below 2/L."""
    probe = ev.train("line", model="linear", epochs=1, val_fraction=0)
    bowl = Bowl.of(probe)
    run = ev.train("line", model="linear", epochs=12, lr=share / bowl.curvature, batch_size=len(probe.train_indices),
                   val_fraction=0)  # fmt: skip
    distance = np.array([run.params(epoch, "end")[0] - bowl.best()[0] for epoch in range(1, 13)])
    overshoots = np.sign(distance[1:]) != np.sign(distance[:-1])
    assert overshoots.all() if zigzags else not overshoots.any()
    assert (np.abs(distance[-1]) < np.abs(distance[0]) / 10) == converges
    assert (np.abs(distance[-1]) > np.abs(distance[0])) == (not converges)


def test_the_landscape_needs_a_tracked_two_parameter_linear_regression(runs):
    with pytest.raises(ValueError, match="model='linear'"):
        loss_landscape(runs[0])
    with pytest.raises(ValueError, match="track_weights=True"):
        loss_landscape(ev.train("line", model="linear", epochs=1))


# --- memory, cross-validation, sliding windows -----------------------------------------------------


def test_memory_bars_stack_the_five_parts_and_flag_what_does_not_fit():
    footprints = [Footprint(batch_size=batch, optimizer="adam", params=MB, grads=MB, optimizer_state=2 * MB,
                            activations=batch * MB // 32, data=MB // 2) for batch in (32, 64, 256)]  # fmt: skip
    figure = memory_bars(footprints, budget_mb=6)  # totals: 5.5, 6.5 and 12.5 MB
    assert [trace.name for trace in figure.data] == ["parameters", "gradients", "optimizer state", "activations",
                                                     "data (training + validation samples)"]  # fmt: skip
    assert figure.layout.barmode == "stack" and list(figure.data[0].x) == ["32", "64", "256"]
    np.testing.assert_allclose(figure.data[3].y, [1, 2, 8])
    np.testing.assert_allclose(np.sum([trace.y for trace in figure.data], axis=0), [f.total_mb for f in footprints])
    np.testing.assert_allclose(figure.data[4].y, [0.5, 0.5, 0.5])
    (budget,) = figure.layout.shapes
    assert budget.y0 == budget.y1 == 6
    notes = [note.text for note in figure.layout.annotations]
    assert "memory budget: 6 MB" in notes and notes.count("<b>does not fit</b>") == 2
    assert list(figure.data[0].marker.pattern.shape) == ["", "/", "/"]
    unbudgeted = memory_bars(footprints)
    assert not unbudgeted.layout.shapes and not unbudgeted.layout.annotations


def test_cross_validation_puts_each_folds_validation_next_to_its_test_loss():
    def result(val_loss, reset):
        folds = pd.DataFrame({"fold": [1, 2, 3], "train_loss": 0.3, "val_loss": val_loss, "val_accuracy": 0.9,
                              "test_loss": [0.5, 0.5, 0.5], "test_accuracy": 0.8})  # fmt: skip
        return CrossValidation(runs=[], folds=folds, reset_between_folds=reset, test_indices=np.arange(5))

    fair, leaky = result([0.5, 0.48, 0.52], True), result([0.5, 0.2, 0.05], False)
    figure = cross_validation({"reset per fold": fair, "no reset (leaks)": leaky})
    assert [trace.name for trace in figure.data] == [
        "reset per fold · validation loss", "reset per fold · test loss (held out)",
        "no reset (leaks) · validation loss", "no reset (leaks) · test loss (held out)",
    ]  # fmt: skip
    np.testing.assert_allclose(figure.data[2].y, [0.5, 0.2, 0.05])
    np.testing.assert_allclose(figure.data[3].customdata, [0, 0.3, 0.45])  # how optimistic validation was
    assert figure.data[3].fill == "tonexty" and figure.data[3].line.dash == "dash"
    assert figure.data[0].line.color == RESET_COLOURS["weights"] and figure.data[2].line.color == RESET_COLOURS["never"]
    assert list(figure.data[0].x) == [1, 2, 3] and figure.layout.xaxis.title.text == "fold"
    assert cross_validation(leaky).data[0].name == "no reset between folds · validation loss"


def test_sliding_windows_meet_the_epoch_losses_at_the_boundaries(runs):
    run = runs[0]
    windows = ev.sliding_windows(run)
    figure = sliding_epochs(windows, run)
    line, boundaries, coverage, epochs = figure.data
    np.testing.assert_array_equal(line.x, windows.samples_seen)
    np.testing.assert_array_equal(boundaries.x, run.epochs.samples_seen)
    np.testing.assert_allclose(boundaries.y, epochs.y, rtol=1e-6)
    assert coverage.yaxis == "y2" and figure.layout.yaxis2.tickformat == ".0%"
    assert f"the last {windows.attrs['width']:,} samples" in line.hovertemplate
    assert len(figure.layout.shapes) == 3 and len(sliding_epochs(windows).data) == 3
    with pytest.raises(ValueError, match="coverage"):
        sliding_epochs(windows.drop(columns="coverage"))


# --- style and saving ---------------------------------------------------------------------------


def test_each_reset_mode_keeps_its_colour_and_no_two_series_share_one():
    assert series_colours(["weights", "never"]) == [RESET_COLOURS["weights"], RESET_COLOURS["never"]]
    colours = series_colours(["never"] * 4 + [None] * 4 + ["weights"])
    assert colours[0] == RESET_COLOURS["never"] and colours[-1] == RESET_COLOURS["weights"]
    assert len(set(colours)) == len(PALETTE)  # nine series: all eight colours of the palette, then one repeat
    assert RESET_COLOURS["weights"] not in colours[:-1]  # a mode on the figure keeps its colour to itself


def test_figures_are_projector_sized(runs, line_run):
    for figure in (loss_curves(runs), weights_over_epochs(runs), loss_landscape(line_run)):
        assert figure.layout.font.size >= 16 and figure.layout.height == 460
        assert figure.layout.template.layout.paper_bgcolor == "white"


def test_to_html_writes_a_standalone_file_with_plotly_inside(runs, tmp_path):
    path = to_html(loss_curves(runs[0]), tmp_path / "loss.html")
    html = path.read_text(encoding="utf-8")
    assert "plotly.js v" in html and "Plotly.newPlot" in html
    # plotly.js itself names cdn.plot.ly once, as the default source of map outlines; nothing loads from it
    assert not re.search(r"<script[^>]*\bsrc=", html) and 'src="https://cdn.plot.ly' not in html
    assert "each batch" in html


def test_a_loss_that_blows_up_but_stays_finite_is_called_out_on_a_log_axis():
    wild = ev.train("moons", epochs=6, lr=31.6)
    assert not wild.diverged and wild.blew_up and wild.at_chance
    figure = loss_curves(wild)
    assert figure.layout.yaxis.type == "log"
    (note,) = figure.layout.annotations
    assert note.text.startswith("blew up: the loss rose to") and "accuracy stayed at chance (51%)" in note.text
    calm = ev.train("moons", epochs=6, lr=0.3)
    assert not (calm.blew_up or calm.at_chance)
    assert loss_curves(calm).layout.yaxis.type != "log" and not loss_curves(calm).layout.annotations
