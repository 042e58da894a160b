"""What a hostile tester tries next: labels that are not classes, modules of the wrong shape, stores that
do not fit in memory, two trainings in two threads, divergence that shows only in validation, runs with
no steps, and every public plot given the wrong kind of argument.

Each test covers a class of failure (issue 12, items 5–8 and 12–14), not one reported input.
"""

import importlib
import math
import re
import sys
import threading

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import epochviz as ev
from epochviz import memory, plots
from epochviz.checks import MAX_CLASSES
from epochviz.config import TrainConfig
from epochviz.models import check_model, flat_parameters

training = importlib.import_module("epochviz.train")  # the module: `epochviz.train` is the function
TINY = ev.moons(n=40, seed=0)


def _must_not_train(*args, **kwargs):
    raise AssertionError("training started; the problem should have been refused before")


# --- 5: labels must be class numbers 0 … K−1 -------------------------------------------------------


@pytest.mark.parametrize(
    ("y", "task"),
    [
        ([0, 2**40], None),  # 2**40 class names
        ([0, 2**62], None),  # used to hang
        (np.array([0, 2**64 - 1], dtype=np.uint64), None),
        ([199_000, 250_000], None),  # prices: a 250 001-class problem
        ([0, MAX_CLASSES], None),
        ([1, 2], None),  # one-based: class 0 never appears
        ([0, 2], None),  # a gap
        ([-1, 0], None),
        ([0.5, 1.0], "classification"),  # fractions were truncated to classes
        ([0.0, math.nan], "classification"),
        ([0.0, 1e300], "classification"),
    ],
)
def test_labels_that_are_not_small_contiguous_class_numbers_are_refused_with_a_hint(y, task):
    with pytest.raises(ValueError, match=r"^y .*task='regression'"):
        ev.from_arrays(np.zeros((2, 1)), y, task=task)


@settings(max_examples=40, deadline=None)
@given(y=st.lists(st.integers(-3, 3 * MAX_CLASSES), min_size=1, max_size=30))
def test_whole_number_targets_become_classes_only_when_every_class_is_present(y):
    try:
        data = ev.from_arrays(np.zeros((len(y), 1)), y)
    except ValueError as error:
        assert str(error).startswith("y ")
        assert sorted(set(y)) != list(range(len(set(y)))) or len(set(y)) > MAX_CLASSES
        return
    assert data.classes == tuple(str(c) for c in range(len(set(y))))
    assert sorted(set(y)) == list(range(len(data.classes)))


def test_whole_numbers_as_a_regression_task_are_accepted():
    prices = ev.from_arrays(np.zeros((3, 1)), [199_000, 250_000, 310_000], task="regression")
    assert prices.task == "regression" and prices.outputs == 1


# --- 6: track_weights refuses a store that would not fit ------------------------------------------------


@pytest.mark.parametrize("epochs", [1, 2, 3, 4])
def test_track_weights_refuses_before_training_a_store_above_the_limit(epochs, monkeypatch):
    monkeypatch.setattr(memory, "MAX_WEIGHT_STORE_MB", 1)
    data = ev.moons(n=100, seed=0)
    parameters = sum(p.numel() for p in ev.mlp(2, 2).parameters())
    needed_mb = epochs * 80 * parameters * 4 / 2**20  # 80 training samples, batch_size=1: 80 steps an epoch
    if needed_mb <= 1:
        run = ev.train(data, epochs=epochs, batch_size=1, track_weights=True)
        assert run.step_weights().shape == (epochs * 80, parameters)
        return
    monkeypatch.setattr(training, "_train_epochs", _must_not_train)
    with pytest.raises(ValueError, match="track_weights") as error:
        ev.train(data, epochs=epochs, batch_size=1, track_weights=True)
    assert f"{needed_mb:,.0f} MB" in str(error.value) and f"{epochs * 80:,} steps" in str(error.value)


def test_resuming_to_more_epochs_counts_the_weights_already_kept(monkeypatch):
    monkeypatch.setattr(memory, "MAX_WEIGHT_STORE_MB", 1)
    run = ev.train(ev.moons(n=100, seed=0), epochs=2, batch_size=1, track_weights=True)  # 0.78 MB
    with pytest.raises(ValueError, match="track_weights"):
        ev.resume(run, epochs=3)  # 1.2 MB with the two epochs already kept
    assert run.completed_epochs == 2 and len(run.step_weights()) == 160


