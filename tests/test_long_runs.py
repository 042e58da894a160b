"""A long run (100k samples × 50 epochs) stays small in memory and quick to draw."""

import pickle

import pytest

import epochviz as ev
from epochviz.plots.style import MAX_POINTS


@pytest.fixture(scope="module")
def long_run():
    return ev.train(ev.moons(n=100_000, seed=0), epochs=50, batch_size=256, lr=0.1)


def test_the_record_grows_with_steps_not_with_samples_times_epochs(long_run):
    steps, epochs = len(long_run.steps), long_run.completed_epochs
    assert steps == 50 * 313 and epochs == 50
    record, samples = len(pickle.dumps(long_run.to_state())), len(long_run.data)
    # per step: 7 numbers; per epoch: one row and the weights at its start and end (1 218 floats each);
    # once: which rows train and which validate (8 bytes per sample)
    assert record < 80 * steps + 12_000 * epochs + 10 * samples, f"{record} bytes for {steps} steps"


@pytest.mark.parametrize("x", ["epoch", "step", "samples", "seconds"])
def test_its_figure_thins_the_batches_but_keeps_every_epoch(long_run, x):
    figure = ev.plots.loss_curves(long_run, x=x)
    batches, epochs = (
        next(t for t in figure.data if t.name == name) for name in ("each batch", "train loss per epoch")
    )
    assert len(batches.y) <= MAX_POINTS + 2
    assert max(batches.y) == long_run.steps.loss.max() and min(batches.y) == long_run.steps.loss.min()
    assert list(epochs.y) == list(long_run.epochs.train_loss)
