"""The record of a run is plain data: typed, frozen settings, and copies that share nothing with it."""

import ast
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import epochviz as ev
from epochviz import checkpoint
from epochviz.models import flat_parameters

PACKAGE = Path(ev.__file__).parent
TINY = ev.moons(n=40, seed=0)
SETTINGS = {"epochs": 2, "batch_size": 8, "lr": 0.05, "optimizer": "momentum", "reset": "optimizer", "seed": 3}


def test_run_config_is_the_checked_settings_train_was_given_and_frozen():
    run = ev.train(TINY, **SETTINGS)
    assert isinstance(run.config, ev.TrainConfig)
    assert run.config == ev.TrainConfig(**SETTINGS)  # the oracle: what TrainConfig makes of the same arguments
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.config.lr = 1.0


def test_resuming_gives_the_run_new_settings_and_leaves_the_old_ones_as_they_were():
    run = ev.train(TINY, **SETTINGS)
    before = run.config
    assert ev.resume(run, epochs=4) is run
    assert run.config == dataclasses.replace(before, epochs=4) and before.epochs == 2


def test_the_settings_print_one_a_line_and_read_back_as_the_same_settings():
    config = ev.TrainConfig(**SETTINGS)
    shown = repr(config)
    assert len(shown.splitlines()) == len(dataclasses.fields(config)) + 2  # "TrainConfig(", a line each, ")"
    assert {"    lr=0.05,", "    reset='optimizer',", "    checkpoint=None,"} <= set(shown.splitlines())
    assert eval(shown, {"TrainConfig": ev.TrainConfig}) == config


def test_your_own_module_is_kept_as_given_and_shown_by_its_class_name():
    module = ev.mlp(2, 2, hidden=(4,))
    run = ev.train(TINY, model=module, epochs=1)
    assert run.config.model is module and run.config.model_name == "Sequential"
    assert "model=<your own Sequential module>," in repr(run.config) and "model='Sequential'" in repr(run)
    assert run.config.as_dict()["model"] == "Sequential"


def test_a_run_refuses_settings_that_are_not_a_trainconfig():
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        ev.Run(config={"epochs": 1}, data=TINY, train_indices=np.arange(30), val_indices=np.arange(30, 40))


def test_a_checkpoint_stores_the_settings_as_plain_values_and_loads_them_back(tmp_path):
    path = tmp_path / "run.pt"
    run = ev.train(TINY, checkpoint=path, **SETTINGS)
    stored = checkpoint.read(path)["run"]["config"]  # the payload, as torch.load(weights_only=True) reads it
    assert stored == run.config.as_dict()
    assert all(value is None or type(value) in (str, int, float, bool) for value in stored.values())
    loaded = checkpoint.load(path)["run"].config
    assert loaded == dataclasses.replace(run.config, device="cpu", checkpoint=None)
    resumed = ev.resume(path, epochs=3)
    assert resumed.config == dataclasses.replace(run.config, epochs=3, checkpoint=str(path))


def test_a_checkpoint_of_your_own_module_needs_the_module_and_says_so(tmp_path):
    path = tmp_path / "custom.pt"
    ev.train(TINY, model=ev.mlp(2, 2, hidden=(4,)), epochs=1, checkpoint=path)
    with pytest.raises(ValueError, match=r"custom\.pt.*your own module Sequential; pass model=") as refused:
        checkpoint.load(path)
    assert not isinstance(refused.value, ev.CheckpointError)  # the file is sound; the argument is missing
    module = ev.mlp(2, 2, hidden=(4,))
    assert checkpoint.load(path, model=module)["run"].config.model is module


# --- copies share nothing that can change ---------------------------------------------------------

COPIES = {
    "first(2) of 2": lambda run: run.first(2),
    "first(1) of 2": lambda run: run.first(1),
    "first(0)": lambda run: run.first(0),
}


def _snapshot(run):
    return {
        "steps": run.steps.copy(),
        "epochs": run.epochs.copy(),
        "rows": (run.train_indices.copy(), run.val_indices.copy()),
        "params": [run.params(k, at) for k in range(1, run.completed_epochs + 1) for at in ("start", "end")],
        "weights": flat_parameters(run.model).numpy().copy(),
        "step_weights": run.step_weights().copy(),
        "config": run.config,
    }


