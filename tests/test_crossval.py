"""Cross-validation resets per fold; not resetting leaks validation samples into training."""

import numpy as np
import pytest

import epochviz as ev

# digits overfits a small sample quickly: the leak is plain to see
SETTINGS = {"k": 5, "epochs": 30, "batch_size": 16, "lr": 0.3, "seed": 0}


@pytest.fixture(scope="module")
def fair():
    return ev.cross_validate(ev.digits(n=300), reset_between_folds=True, **SETTINGS)


@pytest.fixture(scope="module")
def leaky():
    return ev.cross_validate(ev.digits(n=300), reset_between_folds=False, **SETTINGS)


def test_every_fold_starts_from_the_same_initial_weights_when_reset(fair):
    first = fair.runs[0].params(1, "start")
    for run in fair.runs[1:]:
        np.testing.assert_array_equal(run.params(1, "start"), first)


def test_without_reset_each_fold_starts_where_the_previous_one_ended(leaky):
    for before, after in zip(leaky.runs, leaky.runs[1:], strict=False):
        np.testing.assert_array_equal(after.params(1, "start"), before.params(before.completed_epochs, "end"))


def test_folds_validate_disjoint_rows_and_never_touch_the_test_rows(fair):
    validated = [set(run.val_indices) for run in fair.runs]
    assert sum(map(len, validated)) == len(set().union(*validated))
    for run in fair.runs:
        assert not set(run.train_indices) & set(fair.test_indices)
        assert not set(run.val_indices) & set(fair.test_indices)
        assert not set(run.train_indices) & set(run.val_indices)


def test_leaking_folds_look_better_on_validation_than_the_held_out_test_says(fair, leaky):
    later = leaky.folds.iloc[1:]
    assert (later.val_loss < 0.5 * later.test_loss).all(), leaky.folds
    assert leaky.optimism > fair.optimism + 0.1
    assert list(fair.folds.columns) == ["fold", "train_loss", "val_loss", "val_accuracy", "test_loss", "test_accuracy"]


def test_cross_validation_refuses_arguments_it_sets_itself():
    with pytest.raises(ValueError, match="split or val_fraction"):
        ev.cross_validate("moons", val_fraction=0.3)
    with pytest.raises(ValueError, match="k must be"):
        ev.cross_validate("moons", k=1)
