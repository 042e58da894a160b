"""Training K models together gives each the very run it would get alone (the oracle: `train` itself)."""

import numpy as np
import pytest
import torch

import epochviz as ev
from epochviz.batched import train_many
from epochviz.models import flat_parameters
from epochviz.policies import RESETS

MOONS = ev.moons(n=160, seed=2)
LINE = ev.line(n=120, seed=1)
LR = {"sgd": 0.2, "momentum": 0.05, "adam": 0.01}


def assert_same_run(batched: ev.Run, alone: ev.Run) -> None:
    """Same config, split, steps, epochs and weights, up to float rounding; only the clock differs."""
    assert batched.config == alone.config
    np.testing.assert_array_equal(batched.train_indices, alone.train_indices)
    np.testing.assert_array_equal(batched.val_indices, alone.val_indices)
    assert batched.diverged_at == alone.diverged_at
    assert list(batched.steps.columns) == list(alone.steps.columns)
    assert list(batched.epochs.columns) == list(alone.epochs.columns)
    counts = ["epoch", "step", "batch", "batch_size", "samples_seen"]
    np.testing.assert_array_equal(batched.steps[counts], alone.steps[counts])
    # batched matrix products add in another order than one model's: float32 rounding, a few ulps per step,
    # on every kernel path; any real difference in training (a step, a reset, a batch) is orders larger
    np.testing.assert_allclose(batched.steps.loss, alone.steps.loss, rtol=1e-5)
    assert batched.completed_epochs == alone.completed_epochs
    if alone.completed_epochs:
        numbers = [column for column in alone.epochs.columns if column != "elapsed_s"]
        np.testing.assert_allclose(batched.epochs[numbers], alone.epochs[numbers], rtol=1e-5, atol=1e-7)
    for epoch in range(1, alone.completed_epochs + 1):
        for at in ("start", "end"):
            np.testing.assert_allclose(batched.params(epoch, at), alone.params(epoch, at), rtol=1e-5, atol=1e-6)


def assert_each_equals_train(data, variants, **shared) -> list[ev.Run]:
    runs = train_many(data, variants, **shared)
    assert len(runs) == len(variants)
    for variant, run in zip(variants, runs, strict=True):
        assert_same_run(run, ev.train(data, **{**shared, **variant}))
    return runs


def test_every_reset_policy_and_optimizer_with_its_own_seed_and_lr_matches_train():
    variants = [
        {"reset": reset, "optimizer": optimizer, "seed": seed, "lr": LR[optimizer] * (1 + seed)}
        for seed, reset in enumerate(RESETS)
        for optimizer in ("sgd", "momentum", "adam")
    ]
    runs = assert_each_equals_train(MOONS, variants, epochs=3, batch_size=16)
    resets = {run.config.reset: run for run in runs if run.config.optimizer == "momentum"}
    np.testing.assert_array_equal(resets["weights"].params(3, "start"), resets["weights"].params(1, "start"))
    assert not np.array_equal(resets["never"].params(3, "start"), resets["never"].params(1, "start"))


@pytest.mark.parametrize("shuffle", [True, False])
def test_every_policy_with_every_optimizer_matches_train_in_either_sample_order(shuffle):
    # models sharing an optimizer and a learning rate share torch's optimizer over their rows: mixing
    # policies that clear it with one that does not, and kinds, checks that each keeps its own state
    variants = [{"reset": reset, "optimizer": optimizer, "lr": LR[optimizer]} for reset in RESETS for optimizer in LR]
    runs = assert_each_equals_train(MOONS, variants, epochs=3, batch_size=24, shuffle=shuffle, seed=3)
    last = {(run.config.reset, run.config.optimizer): run.epochs.train_loss.iloc[-1] for run in runs}
    assert last["never", "sgd"] == last["optimizer", "sgd"]  # plain SGD keeps no state: clearing it changes nothing
    assert len(set(last.values())) == len(variants) - 1  # every other pair trains differently


@pytest.mark.parametrize("val_fraction", [0.25, 0])
def test_regression_with_a_linear_model_matches_train_with_and_without_validation(val_fraction):
    variants = [{"seed": 0}, {"seed": 4, "lr": 0.1, "optimizer": "momentum", "reset": "optimizer"}]
    runs = assert_each_equals_train(LINE, variants, model="linear", epochs=3, lr=0.05, val_fraction=val_fraction)
    assert [run.config.lr for run in runs] == [0.05, 0.1]  # a variant overrides what is shared
    assert runs[0].params(1, "start").shape == (2,)  # slope and intercept
    assert np.isnan(runs[0].epochs.train_accuracy).all()
    assert np.isnan(runs[0].epochs.val_loss).all() == (val_fraction == 0)


def test_a_diverging_model_stops_where_train_stops_it_and_the_others_go_on():
    variants = [{"lr": 0.1}, {"lr": 1e6}, {"lr": 0.1, "seed": 1}]
    runs = assert_each_equals_train(MOONS, variants, epochs=3)
    assert runs[1].diverged and runs[1].completed_epochs < 3
    assert not runs[0].diverged and runs[0].completed_epochs == runs[2].completed_epochs == 3


def test_drop_last_and_one_split_per_variant_match_train():
    folds = ev.k_folds(len(MOONS), 4, seed=0)  # 160 rows: four equal folds
    variants = [{"split": fold, "reset": "weights" if number % 2 else "never"} for number, fold in enumerate(folds)]
    runs = assert_each_equals_train(MOONS, variants, epochs=2, batch_size=32, drop_last=True, optimizer="adam", lr=0.01)
    assert set(runs[0].steps.batch_size) == {32}  # 120 training rows: the last 24 are dropped


def test_each_run_holds_its_final_model_and_reports_each_epoch():
    seen = []
    runs = train_many(MOONS, [{"seed": 0}, {"seed": 1}], epochs=2, on_epoch=lambda run: seen.append(run.config.seed))
    assert seen == [0, 1, 0, 1]
    for run in runs:
        np.testing.assert_array_equal(flat_parameters(run.model).numpy(), run.params(2, "end"))
    with pytest.raises(ValueError, match="cannot resume"):
        ev.resume(runs[0], epochs=3)


BAD_ARGUMENTS = [
    ({"accumulate": 2}, [{}], ValueError, "accumulate"),
    ({"memory_budget_mb": 1.0}, [{}], ValueError, "memory_budget_mb"),
    ({"checkpoint": "run.pt"}, [{}], ValueError, "checkpoint"),
    ({"track_weights": True}, [{}], ValueError, "track_weights"),
    ({"model": torch.nn.Linear(2, 2)}, [{}], ValueError, "model"),
    ({}, [{"epochs": 3}], ValueError, "epochs"),
    ({}, [{"lr": -1.0}], ValueError, "lr"),
    ({}, [{"optimizer": "rmsprop"}], ValueError, "optimizer"),
    ({}, [], TypeError, "variants"),
    ({}, {"seed": 1}, TypeError, "variants"),
    ({"on_epoch": 3}, [{}], TypeError, "on_epoch"),
    ({"batch_size": 200, "drop_last": True}, [{}], ValueError, "drop_last"),
    ({}, [{"split": (np.arange(100), np.arange(100, 160))}, {"split": (np.arange(90), np.arange(90, 160))}],
     ValueError, "split"),
]  # fmt: skip


@pytest.mark.parametrize(("shared", "variants", "error", "name"), BAD_ARGUMENTS)
def test_bad_arguments_are_refused_by_name(shared, variants, error, name):
    with pytest.raises(error, match=name):
        train_many(MOONS, variants, **shared)