def test_the_reported_store_is_refused_at_the_real_limit(monkeypatch):
    """A 300k-parameter model, batch 1, one epoch of digits: about 1.7 GB of weights."""
    monkeypatch.setattr(training, "_train_epochs", _must_not_train)
    big = nn.Sequential(nn.Linear(64, 4096), nn.ReLU(), nn.Linear(4096, 64), nn.ReLU(), nn.Linear(64, 10))
    parameters = sum(p.numel() for p in big.parameters())
    with pytest.raises(ValueError, match=rf"would keep 1,438 steps × {parameters:,} parameters = 2,902 MB"):
        ev.train("digits", model=big, epochs=1, batch_size=1, track_weights=True)


# --- 7: a module of the wrong shape is refused in one sentence ------------------------------------------


class _Pair(nn.Module):
    """Returns two tensors, as an RNN does."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2, 2)

    def forward(self, x):
        return self.layer(x), x


WRONG_MODULES = [
    (nn.Linear(2, 1), "moons", "1 number"),
    (nn.Linear(3, 2), "moons", "2 feature"),
    (nn.Linear(2, 5), "moons", "5 number"),
    (nn.Linear(1, 2), "line", "regression"),
    (nn.Sequential(nn.Linear(2, 3), nn.Linear(4, 2)), "moons", "cannot take"),
    (nn.Sequential(), "moons", "no parameters"),
    (_Pair(), "moons", "one tensor"),
]


@pytest.mark.parametrize(("module", "name", "says"), WRONG_MODULES)
@pytest.mark.parametrize("call", ["train", "cross_validate", "footprint"])
def test_a_module_that_does_not_fit_the_data_is_refused_before_training(module, name, says, call, monkeypatch):
    monkeypatch.setattr(training, "_train_epochs", _must_not_train)
    data = ev.dataset(name, n=30)
    calls = {
        "train": lambda: ev.train(data, model=module, epochs=1),
        "cross_validate": lambda: ev.cross_validate(data, k=2, model=module, epochs=1),
        "footprint": lambda: ev.footprint(module, data, batch_size=4),
    }
    with pytest.raises(ValueError, match=r"^model ") as error:
        calls[call]()
    assert says in str(error.value)


@pytest.mark.parametrize(
    ("module", "name"),
    [(nn.Linear(2, 2), "moons"), (nn.Linear(1, 1), "line"), (nn.Sequential(nn.Linear(2, 8), nn.Dropout(0.5),
                                                                             nn.BatchNorm1d(8), nn.Linear(8, 3)),
                                                               "spirals")],
)  # fmt: skip
def test_a_module_that_fits_passes_the_check_unchanged(module, name):
    before = {key: value.clone() for key, value in module.state_dict().items()}
    check_model(module, ev.dataset(name, n=30))
    assert module.training
    assert all(torch.equal(before[key], value) for key, value in module.state_dict().items())
    assert ev.train(ev.dataset(name, n=30), model=module, epochs=1).completed_epochs == 1


# --- 8: seeding does not depend on what another thread does ---------------------------------------------


def _in_parallel(work, disturb, rounds):
    """Run `work(i)` `rounds` times while another thread runs `disturb()` until told to stop; both joined."""
    stop, errors = threading.Event(), []

    def disturbing():
        try:
            while not stop.is_set():
                disturb()
        except BaseException as error:  # reported by the test thread
            errors.append(error)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: a race shows up at once
    other = threading.Thread(target=disturbing)
    other.start()
    try:
        return [work(i) for i in range(rounds)]
    finally:
        stop.set()
        other.join()
        sys.setswitchinterval(interval)
        assert not errors, errors


def _draw_from_the_global_generator():
    torch.manual_seed(12345)
    torch.rand(64)


@pytest.mark.parametrize("build", [lambda: ev.mlp(2, 2, seed=0), lambda: ev.linear(1, 1, seed=0)])
def test_initial_weights_do_not_depend_on_another_threads_use_of_torchs_generator(build):
    expected = flat_parameters(build())
    built = _in_parallel(lambda i: flat_parameters(build()), _draw_from_the_global_generator, rounds=300)
    assert sum(not torch.equal(weights, expected) for weights in built) == 0


def test_two_threads_training_at_once_each_get_the_seeds_initial_weights():
    expected = {seed: ev.train(TINY, epochs=1, seed=seed).params(1, "start") for seed in (0, 1)}
    runs = _in_parallel(lambda i: ev.train(TINY, epochs=1, seed=0), lambda: ev.train(TINY, epochs=1, seed=1), rounds=60)
    assert all(np.array_equal(run.params(1, "start"), expected[0]) for run in runs)


def test_the_default_models_initial_weights_are_torchs_own_for_the_seed():
    """The private generator draws what `torch.manual_seed(seed)` + nn.Linear drew: saved outputs stay valid."""
    for seed in (0, 7):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            first, second = nn.Linear(2, 5), nn.Linear(5, 3)
        expected = torch.cat([flat_parameters(first), flat_parameters(second)])
        assert torch.equal(flat_parameters(ev.mlp(2, 3, hidden=(5,), seed=seed)), expected)


DROPOUT = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 2))


def test_dropout_in_your_own_module_is_seeded_thread_safe_and_leaves_torchs_generator_alone():
    torch.manual_seed(99)
    before = torch.get_rng_state()
    reference = ev.train(TINY, model=DROPOUT, epochs=2, seed=3)
    assert torch.equal(torch.get_rng_state(), before)
    runs = _in_parallel(
        lambda i: ev.train(TINY, model=DROPOUT, epochs=2, seed=3),
        lambda: ev.train(TINY, model=DROPOUT, epochs=1, seed=4),
        rounds=10,
    )
    assert all(np.array_equal(run.steps.loss, reference.steps.loss) for run in runs)
    resumed = ev.resume(ev.train(TINY, model=DROPOUT, epochs=1, seed=3), epochs=2)
    np.testing.assert_array_equal(resumed.steps.loss, reference.steps.loss)


# --- 12: run.first(k) is the run after k epochs, k in 0 … completed -------------------------------------

RUN = ev.train(TINY, epochs=3, batch_size=8)


@pytest.mark.parametrize("epochs", [-1, -3, 4, 10, 1.5, "2", None, True])
def test_first_refuses_epochs_the_run_does_not_have(epochs):
    with pytest.raises((ValueError, TypeError), match="epochs"):
        RUN.first(epochs)


def test_first_zero_is_the_run_before_its_first_step_with_the_initial_weights():
    before = RUN.first(0)
    assert (before.completed_epochs, before.total_steps, len(before.steps), before.diverged) == (0, 0, 0, False)
    np.testing.assert_array_equal(flat_parameters(before.model).numpy(), RUN.params(1, "start"))
    for k in range(RUN.completed_epochs + 1):
        assert RUN.first(k).completed_epochs == k


def test_first_of_more_epochs_than_a_diverged_run_completed_is_the_whole_run():
    run = ev.train("moons", lr=1e3, batch_size=1000, epochs=6)
    assert run.diverged and run.completed_epochs < 6
    for k in range(run.completed_epochs, 7):
        assert run.first(k).diverged_at == run.diverged_at and len(run.first(k).steps) == len(run.steps)
    with pytest.raises(ValueError, match="epochs"):
        run.first(7)


# --- 13: a non-finite validation loss (or weights) is divergence, in train and train_many alike ---------


@pytest.mark.parametrize("lr", [1e2, 1e3, 1e4, 1e5])
@pytest.mark.parametrize("batch_size", [100, 1000])
@pytest.mark.parametrize("val_fraction", [0.0, 0.2])
def test_no_recorded_epoch_has_a_non_finite_loss_and_compare_mode_agrees(lr, batch_size, val_fraction):
    settings_ = {"lr": lr, "batch_size": batch_size, "epochs": 4, "val_fraction": val_fraction}
    alone = ev.train("moons", **settings_)
    [together] = ev.train_many("moons", [{}], **settings_)
    for run in (alone, together):
        losses = run.epochs[["train_loss", "val_loss"]].to_numpy(dtype=float)
        assert np.isfinite(losses[:, 0]).all() and (np.isfinite(losses[:, 1]).all() or val_fraction == 0)
        finite_weights = bool(torch.isfinite(flat_parameters(run.model)).all())
        assert run.diverged or finite_weights
    assert alone.diverged_at == together.diverged_at


def test_the_reported_setting_diverges():
    run = ev.train("moons", lr=1e3, batch_size=1000, epochs=4)
    assert run.diverged and run.completed_epochs == run.diverged_at[0] - 1


# --- 14: runs with no steps, plots given the wrong thing, and the smaller items ---------------------------


def _zero_step_runs():
    huge = ev.from_arrays(np.full((20, 2), 3e38), np.arange(20) % 2)  # the first loss is already infinite
    huge_line = ev.from_arrays(np.full((20, 1), 3e38), np.ones(20), task="regression")
    return {
        "diverged at step 1": ev.train(huge, epochs=2),
        "first(0)": RUN.first(0),
        "tracked, first(0)": ev.train("line", model="linear", epochs=2, track_weights=True).first(0),
        "tracked, diverged at step 1": ev.train(huge_line, model="linear", epochs=2, track_weights=True),
    }


@pytest.mark.parametrize("name", list(_zero_step_runs()))
def test_every_function_on_a_run_with_no_steps_gives_an_empty_result(name):
    run = _zero_step_runs()[name]
    assert run.total_steps == 0
    windows = ev.sliding_windows(run)
    assert len(windows) == 0 and list(windows.columns) == list(plots.epoch_windows.WINDOW_COLUMNS)
    figures = [plots.sliding_epochs(windows, run), plots.weights_over_epochs(run), plots.sample_orders(run)]
    figures += [plots.loss_curves(run, x=x) for x in ("epoch", "step", "samples", "seconds")]
    if run.config.model == "linear":
        figures.append(plots.loss_landscape(run))
    assert all(isinstance(figure, go.Figure) for figure in figures)
    assert len(ev.summarize(run)) == 1 and run.first(0).total_steps == 0


def test_sliding_windows_of_a_run_that_diverged_inside_epoch_one_are_a_full_epoch_wide():
    run = ev.train("moons", lr=1e6, batch_size=4, epochs=2)
    assert run.diverged_at[0] == 1 and run.total_steps > 1
    assert ev.sliding_windows(run).attrs["width"] == len(run.train_indices)


CROSS = ev.cross_validate(TINY, k=2, epochs=1, batch_size=8)
WINDOWS = ev.sliding_windows(RUN)
LINE = ev.train("line", model="linear", epochs=1, track_weights=True)
WRONG = [None, 3, "moons", [1, 2], {"a": 1}, np.zeros(3), RUN, CROSS, WINDOWS, go.Figure(), [CROSS], {"a": RUN}]

# plot function → (working arguments, the arguments to give a wrong thing, the types each accepts)
PLOTS = {
    "cross_validation": ({"results": CROSS}, {"results": (ev.CrossValidation,)}),
    "sliding_epochs": ({"windows": WINDOWS, "run": RUN}, {"windows": (pd.DataFrame,), "run": (ev.Run, type(None))}),
    "loss_landscape": ({"run": LINE}, {"run": (ev.Run,)}),
    "sample_orders": ({"runs": RUN}, {"runs": (ev.Run,)}),
    "loss_curves": ({"runs": RUN}, {"runs": (ev.Run,)}),
    "weights_over_epochs": ({"runs": RUN}, {"runs": (ev.Run,)}),
    "memory_bars": ({"footprints": [ev.footprint("mlp", TINY, 8)]}, {"footprints": ()}),
    "to_html": ({"fig": go.Figure(), "path": "unused.html"}, {"fig": (go.Figure,)}),
    "decimate": ({"values": np.arange(5.0)}, {"values": (np.ndarray,)}),
}
PLOT_CASES = [
    (name, argument, i)
    for name, (_, args) in PLOTS.items()
    for argument, accepted in args.items()
    for i, value in enumerate(WRONG)
    if not isinstance(value, accepted)  # only the wrong kinds of value
]


@pytest.mark.parametrize(("name", "argument", "i"), PLOT_CASES)
def test_every_plot_given_the_wrong_kind_of_argument_says_which(name, argument, i, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    working, _ = PLOTS[name]
    value = WRONG[i]
    if name == "cross_validation" and isinstance(value, dict):
        value = {"label": value}  # a dict is the right container: its values are what is wrong
    try:
        result = getattr(plots, name)(**{**working, argument: value})
    except (TypeError, ValueError) as error:
        message = str(error)
        assert argument in message or "Run" in message or "Footprint" in message, message
        return
    # only values that really are of an accepted kind may work: a list of runs, numbers to decimate
    assert (name, argument) in {("sample_orders", "runs"), ("loss_curves", "runs"), ("weights_over_epochs", "runs"),
                                ("decimate", "values")}, f"{name}({argument}={value!r}) gave {result!r}"  # fmt: skip


@pytest.mark.parametrize("max_points", [-1, 0, 1, 2, 3, 2.5, "4", None])
def test_decimate_refuses_too_few_points_by_name(max_points):
    with pytest.raises((ValueError, TypeError), match="max_points"):
        plots.decimate(np.arange(100.0), max_points=max_points)


@settings(max_examples=40, deadline=None)
@given(length=st.integers(0, 400), max_points=st.integers(4, 60), seed=st.integers(0, 10))
def test_decimate_keeps_at_most_max_points_with_both_ends(length, max_points, seed):
    values = np.random.default_rng(seed).normal(size=length)
    kept = plots.decimate(values, max_points=max_points)
    assert len(kept) <= max_points and np.all(np.diff(kept) > 0)
    if length:
        assert kept[0] == 0 and kept[-1] == length - 1


def test_the_memory_explorer_offers_only_what_train_accepts():
    from epochviz.widgets import MemoryExplorer

    explorer = MemoryExplorer(batch_size=4096, budget_mb=1.0)
    accumulate = explorer.controls["accumulate"]
    for size in MemoryExplorer.SIZES:
        accumulate.value = accumulate.max
        explorer.controls["batch_size"].value = size
        explorer.wait()
        TrainConfig(batch_size=size, accumulate=accumulate.value)  # raises if train would refuse it
        assert accumulate.max <= size
        for suggested in re.findall(r"accumulate=(\d+)", explorer.message.value):
            TrainConfig(batch_size=size, accumulate=int(suggested))
        pieces = re.search(r"(\d+) micro-batches of ≤ (\d+)", explorer.status.value)
        assert pieces is None or int(pieces[1]) <= size
    with pytest.raises(ValueError, match="accumulate"):
        MemoryExplorer(batch_size=16, accumulate=64)


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: ev.train_many(TINY, [{}], epochs=1)[0], "train_many"),
        (lambda: ev.train(TINY, epochs=2).first(1), "run.first(1)"),
    ],
)
def test_a_run_that_cannot_resume_says_truly_why(make, says):
    with pytest.raises(ValueError, match="cannot resume") as error:
        ev.resume(make(), epochs=3)
    assert says in str(error.value)


@pytest.mark.parametrize(
    "split",
    [
        ([0.5, 1.7, 2.0], [3]),  # floats were truncated to rows 0, 1, 2
        ([0.0, 1.0], [3]),
        (["a", "b"], [3]),
        ([0, 1, 1], [2]),  # a row twice in one epoch
        ([0, 1], [2, 2]),
        ([0, 1], [1]),  # a row that trains and validates
        ([0, 40], []),
        ([-1, 0], []),
        ([], [0]),
        (np.ones(40, dtype=bool), []),  # a mask is not row numbers
        (np.array([[0, 1], [2, 3]]), []),
        ([2**70], []),
        (np.array([2**64 - 1], dtype=np.uint64), []),
    ],
)
def test_a_split_must_be_whole_row_numbers_in_range_each_used_once(split):
    with pytest.raises((ValueError, TypeError), match="split"):
        ev.train(TINY, epochs=1, split=split)


def test_a_good_split_trains_on_exactly_its_rows():
    run = ev.train(TINY, epochs=1, split=(np.arange(30), torch.arange(30, 40)))
    np.testing.assert_array_equal(run.train_indices, np.arange(30))
    np.testing.assert_array_equal(run.val_indices, np.arange(30, 40))
