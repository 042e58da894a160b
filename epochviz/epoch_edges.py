"""The losses of a run measured again at the edges of every epoch, on the whole training split.

A run's `train_loss` for an epoch is the mean of its batch losses, each measured *during* the
epoch, while the weights were still improving; its `val_loss` is measured once, at the epoch's
end. This module measures the training split with the very weights each epoch started and
ended with, so the two can be compared like with like.
"""

from __future__ import annotations

import pandas as pd

from .objectives import evaluate, loss_function
from .run import Run, _with_parameters

EDGE_COLUMNS = ("epoch", "train_loss_at_start", "train_loss", "train_loss_at_end", "val_loss")


def losses_at_epoch_edges(run: Run) -> pd.DataFrame:
    """One row per completed epoch: the training split's loss at the epoch's start and end, beside the record.

    - `train_loss_at_start`: the whole training split, measured with the weights the epoch started from;
    - `train_loss`: what the run recorded, the mean of the epoch's batch losses (measured during it);
    - `train_loss_at_end`: the whole training split, measured with the weights the epoch ended with;
    - `val_loss`: what the run recorded, the validation split measured with those same end weights.

    >>> import epochviz as ev
    >>> edges = ev.losses_at_epoch_edges(ev.train("moons", epochs=3))
    >>> bool(edges.train_loss_at_end[0] < edges.train_loss[0])
    True

    What to notice: in an early epoch `train_loss` is above `train_loss_at_end`, because most of
    its batches were measured with weights that had not yet learned what the epoch taught. What is
    left between `train_loss_at_end` and `val_loss` is the difference between the two splits.
    With `reset="never"`, `train_loss_at_start` of epoch k+1 is `train_loss_at_end` of epoch k.
    """
    if not isinstance(run, Run):
        raise TypeError(f"run must be a Run, such as ev.train(...) returns; got {type(run).__name__}.")
    if run.model is None:
        raise ValueError("run holds no model to measure the weights with; use a run from ev.train or ev.resume.")
    loss_of = loss_function(run.data.task)
    device = next(run.model.parameters()).device
    train_rows = run.data.subset(run.train_indices)
    x, y = train_rows.x.to(device), train_rows.y.to(device)

    def train_loss_with(flat_weights) -> float:
        return evaluate(_with_parameters(run.model, flat_weights), x, y, loss_of)[0]

    rows = [
        {
            "epoch": epoch.epoch,
            "train_loss_at_start": train_loss_with(run.params(epoch.epoch, "start")),
            "train_loss": epoch.train_loss,
            "train_loss_at_end": train_loss_with(run.params(epoch.epoch, "end")),
            "val_loss": epoch.val_loss,
        }
        for epoch in run.epochs.itertuples()
    ]
    return pd.DataFrame(rows, columns=list(EDGE_COLUMNS))
