"""The explorers under a hostile learner: changes while training, datasets that shrink, bad arguments, slow settings."""

import functools
import math
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import epochviz as ev
from epochviz import checks
from epochviz.data import train_validation_split
from epochviz.widgets import (
    CrossValidationExplorer,
    LandscapeExplorer,
    MemoryExplorer,
    base,
    batch_size_explorer,
    explorer,
    reset_explorer,
)
from epochviz.widgets.explorer import SLOW_STEPS, RunExplorer

EPOCHS = 3  # every run here is tiny: a few epochs of moons or circles in batches of 16 or more


class Gate:
    """Holds the worker at the end of an epoch, before that epoch is drawn, until the test lets it go.

    `hold()` arms it; the worker's next epoch waits inside the explorer's computation, and
    `entered` is set, so the test knows exactly which run is in flight while it changes controls.
    """

    def __init__(self, widget: RunExplorer) -> None:
        self.entered, self.released, self._armed = threading.Event(), threading.Event(), False
        self.epochs_trained: list[int] = []  # one entry per epoch the worker finished, for every run it trained
        compute = widget.compute

        def held_compute(request, cached, partial):
            def each_epoch(result):
                if threading.current_thread() is not threading.main_thread():
                    self.epochs_trained.append(min(run.completed_epochs for run in result.values()))
                    if self._armed:
                        self._armed = False
                        self.entered.set()
                        assert self.released.wait(60), "the test never released the worker"
                partial(result)

            return compute(request, cached, each_epoch)

        widget.compute = held_compute

    def hold(self) -> None:
        self.entered.clear()
        self.released.clear()
        self._armed = True

    def wait_until_held(self) -> None:
        assert self.entered.wait(60), "the worker never reached the gate"

    def release(self) -> None:
        self.released.set()


@pytest.fixture(autouse=True)
def every_epoch_drawn(monkeypatch):
    """Draw every partial result: a stale epoch drawn late must be caught, not hidden by the throttle."""
    monkeypatch.setattr(base, "DRAW_EVERY_S", 0.0)


@pytest.fixture
def gated():
    """An explorer with a gate, whose worker is always released and joined, also when the test fails."""
    made = []

    def make(*args, **kwargs):
        widget = explorer(*args, **kwargs)
        gate = Gate(widget)
        made.append((widget, gate))
        return widget, gate

    yield make
    for widget, gate in made:
        gate.release()
        widget.wait()


def _epoch_trace(figure):
    (trace,) = [t for t in figure.data if t.name == "train loss per epoch" and t.legendgroup != "ghosts"]
    return trace


def assert_shows_the_controls(widget: RunExplorer) -> None:
    """Figure, status, title and `run` all show the controls' setting, as a fresh `train` call trains it."""
    values = {name: control.value for name, control in widget.controls.items()}
    expected = ev.train(values["dataset"], epochs=values["epochs"], batch_size=values["batch_size"], lr=values["lr"],
                        optimizer=values["optimizer"], reset=values["reset"], shuffle=values["shuffle"],
                        seed=values["seed"])  # fmt: skip
    assert "epochviz-error" not in widget.message.value
    np.testing.assert_allclose(_epoch_trace(widget.figure).y, expected.epochs.train_loss)
    np.testing.assert_allclose(widget.run.epochs.train_loss, expected.epochs.train_loss)
    assert {name: getattr(widget.run.config, name) for name in ("batch_size", "lr", "reset", "seed")} == {
        name: values[name] for name in ("batch_size", "lr", "reset", "seed")
    }
    assert widget.run.data.name == values["dataset"]
    assert f"{values['dataset']} · batch {values['batch_size']} ·" in widget.figure.layout.title.text
    assert f"epoch {values['epochs']} / {values['epochs']} ·" in widget.status.value
    assert widget.progress.value == widget.progress.max == values["epochs"]


# another value for each control a run depends on: the family of settings the interleavings below move between
OTHER = [("batch_size", 16), ("lr", 0.3), ("reset", "weights"), ("seed", 1), ("dataset", "circles"),
         ("optimizer", "adam")]  # fmt: skip
IDS = [name for name, _ in OTHER]


# --- 1. the last setting wins -------------------------------------------------------------------


