"""The loss a progress bar reports: a running mean of the epoch's batches that restarts at every epoch."""

import numpy as np
import pytest

import epochviz as ev
from epochviz.plots import reported_loss, running_average


def test_the_running_average_restarts_every_epoch_and_ends_at_the_epochs_training_loss():
    run = ev.train("moons", epochs=4, batch_size=48)  # 7 steps an epoch, the last one smaller
    average, losses, sizes = running_average(run), run.steps["loss"].to_numpy(), run.steps["batch_size"].to_numpy()
    per_epoch = run.steps_per_epoch
    for epoch in range(4):
        first = epoch * per_epoch
        assert average[first] == losses[first], "an epoch's first report is its first batch alone"
        last = first + per_epoch - 1
        by_hand = (losses[first : last + 1] * sizes[first : last + 1]).sum() / sizes[first : last + 1].sum()
        assert average[last] == pytest.approx(by_hand) == pytest.approx(run.epochs.train_loss[epoch])


def test_the_reported_loss_figure_shows_the_true_and_the_printed_loss_with_epoch_bands():
    run = ev.train("moons", epochs=3)
    figure = reported_loss(run)
    true, printed = figure.data
    np.testing.assert_array_equal(true.y, run.steps["loss"])
    np.testing.assert_array_equal(printed.y, running_average(run))
    assert len(figure.layout.shapes) == 3
    with pytest.raises(TypeError, match="run must be a Run"):
        reported_loss([run])