def _assert_unchanged(run, snapshot):
    assert run.steps.equals(snapshot["steps"]) and run.epochs.equals(snapshot["epochs"])
    for now, before in zip((run.train_indices, run.val_indices), snapshot["rows"], strict=True):
        np.testing.assert_array_equal(now, before)
    now = [run.params(k, at) for k in range(1, run.completed_epochs + 1) for at in ("start", "end")]
    assert len(now) == len(snapshot["params"]) and all(map(np.array_equal, now, snapshot["params"]))
    np.testing.assert_array_equal(flat_parameters(run.model).numpy(), snapshot["weights"])
    np.testing.assert_array_equal(run.step_weights(), snapshot["step_weights"])
    assert run.config == snapshot["config"]


@pytest.mark.parametrize("make", COPIES.values(), ids=COPIES.keys())
def test_a_copy_stays_as_it_was_while_its_run_trains_on(make):
    run = ev.train(TINY, track_weights=True, **SETTINGS)
    copied = make(run)
    before = _snapshot(copied)
    ev.resume(run, epochs=4)
    _assert_unchanged(copied, before)


@pytest.mark.parametrize("make", COPIES.values(), ids=COPIES.keys())
def test_changing_a_copy_leaves_its_run_as_it_was(make):
    run = ev.train(TINY, track_weights=True, **SETTINGS)
    before = _snapshot(run)
    copied = make(run)
    copied.train_indices[:] = 0
    copied.val_indices[:] = 0
    copied.steps.loc[:, "loss"] = math.nan
    copied.epochs.loc[:, "train_loss"] = math.nan
    with torch.no_grad():
        for parameter in copied.model.parameters():
            parameter.zero_()
    if copied.completed_epochs:
        copied.add_steps(3, np.array([8]), np.array([0.5]), np.array([9.0]), copied.step_weights()[:1])
    _assert_unchanged(run, before)


def test_a_view_holds_the_weights_its_epochs_ended_with():
    run = ev.train(TINY, **SETTINGS)
    for k in range(run.completed_epochs + 1):
        expected = run.params(k, "end") if k else run.params(1, "start")
        np.testing.assert_array_equal(flat_parameters(run.first(k).model).numpy(), expected)


def test_only_a_run_fresh_from_train_can_resume():
    run = ev.train(TINY, **SETTINGS)
    assert run.can_resume
    assert not any(make(run).can_resume for make in COPIES.values())
    assert not ev.train_many(TINY, [{}], epochs=1)[0].can_resume
    assert not ev.train(TINY, epochs=2, lr=1e6).can_resume  # it diverged


# --- the package reads settings by name, and the loop's state stays in train.py --------------------


def _sources():
    return {path.relative_to(PACKAGE).as_posix(): ast.parse(path.read_text()) for path in PACKAGE.rglob("*.py")}


def _named_config(node) -> bool:
    return (isinstance(node, ast.Name) and node.id == "config") or (
        isinstance(node, ast.Attribute) and node.attr == "config"
    )


def test_no_module_reads_settings_by_string_key():
    found = []
    for name, tree in _sources().items():
        for node in ast.walk(tree):
            by_key = isinstance(node, ast.Subscript) and _named_config(node.value)
            by_get = (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and _named_config(node.func.value)
            )
            if by_key or by_get:
                found.append(f"{name}:{node.lineno}")
    assert not found, f"read settings as attributes (run.config.lr), not by key: {found}"


def test_only_train_py_reaches_into_the_loops_state():
    found = []
    for name, tree in _sources().items():
        if name in ("train.py", "run.py"):  # the loop that uses it, and the record that holds it
            continue
        found += [
            f"{name}:{node.lineno}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr in ("training_state", "_training")
        ]
    assert not found, f"ask run.can_resume instead of reading the loop's state: {found}"


def test_best_epochs_finds_the_lowest_validation_loss_of_each_run():
    runs = ev.train_many("moons", [{"seed": seed} for seed in range(3)], epochs=15, lr=0.5)
    table = ev.best_epochs({f"seed {run.config.seed}": run for run in runs})
    assert table.run.tolist() == ["seed 0", "seed 1", "seed 2"]
    for run, row in zip(runs, table.itertuples(), strict=True):
        losses = run.epochs.val_loss.to_numpy()
        assert row.best_epoch == np.argmin(losses) + 1 and row.best_val_loss == losses.min()
        assert row.last_val_loss == losses[-1] and row.first_val_accuracy == run.epochs.val_accuracy.iloc[0]
        assert row.best_val_accuracy == run.epochs.val_accuracy.iloc[row.best_epoch - 1]
    assert (table.best_val_loss <= table.last_val_loss).all()
    with pytest.raises(ValueError, match="has no validation loss: train it with val_fraction > 0"):
        ev.best_epochs(ev.train("moons", epochs=2, val_fraction=0))
    with pytest.raises(TypeError, match="runs must be a Run"):
        ev.best_epochs([])