@pytest.mark.parametrize(("name", "other"), OTHER, ids=IDS)
def test_going_back_to_a_cached_setting_while_another_trains_shows_the_cached_one(gated, name, other):
    widget, gate = gated("moons", epochs=EPOCHS)
    first = widget.controls[name].value
    gate.hold()
    widget.controls[name].value = other  # not cached: the worker trains it, and is held after its first epoch
    gate.wait_until_held()
    widget.controls[name].value = first  # cached: drawn at once, on this thread
    gate.release()
    widget.wait()
    assert_shows_the_controls(widget)
    assert max(gate.epochs_trained) < EPOCHS, "the run nobody wants any more should have stopped"


@pytest.mark.parametrize(("name", "other"), OTHER, ids=IDS)
def test_a_newer_setting_replaces_the_one_in_flight(gated, name, other):
    widget, gate = gated("moons", epochs=EPOCHS)
    gate.hold()
    widget.controls[name].value = other
    gate.wait_until_held()
    widget.controls["epochs"].value = EPOCHS + 1  # the same run, one epoch longer: it carries on
    widget.controls["shuffle"].value = False  # a different run again: the one in flight is pointless
    gate.release()
    widget.wait()
    assert_shows_the_controls(widget)


@pytest.mark.parametrize(("name", "other"), OTHER, ids=IDS)
def test_a_cached_setting_chosen_while_a_run_resumes_wins(gated, name, other):
    widget, gate = gated("moons", epochs=EPOCHS)
    first = widget.controls[name].value
    widget.controls[name].value = other
    widget.wait()
    widget.controls[name].value = first  # both settings are cached now, for EPOCHS epochs
    gate.hold()
    widget.train_more(2)  # resumes the cached run in place, held after its first extra epoch
    gate.wait_until_held()
    widget.controls["epochs"].value = EPOCHS  # back to what the cache holds: the same key as the run resuming
    widget.controls[name].value = other  # and to the other cached setting
    gate.release()
    widget.wait()
    assert_shows_the_controls(widget)


@pytest.mark.parametrize(("name", "other"), OTHER, ids=IDS)
def test_a_resumed_run_interrupted_by_another_setting_later_resumes_correctly(gated, name, other):
    widget, gate = gated("moons", epochs=EPOCHS)
    first = widget.controls[name].value
    gate.hold()
    widget.train_more(3)  # held after the first of three extra epochs
    gate.wait_until_held()
    widget.controls[name].value = other  # the resumed run stops part way, and stays cached as far as it got
    gate.release()
    widget.wait()
    assert_shows_the_controls(widget)
    widget.controls[name].value = first  # EPOCHS + 3 epochs: carries on from where it stopped
    widget.wait()
    assert_shows_the_controls(widget)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from([*OTHER, ("epochs", EPOCHS + 1), ("more", None), ("hold", None)]),
                          st.booleans()), min_size=2, max_size=6))  # fmt: skip
def test_any_interleaving_of_changes_holds_and_resumes_ends_on_the_last_setting(gated, steps):
    """A random mix of changes, back and forth, while runs are held in flight or resume, as a learner clicks."""
    widget, gate = gated("moons", epochs=EPOCHS)
    start = {name: widget.controls[name].value for name, _ in OTHER}
    for (name, other), back in steps:
        if name == "hold":  # the next run the worker trains is held until the end of the script
            gate.hold()
        elif name == "more":
            widget.train_more(1)
        elif name == "epochs":
            widget.controls["epochs"].value = EPOCHS if back else other
        else:
            widget.controls[name].value = start[name] if back else other
    gate.release()
    widget.wait()
    assert_shows_the_controls(widget)


def test_a_setting_left_before_it_ran_neither_trains_nor_shows_its_error(gated):
    widget, gate = gated("moons", epochs=2, batch_size=16, memory_budget_mb=0.05)  # 16 fits in 0.05 MB, 256 does not
    gate.hold()
    widget.controls["batch_size"].value = 8  # held in flight
    gate.wait_until_held()
    widget.controls["batch_size"].value = 256  # waits its turn; it would fail: out of memory
    widget.controls["batch_size"].value = 16  # cached: drawn at once
    gate.release()
    widget.wait()
    assert widget.message.value == "" and widget.run.config.batch_size == 16


# --- 2. switching the dataset keeps the batch size ----------------------------------------------


@functools.cache
def _n_train(name: str) -> int:
    return len(train_validation_split(len(ev.dataset(name)), 0.2, 0)[0])


