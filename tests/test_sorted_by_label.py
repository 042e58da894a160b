"""A dataset sorted by label stays sorted for the loop: unshuffled, each epoch sweeps one class, then the next."""

import numpy as np
import pytest
import torch

import epochviz as ev
from epochviz.data import split_rows
from epochviz.plots import sample_orders


def _epoch_labels(run, epoch):
    """The class of each training sample in the order epoch `epoch` visited them."""
    return run.data.y[run.train_indices][run.sample_order(epoch)].numpy()


ANY_CLASSES = [
    ev.moons(n=90),
    ev.spirals(n=90, classes=3),
    ev.digits(n=200),
    ev.from_arrays(np.arange(12.0), [2, 0, 1] * 4),
]


@pytest.mark.parametrize("data", ANY_CLASSES, ids=lambda data: data.name)
def test_sorted_by_label_keeps_every_sample_and_puts_the_classes_in_order(data):
    ordered = data.sorted_by_label()
    labels = ordered.y.numpy()
    assert (np.diff(labels) >= 0).all() and ordered.ordered and not data.ordered
    assert ordered.name == f"{data.name}, sorted by label" and ordered.classes == data.classes
    for label in range(len(data.classes)):  # the same samples of each class, in the order they had
        torch.testing.assert_close(ordered.x[ordered.y == label], data.x[data.y == label], rtol=0, atol=0)


def test_without_shuffling_every_epoch_visits_the_training_samples_in_label_order():
    data = ev.spirals(n=150, classes=3).sorted_by_label()
    in_order = ev.train(data, epochs=2, shuffle=False)
    for epoch in (1, 2):
        labels = _epoch_labels(in_order, epoch)
        assert (np.diff(labels) >= 0).all() and set(labels) == {0, 1, 2}
    (batched,) = ev.train_many(data, [{}], epochs=1, shuffle=False)
    assert (np.diff(_epoch_labels(batched, 1)) >= 0).all()
    rows = np.random.default_rng(0).permutation(len(data))  # an explicit split in a random order is put in order too
    explicit = ev.train(data, epochs=1, shuffle=False, split=(rows[:100], rows[100:]))
    assert (np.diff(_epoch_labels(explicit, 1)) >= 0).all()
    shuffled = _epoch_labels(ev.train(data, epochs=1), 1)
    assert (np.diff(shuffled) < 0).sum() > 20  # shuffling mixes the classes again


def test_a_dataset_in_random_order_keeps_the_split_it_always_had():
    data = ev.moons()
    for split in (None, (np.arange(300, 0, -1), np.arange(301, 400))):
        train_rows, val_rows = split_rows(data, val_fraction=0.2, seed=3, split=split)
        expected = ev.train_validation_split(400, 0.2, seed=3) if split is None else split
        np.testing.assert_array_equal(train_rows, expected[0])
        np.testing.assert_array_equal(val_rows, expected[1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shuffling_sorted_data_makes_the_first_epoch_far_better(seed):
    data = ev.moons(seed=seed).sorted_by_label()
    first = {
        shuffle: ev.train(data, epochs=1, optimizer="adam", lr=0.01, shuffle=shuffle, seed=seed).epochs.val_accuracy[0]
        for shuffle in (True, False)
    }
    # unshuffled, epoch 1 ends on 150-odd samples of class 1 alone: the network says "1" for nearly everything
    assert first[False] < 0.6 and first[True] > first[False] + 0.25


def test_the_sample_order_picture_shows_the_classes_each_batch_holds():
    data = ev.moons().sorted_by_label()
    runs = {"not shuffled": ev.train(data, epochs=2, shuffle=False), "shuffled": ev.train(data, epochs=2)}
    in_order, shuffled = sample_orders(runs, colour_by="class").data
    for run, heatmap in zip(runs.values(), (in_order, shuffled), strict=True):
        for epoch, row in enumerate(heatmap.z, start=1):
            np.testing.assert_array_equal(row, _epoch_labels(run, epoch))
    first_of_class_1 = int(np.argmax(in_order.z[0] == 1))
    assert (in_order.z[0][:first_of_class_1] == 0).all() and (in_order.z[0][first_of_class_1:] == 1).all()
    assert list(in_order.colorbar.ticktext) == ["0", "1"] and "class" in in_order.hovertemplate
    by_sample = sample_orders(runs).data[0]
    np.testing.assert_array_equal(by_sample.z, np.tile(np.arange(320), (2, 1)))  # the default still numbers samples


def test_a_checkpoint_keeps_the_dataset_sorted(tmp_path):
    path = tmp_path / "sorted.pt"
    ev.train(ev.moons().sorted_by_label(), epochs=1, shuffle=False, checkpoint=str(path))
    resumed = ev.resume(str(path), epochs=2)
    assert resumed.data.ordered and resumed.data.name == "moons, sorted by label"
    assert (np.diff(_epoch_labels(resumed, 2)) >= 0).all()


def test_sorting_by_label_and_colouring_by_class_are_refused_where_they_mean_nothing():
    with pytest.raises(
        ValueError,
        match=r"sorted_by_label needs a classification dataset, with a class label per sample; .line. is a regression",
    ):
        ev.line().sorted_by_label()
    moons = ev.moons(n=20)
    with pytest.raises(TypeError, match=r"data.ordered must be True or False; got 'yes'"):
        ev.Dataset(moons.x, moons.y, moons.task, moons.name, moons.classes, ordered="yes")
    with pytest.raises(ValueError, match=r"colour_by must be one of .*'class'.*; got 'label'"):
        sample_orders(ev.train(moons, epochs=1), colour_by="label")
    with pytest.raises(ValueError, match=r"colour_by='class' needs classification runs; 'line' trained on 'line'"):
        sample_orders({"line": ev.train("line", epochs=1)}, colour_by="class")
