"""Datasets, splits and orders are seeded, sized and checked."""

import numpy as np
import pytest
import torch

import epochviz as ev


@pytest.mark.parametrize("name", sorted(ev.data.GENERATORS))
def test_every_dataset_is_seeded_sized_and_well_formed(name):
    sized = {"n": 120} if name != "digits" else {"n": 300}
    first, again, other = (
        ev.dataset(name, seed=1, **sized),
        ev.dataset(name, seed=1, **sized),
        ev.dataset(name, seed=2, **sized),
    )
    assert len(first) == sized["n"] and first.x.dtype == torch.float32 and first.x.ndim == 2
    torch.testing.assert_close(first.x, again.x, rtol=0, atol=0)
    assert not torch.equal(first.x, other.x)
    if first.task == "classification":
        assert set(first.y.unique().tolist()) <= set(range(len(first.classes)))
    else:
        assert first.y.dtype == torch.float32


def test_digits_is_the_real_bundled_dataset():
    data = ev.digits()
    assert len(data) == 1797 and data.features == 64 and len(data.classes) == 10
    assert float(data.x.min()) >= 0.0 and float(data.x.max()) <= 1.0


def test_line_follows_its_slope_and_intercept():
    data = ev.line(n=2000, slope=3.0, intercept=0.5, noise=0.1, seed=0)
    slope, intercept = np.polyfit(data.x[:, 0].numpy(), data.y.numpy(), 1)
    assert slope == pytest.approx(3.0, abs=0.02) and intercept == pytest.approx(0.5, abs=0.02)


def test_the_split_is_disjoint_complete_and_seeded():
    train_rows, val_rows = ev.train_validation_split(101, 0.3, seed=4)
    assert len(val_rows) == 30 and len(train_rows) == 71
    assert sorted(np.concatenate([train_rows, val_rows])) == list(range(101))
    again = ev.train_validation_split(101, 0.3, seed=4)
    np.testing.assert_array_equal(train_rows, again[0])
    with pytest.raises(ValueError, match="leaves nothing to train on"):
        ev.train_validation_split(1, 0.5, seed=0)


def test_k_folds_validate_every_row_exactly_once():
    folds = ev.k_folds(23, 4, seed=0)
    validated = np.concatenate([val for _, val in folds])
    assert sorted(validated) == list(range(23))
    for train_rows, val_rows in folds:
        assert not set(train_rows) & set(val_rows) and len(train_rows) + len(val_rows) == 23
    with pytest.raises(ValueError, match="k must be"):
        ev.k_folds(5, 6, seed=0)


def test_from_arrays_guesses_the_task_and_subset_keeps_it():
    classes = ev.from_arrays(np.random.rand(6, 3), [0, 1, 2, 0, 1, 2])
    assert classes.task == "classification" and classes.classes == ("0", "1", "2")
    values = ev.from_arrays([1.0, 2.0, 3.0], [0.5, 1.5, 2.5])
    assert values.task == "regression" and values.features == 1
    part = classes.subset([5, 0])
    assert part.y.tolist() == [2, 0] and part.classes == classes.classes


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: ev.moons(n=0), "n"),
        (lambda: ev.moons(noise=-1), "noise"),
        (lambda: ev.spirals(classes=1), "classes"),
        (lambda: ev.digits(n=5000), "n"),
        (lambda: ev.dataset("imagenet"), "data"),
    ],
)
def test_generators_refuse_bad_arguments_by_name(call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call()