@pytest.mark.parametrize(
    ("before", "batch_size", "after"),
    [("moons", 32, "circles"), ("moons", 64, "digits"), ("digits", 512, "line"), ("digits", 1024, "moons"),
     ("spirals", 256, "line"), ("moons", 320, "digits"), ("digits", 1438, "line"), ("line", 128, "moons")],
)  # fmt: skip
def test_a_new_dataset_keeps_the_batch_size_when_it_fits_and_says_so_when_it_cannot(before, batch_size, after):
    widget = explorer(before, epochs=1, batch_size=batch_size)
    was_full = batch_size >= _n_train(before)
    trained = []
    compute = widget.compute
    widget.compute = lambda request, *rest: trained.append(request.values["batch_size"]) or compute(request, *rest)
    widget.controls["dataset"].value = after  # must not raise, whatever the sizes
    widget.wait()
    n_train = _n_train(after)
    expected = n_train if was_full or batch_size >= n_train else batch_size
    assert widget.controls["batch_size"].value == expected == widget.run.config.batch_size
    assert trained == [expected], "only the setting the learner sees is trained, never a passing batch size"
    assert widget.controls["dataset"].value == after == widget.run.data.name
    assert "epochviz-error" not in widget.message.value
    assert (f"full batch ({n_train:,})".replace(",", "\u2009") in widget.status.value) == (expected != batch_size)
    assert f"batch {expected} ·" in widget.figure.layout.title.text


@settings(max_examples=10, deadline=None)
@given(st.sampled_from(sorted(ev.data.GENERATORS)), st.sampled_from(sorted(ev.data.GENERATORS)),
       st.integers(min_value=1, max_value=2_000))  # fmt: skip
def test_the_batch_size_slider_always_offers_the_kept_value(before, after, batch_size):
    """For every pair of datasets and every starting batch size, the slider's value is among its options."""
    slider = ev.widgets.controls.batch_size_slider(_n_train(before), batch_size)
    kept = ev.widgets.controls.keep_batch_size(slider, _n_train(before), _n_train(after))
    assert slider.value == kept and kept in [value for _, value in slider.options]
    assert kept == (min(batch_size, _n_train(after)) if batch_size < _n_train(before) else _n_train(after))


def test_an_error_while_adjusting_the_controls_lands_in_the_widget(monkeypatch):
    widget = explorer("moons", epochs=1)

    def broken(*args):
        raise RuntimeError("the options could not be set")

    monkeypatch.setattr(ev.widgets.controls, "keep_batch_size", broken)
    widget.controls["dataset"].value = "circles"  # the observer's error must not escape to the caller
    widget.wait()
    assert "RuntimeError" in widget.message.value and "could not be set" in widget.message.value


# --- 3. arguments out of range are refused, naming the argument ---------------------------------

BAD_RUN_ARGUMENTS = [
    ("optimizer", "rmsprop"), ("optimizer", None), ("batch_size", 0), ("batch_size", -3), ("batch_size", 2.5),
    ("batch_size", True), ("lr", 1e6), ("lr", 0), ("lr", -0.1), ("lr", math.nan), ("lr", 1e-5), ("lr", "0.1"),
    ("seed", 2_000_000_000_000), ("seed", -1), ("seed", 1.5), ("epochs", 0), ("epochs", checks.MAX_EPOCHS + 1),
    ("epochs", 2.0), ("x", "bogus"), ("reset", "bogus"), ("reset", 1), ("shuffle", "yes"), ("compare", 1),
    ("data", "nope"), ("data", 7), ("show", ("epochs", "bogus")), ("show", "epochs"), ("buttons", ("fly",)),
    ("val_fraction", 1.5), ("val_frac", 0.1), ("accumulate", 0),
]  # fmt: skip


RUN_CASES = [
    (make, argument, value)
    for make in (explorer, reset_explorer, batch_size_explorer)
    for argument, value in BAD_RUN_ARGUMENTS
    if make is explorer or argument not in ("show", "buttons", "compare")  # the small ones set these themselves
]


@pytest.mark.parametrize(
    ("make", "argument", "value"),
    RUN_CASES,
    ids=[f"{make.__name__}-{argument}={value!r}" for make, argument, value in RUN_CASES],
)
def test_the_run_explorers_refuse_a_bad_argument_by_name(make, argument, value):
    with pytest.raises((ValueError, TypeError), match=rf"\b{argument}\b") as raised:
        make(**{argument: value})
    assert repr(value) in str(raised.value) or argument in ("show", "buttons", "val_frac"), "it shows the bad value"


