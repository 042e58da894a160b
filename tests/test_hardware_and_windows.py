"""Epochs are hardware-independent units of work; windows of N samples are epochs too."""

import numpy as np
import pytest

import epochviz as ev


def test_the_same_training_on_different_settings_gives_the_same_epochs_but_not_the_same_seconds():
    runs = ev.compare_hardware("digits", epochs=3, batch_size=32, slowdown=4)
    labels = list(runs)
    assert labels[:2] == ["CPU · 1 thread", "CPU · 2 threads"] and labels[-1].startswith("simulated")
    reference = runs[labels[0]]
    for run in runs.values():
        assert list(run.epochs.samples_seen) == list(reference.epochs.samples_seen)
        # a second thread may split a sum differently: float32 rounding, well below 1e-6 after 3 epochs
        np.testing.assert_allclose(run.epochs.train_loss, reference.epochs.train_loss, rtol=1e-6)
    simulated = runs[labels[-1]]
    np.testing.assert_array_equal(simulated.steps.loss, reference.steps.loss)
    np.testing.assert_allclose(simulated.epochs.elapsed_s, 4 * reference.epochs.elapsed_s)


def test_compare_hardware_chooses_the_devices():
    with pytest.raises(ValueError, match="device"):
        ev.compare_hardware("moons", device="cpu")


@pytest.mark.parametrize("shuffle", [False, True])
def test_windows_ending_at_epoch_boundaries_are_the_epochs(shuffle):
    run = ev.train("moons", epochs=5, batch_size=24, shuffle=shuffle)
    windows = ev.sliding_windows(run)
    boundaries = windows[windows.at_boundary]
    assert list(boundaries.samples_seen) == list(run.epochs.samples_seen)
    np.testing.assert_allclose(boundaries.window_loss, run.epochs.train_loss, rtol=1e-12)
    assert (boundaries.coverage == 1.0).all()


def test_without_shuffling_every_window_is_a_complete_pass_and_with_shuffling_some_are_not():
    fixed = ev.sliding_windows(ev.train("moons", epochs=4, batch_size=10, shuffle=False))
    assert len(fixed) == 4 * 32 - 31 and (fixed.coverage == 1.0).all()
    shuffled = ev.sliding_windows(ev.train("moons", epochs=4, batch_size=10, shuffle=True))
    assert shuffled.coverage.min() < 0.9


def test_window_loss_is_the_mean_over_exactly_width_samples():
    run = ev.train("moons", epochs=2, batch_size=30, shuffle=False)
    windows = ev.sliding_windows(run, width=45)
    steps = run.steps
    per_sample = np.repeat(steps.loss.to_numpy(), steps.batch_size.to_numpy())
    for end, loss in zip(windows.samples_seen, windows.window_loss, strict=True):
        assert loss == pytest.approx(per_sample[end - 45 : end].mean(), rel=1e-12)
    assert not windows.at_boundary.any()


def test_the_summary_table_says_which_runs_continue_between_epochs():
    runs = {mode: ev.train("moons", epochs=3, reset=mode, batch_size=64) for mode in ("never", "weights")}
    table = ev.summarize(runs)
    assert list(table.run) == ["never", "weights"]
    assert list(table.weights_continue) == [True, False]
    assert list(table.samples_per_epoch) == [320, 320] and list(table.steps_per_epoch) == [5, 5]
    assert table.last_train_loss.iloc[0] == runs["never"].epochs.train_loss.iloc[-1]
    assert not table.diverged.any()
