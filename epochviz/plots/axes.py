"""Where training is: each step and epoch along x, in each unit a learner counts in, and the weights at each.

In "epoch" units, step i of epoch k sits at (k − 1) + i / steps_per_epoch, so an epoch's last
step and its epoch value share x = k. In the other units an epoch value sits where the epoch's
last step does: at its step number, its samples seen, or the seconds it ended at.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..run import Run

X_UNITS = ("epoch", "step", "samples", "seconds")
X_TITLES = {
    "epoch": "epoch",
    "step": "optimizer step",
    "samples": "training samples seen",
    "seconds": "seconds (wall clock)",
}
_STEP_COLUMNS = {"step": "step", "samples": "samples_seen", "seconds": "elapsed_s"}
_EPOCH_COLUMNS = {"epoch": "epoch", "samples": "samples_seen", "seconds": "elapsed_s"}


def step_x(run: Run, x: str) -> np.ndarray:
    """The x position of every step of `run`, in unit `x`."""
    steps = run.steps
    if x == "epoch":
        return steps["epoch"].to_numpy() - 1 + steps["batch"].to_numpy() / run.steps_per_epoch
    return steps[_STEP_COLUMNS[x]].to_numpy(dtype=float)


def epoch_x(run: Run, x: str) -> np.ndarray:
    """The x position of the end of every completed epoch of `run`, in unit `x`."""
    epochs = run.epochs
    if x == "step":
        return epochs["steps"].cumsum().to_numpy(dtype=float)
    return epochs[_EPOCH_COLUMNS[x]].to_numpy(dtype=float)


def epoch_edges(run: Run, x: str) -> np.ndarray:
    """Where training starts (0) and where each completed epoch ends, in unit `x`."""
    return np.concatenate([[0.0], epoch_x(run, x)])


def weight_path(run: Run) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(epoch, batches done in it, weights) at every recorded point, in training order; the first are w₀.

    With per-step weights: each step's weights (before its update) and each epoch's end;
    otherwise each epoch's start and end.
    """
    ends = np.arange(1, run.completed_epochs + 1)
    full = np.full(len(ends), run.steps_per_epoch)
    if run.total_steps == 0 or not (len(ends) or run.config.track_weights):
        return np.array([]), np.array([]), np.empty((0, 0))  # diverged before anything could be drawn
    if run.config.track_weights:
        epoch = np.concatenate([run.steps["epoch"].to_numpy(), ends])
        done = np.concatenate([run.steps["batch"].to_numpy() - 1, full])
        weights = np.vstack([run.step_weights(), *(run.params(k, "end") for k in ends)])
    else:
        epoch, done = np.concatenate([ends, ends]), np.concatenate([np.zeros_like(ends), full])
        weights = np.vstack([*(run.params(k, "start") for k in ends), *(run.params(k, "end") for k in ends)])
    # an epoch's end and the next epoch's start share x = k: the end comes first
    order = np.lexsort((done, epoch))
    return epoch[order], done[order], weights[order]
