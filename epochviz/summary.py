"""One row per run: the numbers a learner compares between runs, as a table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .run import Run

SUMMARY_COLUMNS = (
    "run", "reset", "epochs", "steps_per_epoch", "samples_per_epoch", "first_train_loss", "last_train_loss",
    "last_val_loss", "weights_continue", "diverged",
)  # fmt: skip


def summarize(runs: Run | Sequence[Run] | Mapping[str, Run]) -> pd.DataFrame:
    """A table with one row per run: its reset policy, its epochs, and its first and last losses.

    `weights_continue` says whether every epoch started exactly where the previous one ended.

    >>> import epochviz as ev
    >>> summarize({m: ev.train("moons", epochs=3, reset=m) for m in ("never", "weights")})[["run", "weights_continue"]]
           run  weights_continue
    0    never              True
    1  weights             False

    What to notice: `samples_per_epoch` is the training-set size whatever the batch size; only
    `steps_per_epoch` depends on it.
    """
    rows = []
    for label, run in _labelled(runs).items():
        epochs = run.epochs
        rows.append({
            "run": label,
            "reset": run.config.reset,
            "epochs": run.completed_epochs,
            "steps_per_epoch": run.steps_per_epoch,
            "samples_per_epoch": int(epochs.samples_seen.iloc[0]) if len(epochs) else 0,
            "first_train_loss": epochs.train_loss.iloc[0] if len(epochs) else np.nan,
            "last_train_loss": epochs.train_loss.iloc[-1] if len(epochs) else np.nan,
            "last_val_loss": epochs.val_loss.iloc[-1] if len(epochs) else np.nan,
            "weights_continue": all(
                np.array_equal(run.params(k + 1, "start"), run.params(k, "end")) for k in range(1, len(epochs))
            ),
            "diverged": run.diverged,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


BEST_EPOCH_COLUMNS = ("run", "best_epoch", "best_val_loss", "last_val_loss", "first_val_accuracy", "best_val_accuracy")


def best_epochs(runs: Run | Sequence[Run] | Mapping[str, Run]) -> pd.DataFrame:
    """A table with one row per run: the epoch whose validation loss was lowest, and what came after.

    `best_epoch` is where to stop training; `last_val_loss` above `best_val_loss` says the
    epochs after it made the model worse on rows it never trained on (overfitting).
    `first_val_accuracy` is the validation accuracy after epoch 1, `best_val_accuracy` at the best epoch.

    >>> import epochviz as ev
    >>> runs = ev.train_many("moons", [{"seed": seed} for seed in range(3)], epochs=20)
    >>> best_epochs(runs).columns.tolist()[:2]
    ['run', 'best_epoch']

    What to notice: train several seeds and compare: a best epoch that jumps around from seed to
    seed, or a rise smaller than the wiggles, is noise, not overfitting.
    """
    rows = []
    for label, run in _labelled(runs).items():
        epochs = run.epochs
        if epochs.val_loss.isna().all():
            raise ValueError(f"run {label!r} has no validation loss: train it with val_fraction > 0.")
        best = epochs.loc[epochs.val_loss.idxmin()]
        rows.append({
            "run": label,
            "best_epoch": int(best.epoch),
            "best_val_loss": best.val_loss,
            "last_val_loss": epochs.val_loss.iloc[-1],
            "first_val_accuracy": epochs.val_accuracy.iloc[0],
            "best_val_accuracy": best.val_accuracy,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=list(BEST_EPOCH_COLUMNS))


def _labelled(runs: Run | Sequence[Run] | Mapping[str, Run]) -> Mapping[str, Run]:
    """`runs` as a dict of label → Run: a lone Run is "run", a list's are "run 1", "run 2", …"""
    if isinstance(runs, Run):
        runs = {"run": runs}
    elif isinstance(runs, Sequence) and not isinstance(runs, str):
        runs = {f"run {number}": run for number, run in enumerate(runs, start=1)}
    if not isinstance(runs, Mapping) or not runs or not all(isinstance(run, Run) for run in runs.values()):
        raise TypeError("runs must be a Run, a list of Runs or a dict of label → Run.")
    return runs
