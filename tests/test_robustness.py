"""Thirty students typing odd values: every public function answers with a clear error or a valid result.

Each argument of each public function gets values of the wrong type, NaN, ±inf, zero, negative
and huge numbers. The call must either work, or raise a ValueError or TypeError whose message
names the argument: never a traceback from deep inside torch or NumPy, never a hang.
"""

import math
import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import epochviz as ev
from epochviz import plots

ODD_VALUES = [
    0, -1, 1, 2, 10**9, 2**70, -(2**70), 0.5, 1.5, -0.5, math.nan, math.inf, -math.inf, 1e300, -1e-300,
    True, False, None, "", "3", "moons", [], [1, 2], {}, (1,), object(), np.int64(3), np.float32(math.nan),
    torch.tensor(2), torch.tensor([1.0, 2.0]),
]  # fmt: skip

TINY = ev.moons(n=40, seed=0)
RUN = ev.train(TINY, epochs=2, batch_size=8)


class Fresh:
    """A working argument made anew for every call (resume changes the run it is given)."""

    def __init__(self, make):
        self.make = make


# (call, the keyword arguments that make it work, the arguments to fuzz one at a time)
CALLS = {
    "train": (ev.train, {"data": TINY, "epochs": 2, "batch_size": 8}, [
        "epochs", "batch_size", "lr", "optimizer", "reset", "shuffle", "drop_last", "val_fraction", "seed",
        "device", "on_epoch", "accumulate", "memory_budget_mb", "checkpoint", "track_weights", "threads", "model",
        "precision", "data", "split",
    ]),
    "moons": (ev.moons, {"n": 20}, ["n", "noise", "seed"]),
    "circles": (ev.circles, {"n": 20}, ["n", "noise", "factor", "seed"]),
    "spirals": (ev.spirals, {"n": 20}, ["n", "classes", "noise", "seed"]),
    "line": (ev.line, {"n": 20}, ["n", "slope", "intercept", "noise", "seed"]),
    "digits": (ev.digits, {"n": 20}, ["n", "seed"]),
    "dataset": (ev.dataset, {"name": "moons", "n": 20}, ["name", "n"]),
    "from_arrays": (ev.from_arrays, {"x": [[0.0], [1.0]], "y": [0, 1]}, ["x", "y", "task", "name"]),
    "train_validation_split": (ev.train_validation_split, {"n": 10, "val_fraction": 0.2, "seed": 0},
                               ["n", "val_fraction", "seed"]),
    "k_folds": (ev.k_folds, {"n": 10, "k": 3, "seed": 0}, ["n", "k", "seed"]),
    "footprint": (ev.footprint, {"model": "mlp", "data": TINY, "batch_size": 8},
                  ["model", "data", "batch_size", "optimizer"]),
    "max_batch_size": (ev.max_batch_size, {"model": "mlp", "data": TINY, "budget_mb": 1.0},
                       ["model", "data", "budget_mb", "optimizer"]),
    "cross_validate": (ev.cross_validate, {"data": TINY, "k": 2, "epochs": 1},
                       ["data", "k", "reset_between_folds", "test_fraction", "epochs"]),
    "compare_hardware": (ev.compare_hardware, {"data": TINY, "epochs": 1, "kernels": ("default",)},
                         ["data", "kernels", "timeout_s", "epochs"]),
    "sliding_windows": (ev.sliding_windows, {"run": RUN}, ["run", "width"]),
    "resume": (ev.resume, {"source": Fresh(lambda: ev.train(TINY, epochs=1, batch_size=8)), "epochs": 2},
               ["source", "epochs", "on_epoch", "device"]),
    "summarize": (ev.summarize, {"runs": RUN}, ["runs"]),
    "train_many": (ev.train_many, {"data": TINY, "variants": [{}, {"seed": 1}], "epochs": 1},
                   ["data", "variants", "epochs", "batch_size", "lr"]),
    "loss_curves": (plots.loss_curves, {"runs": RUN}, ["runs", "x", "show_steps", "show_validation", "title"]),
    "weights_over_epochs": (plots.weights_over_epochs, {"runs": RUN}, ["runs", "title"]),
    "memory_bars": (plots.memory_bars, {"footprints": [ev.footprint("mlp", TINY, 8)]}, ["footprints", "budget_mb"]),
}  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def _in_a_scratch_directory(tmp_path_factory):
    """A valid odd value can name a file (checkpoint="moons"): let it land in a scratch directory."""
    before = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("odd-arguments"))
    yield
    os.chdir(before)


CASES = [(name, argument) for name, (_, _, arguments) in CALLS.items() for argument in arguments]


@pytest.mark.parametrize(("name", "argument"), CASES, ids=[f"{n}-{a}" for n, a in CASES])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.sampled_from(ODD_VALUES))
def test_an_odd_argument_is_refused_by_name_or_works(name, argument, value):
    call, working, _ = CALLS[name]
    working = {key: given.make() if isinstance(given, Fresh) else given for key, given in working.items()}
    try:
        call(**{**working, argument: value})
    except (ValueError, TypeError) as error:
        message = str(error)
        assert argument in message or _names_a_part_of(argument, message), f"{name}({argument}={value!r}): {message}"


def _names_a_part_of(argument: str, message: str) -> bool:
    """`data` errors may name data.x / data.y; `source` errors name the checkpoint file or the run."""
    aliases = {"data": ("data", "Dataset"), "source": ("checkpoint", "Run"), "runs": ("Run",), "run": ("Run",),
               "name": ("data",), "footprints": ("Footprint", "footprint")}  # fmt: skip
    return any(alias in message for alias in aliases.get(argument, ()))


@pytest.mark.parametrize(
    "data",
    [
        ev.moons(n=1, seed=0),
        ev.from_arrays(np.random.default_rng(0).normal(size=(12, 2)), np.zeros(12, dtype=int)),  # one class
        ev.from_arrays(np.random.default_rng(0).normal(size=(3, 2)), [0.5, 1.0, -1.0]),  # three samples
    ],
    ids=["one sample", "one class", "three samples"],
)
@pytest.mark.parametrize("batch_size", [1, 1000])
def test_tiny_and_degenerate_datasets_train_or_are_refused_clearly(data, batch_size):
    try:
        run = ev.train(data, epochs=2, batch_size=batch_size, val_fraction=0.2)
    except ValueError as error:
        assert "val_fraction" in str(error) and "nothing to train on" in str(error)
        run = ev.train(data, epochs=2, batch_size=batch_size, val_fraction=0)
    assert run.completed_epochs == 2 and np.isfinite(run.steps.loss).all()
    assert run.epochs.samples_seen.iloc[-1] == 2 * len(run.train_indices)


def test_an_empty_dataset_is_refused():
    with pytest.raises(ValueError, match="empty"):
        ev.from_arrays(np.zeros((0, 2)), np.zeros(0, dtype=int))