@pytest.mark.parametrize(
    ("make", "argument", "value"),
    [(MemoryExplorer, "batch_size", 1000), (MemoryExplorer, "batch_size", 0), (MemoryExplorer, "budget_mb", 0),
     (MemoryExplorer, "budget_mb", 1e6), (MemoryExplorer, "budget_mb", -1), (MemoryExplorer, "accumulate", 0),
     (MemoryExplorer, "accumulate", 65), (MemoryExplorer, "optimizer", "rmsprop"), (MemoryExplorer, "data", "nope"),
     (CrossValidationExplorer, "k", 1), (CrossValidationExplorer, "k", 11), (CrossValidationExplorer, "epochs", 0),
     (CrossValidationExplorer, "epochs", 61), (CrossValidationExplorer, "n", 0),
     (LandscapeExplorer, "epochs", 0), (LandscapeExplorer, "epochs", 31), (LandscapeExplorer, "lr", 1e6),
     (LandscapeExplorer, "lr", 0), (LandscapeExplorer, "batch_size", 0), (LandscapeExplorer, "reset", "bogus")],
)  # fmt: skip
def test_the_small_explorers_refuse_a_bad_argument_by_name(make, argument, value):
    with pytest.raises((ValueError, TypeError), match=rf"\b{argument}\b"):
        make(**{argument: value})


def test_the_edges_of_every_range_are_accepted_as_they_are():
    widget = explorer("moons", epochs=1, lr=1e-4, seed=checks.MAX_SEED, batch_size=48)
    assert widget.controls["lr"].value == 1e-4 and widget.controls["seed"].value == checks.MAX_SEED
    assert widget.controls["batch_size"].value == 48 == widget.run.config.batch_size  # not rounded to 32 or 64
    widget = explorer("line", epochs=1, lr=10**1.5, batch_size=5_000)  # larger than the training set: one full batch
    assert widget.controls["batch_size"].value == 160 and widget.run.steps_per_epoch == 1


# --- 4. slow settings say so, train in the background and stay interruptible -------------------


def _steps(name: str, batch_size: int, epochs: int) -> int:
    return epochs * math.ceil(_n_train(name) / batch_size)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(["moons", "digits"]), st.sampled_from([1, 2, 4, 16, 64]), st.sampled_from([1, 10, 40, 100]))
def test_a_setting_is_announced_as_slow_exactly_when_it_takes_many_steps(name, batch_size, epochs):
    widget = explorer(name, epochs=1, batch_size=64)
    widget._worker.submit = lambda request: None  # look at what it says before training, and train nothing
    widget.controls["batch_size"].value = batch_size
    widget.controls["epochs"].value = epochs
    steps = _steps(name, batch_size, epochs)
    assert (steps > SLOW_STEPS) == ("optimizer steps" in widget.message.value)
    if steps > SLOW_STEPS:
        assert (
            f"{steps:,}".replace(",", "\u2009") in widget.message.value and "change any control" in widget.message.value
        )


def test_a_slow_setting_trains_in_the_background_and_a_change_stops_it(monkeypatch):
    entered, released = threading.Event(), threading.Event()
    trained = []
    compute = RunExplorer.compute

    def held(self, request, cached, partial):
        def each_epoch(result):
            trained.append(request.values["batch_size"])
            if threading.current_thread() is not threading.main_thread() and not entered.is_set():
                entered.set()
                assert released.wait(60)
            partial(result)

        return compute(self, request, cached, each_epoch)

    monkeypatch.setattr(RunExplorer, "compute", held)
    widget = explorer("digits", epochs=20, batch_size=1)  # 28 760 steps: returns at once, the worker trains
    try:
        assert _steps("digits", 1, 20) > SLOW_STEPS
        assert "28\u2009760 optimizer steps" in widget.message.value and "training…" in widget.status.value
        entered.wait(60)
        assert widget._worker.busy
        with pytest.raises(ValueError, match="no run is shown yet"):
            _ = widget.run
        widget.controls["batch_size"].value = 256  # a change: the slow run stops after the epoch it is in
    finally:
        released.set()
        widget.wait()
    assert trained.count(1) <= 2 and widget.run.config.batch_size == 256 and widget.run.completed_epochs == 20
    assert widget.message.value == ""
