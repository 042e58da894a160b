"""`train_parallel`: W worker processes share each epoch through torch.distributed (gloo, 127.0.0.1).

Each call starts real processes (a few seconds each), so every test trains a couple of epochs.
"""

import math
import os
from pathlib import Path

import numpy as np
import pytest

import epochviz as ev


def worker_processes(mark: str) -> list[int]:
    """PIDs of the still-running processes whose environment holds EPOCHVIZ_TEST_MARK=`mark`.

    Workers inherit the caller's environment, so a mark set by a test finds that test's workers
    and nobody else's (a notebook training in parallel while nbval runs beside pytest has its own).
    """
    wanted = f"EPOCHVIZ_TEST_MARK={mark}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if wanted in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:  # it ended while we looked, or is not ours to read
            pass
    return found


@pytest.fixture(scope="module")
def two_workers() -> ev.Run:
    return ev.train_parallel("moons", workers=2, batch_size=16, epochs=3, seed=1)


def test_two_workers_follow_one_worker_with_their_combined_batch(two_workers):
    one = ev.train("moons", batch_size=32, epochs=3, seed=1)
    assert len(two_workers.steps) == len(one.steps) == 3 * 10
    np.testing.assert_allclose(two_workers.steps.loss, one.steps.loss, rtol=1e-5)
    np.testing.assert_allclose(two_workers.epochs.val_loss, one.epochs.val_loss, rtol=1e-5)
    np.testing.assert_allclose(two_workers.params(3, "end"), one.params(3, "end"), atol=1e-5)
    assert two_workers.config.batch_size == 32 and two_workers.workers == 2


def test_every_sample_is_used_once_per_epoch_across_the_workers(two_workers):
    n = len(two_workers.train_indices)
    for epoch in (1, 2, 3):
        shares = two_workers.worker_orders[epoch]
        assert shares.shape == (2, n // 2)  # each worker sees N/W samples
        assert sorted(shares.reshape(-1)) == list(range(n))
        one_worker = ev.train("moons", epochs=3, seed=1)  # its order for any epoch: it depends on (seed, epoch) alone
        np.testing.assert_array_equal(two_workers.sample_order(epoch), one_worker.sample_order(epoch))
    assert not np.array_equal(two_workers.sample_order(1), two_workers.sample_order(2))  # set_epoch reshuffles


def test_forgetting_set_epoch_repeats_one_order_every_epoch():
    bug = ev.train_parallel("moons", workers=2, batch_size=16, epochs=3, set_epoch=False)
    np.testing.assert_array_equal(bug.sample_order(1), bug.sample_order(2))
    np.testing.assert_array_equal(bug.sample_order(1), bug.sample_order(3))


def test_steps_divide_by_workers_and_the_sampler_pads_uneven_shares():
    run = ev.train_parallel("moons", workers=3, batch_size=16, epochs=1)
    n = len(run.train_indices)  # 320: not a multiple of 3
    per_worker = math.ceil(n / 3)
    assert run.steps_per_epoch == len(run.steps) == math.ceil(n / (3 * 16))
    assert int(run.epochs.samples_seen.iloc[0]) == 3 * per_worker  # the padding is counted, not hidden
    visits = np.bincount(run.sample_order(1), minlength=n)
    assert visits.min() == 1 and (visits == 2).sum() == 3 * per_worker - n


@pytest.mark.parametrize("stop", [RuntimeError("a plot failed"), KeyboardInterrupt()])
def test_no_worker_outlives_an_error_or_an_interrupt(stop, monkeypatch):
    mark = f"{os.getpid()}-{type(stop).__name__}"
    monkeypatch.setenv("EPOCHVIZ_TEST_MARK", mark)
    seen = []

    def fail(run):
        seen.extend(worker_processes(mark))  # the workers are running now: the check can see them
        raise stop

    with pytest.raises(type(stop)):
        ev.train_parallel("moons", workers=2, batch_size=16, epochs=5, on_epoch=fail)
    assert len(seen) == 2
    assert worker_processes(mark) == []


def test_settings_are_checked_before_any_process_starts():
    with pytest.raises(ValueError, match="workers"):
        ev.train_parallel("moons", workers=0)
    with pytest.raises(TypeError, match="built-in model"):
        ev.train_parallel("moons", model=ev.mlp(2, 2))
    with pytest.raises(TypeError, match="set_epoch"):
        ev.train_parallel("moons", set_epoch="yes")
