"""Are epoch boundaries special? Sliding windows of one epoch's worth of samples.

An epoch is one pass over the training samples. When the data is not shuffled, *any* N
consecutive samples seen (N = the training-set size) are also one complete pass: every
sample exactly once. So a window of N samples ending anywhere is as much "an epoch" as the
windows that end at the fixed boundaries. With shuffling, a window that straddles a boundary
may see some samples twice and miss others: its `coverage` drops below 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import checks
from .run import Run


def sliding_windows(run: Run, width: int | None = None) -> pd.DataFrame:
    """The mean training loss over every window of `width` consecutive samples seen.

    One row per optimizer step whose end closes a full window: `samples_seen` (where the
    window ends), `window_loss`, `coverage` (share of distinct training samples inside the
    window; 1.0 means a complete pass) and `at_boundary` (the window is exactly an epoch).
    `width` defaults to one epoch's worth of samples. Each sample counts with its batch's mean
    loss, which is all a run records.

    >>> import epochviz as ev
    >>> run = ev.train("moons", epochs=4, shuffle=False)
    >>> windows = sliding_windows(run)
    >>> bool(windows.coverage.eq(1.0).all())
    True

    What to notice: where a window ends on an epoch boundary, its loss equals that epoch's
    `train_loss`; the windows in between are just as complete.
    """
    if not isinstance(run, Run):
        raise TypeError(f"run must be a Run (from epochviz.train); got {type(run).__name__}.")
    steps = run.steps
    # samples in one full epoch, from the run's settings: its epoch 1 may have diverged part way, or never begun
    per_epoch = min(len(run.train_indices), run.steps_per_epoch * run.config.batch_size)
    width = per_epoch if width is None else checks.whole("width", width, minimum=1, maximum=checks.MAX_SAMPLES)
    ends = steps.samples_seen.to_numpy()
    # every sample carries its batch's mean loss, so the running total grows linearly within a batch
    totals = np.concatenate([[0.0], np.cumsum(steps.loss.to_numpy() * steps.batch_size.to_numpy())])
    closes = ends >= width
    ends = ends[closes]
    window_loss = totals[1:][closes] - np.interp(ends - width, np.concatenate([[0], steps.samples_seen]), totals)
    frame = pd.DataFrame({
        "samples_seen": ends,
        "window_loss": window_loss / width,
        "coverage": _coverage(_samples_in_order(run), ends, width, len(run.train_indices)),
        "at_boundary": np.isin(ends, run.epochs.samples_seen) & (width == per_epoch),
    })  # fmt: skip
    frame.attrs["width"] = width
    return frame


def _samples_in_order(run: Run) -> np.ndarray:
    """Which training sample each position of the run's sample stream was (epoch after epoch)."""
    seen = run.steps.groupby("epoch", sort=True).batch_size.sum()
    orders = (run.sample_order(epoch)[:count] for epoch, count in seen.items())
    return np.concatenate([np.zeros(0, dtype=np.int64), *orders])  # empty for a run with no steps


def _coverage(stream: np.ndarray, ends: np.ndarray, width: int, n: int) -> np.ndarray:
    """For each window stream[end − width : end], the share of the n samples it contains."""
    positions = np.arange(len(stream))
    by_sample = np.lexsort((positions, stream))  # grouped by sample, in stream order within a sample
    previous = np.full(len(stream), -1)  # where the same sample last appeared (−1: never before)
    same = stream[by_sample][1:] == stream[by_sample][:-1]
    previous[by_sample[1:][same]] = by_sample[:-1][same]
    # a sample counts once in a window: at its first appearance there, i.e. where `previous` lies before the window
    return np.array([(previous[end - width : end] < end - width).sum() for end in ends]) / n
