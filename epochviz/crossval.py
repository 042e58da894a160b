"""Cross-validation: the one place where you *do* start training over, once per fold.

Each fold trains on k − 1 parts of the data and validates on the part it never saw. A fold
must therefore start from fresh initial weights: weights carried over from the previous fold
have already trained on this fold's validation samples, so its validation score flatters the
model. `reset_between_folds=False` makes that mistake on purpose, and the held-out test score
(on samples no fold ever trains on) shows how optimistic it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import checks
from .data import Dataset, as_dataset, k_folds, train_validation_split
from .objectives import evaluate, loss_function
from .run import Run
from .threads import torch_threads
from .train import train

FOLD_COLUMNS = ("fold", "train_loss", "val_loss", "val_accuracy", "test_loss", "test_accuracy")


@dataclass
class CrossValidation:
    """The runs of one cross-validation, a row per fold, and the rows held out for testing."""

    runs: list[Run]  # one run per fold, in fold order
    folds: pd.DataFrame  # one row per fold: see FOLD_COLUMNS
    reset_between_folds: bool
    test_indices: np.ndarray  # rows of the data no fold trains or validates on

    @property
    def optimism(self) -> float:
        """Mean test loss minus mean validation loss: how much better validation makes the model look."""
        return float(self.folds.test_loss.mean() - self.folds.val_loss.mean())


def cross_validate(data: Dataset | str = "moons", k: int = 5, *, reset_between_folds: bool = True,
                   test_fraction: float = 0.2, **train_args) -> CrossValidation:  # fmt: skip
    """Train one model per fold and compare each fold's validation score with a held-out test.

    `train_args` go to `train` (epochs, batch_size, lr, seed, …). First `test_fraction` of the
    samples is set aside as a test set; the rest is cut into `k` folds.

    >>> fair = cross_validate("moons", k=3, epochs=5)
    >>> leaky = cross_validate("moons", k=3, epochs=5, reset_between_folds=False)

    What to notice: with a reset, every fold starts from the same initial weights, and the
    validation and test losses agree. Without one, fold 2 starts from fold 1's final weights,
    which already trained on fold 2's validation samples: its validation loss looks better than
    the test loss says it is (`leaky.optimism` > `fair.optimism`).
    """
    checks.flag("reset_between_folds", reset_between_folds)
    k = checks.whole("k", k, minimum=2, maximum=100)
    checks.number("test_fraction", test_fraction, low=0, high=1, low_open=True)
    if {"split", "val_fraction"} & set(train_args):
        raise ValueError("cross_validate chooses the validation rows itself; do not pass split or val_fraction.")
    data = as_dataset(data)
    seed = train_args.get("seed", 0)
    pool, test_rows = train_validation_split(len(data), test_fraction, seed, name="test_fraction")
    if len(pool) < k:
        raise ValueError(
            f"test_fraction={test_fraction} of {len(data)} samples leaves {len(pool)} for k={k} folds, which need "
            f"at least one sample each; use a smaller test_fraction or a smaller k."
        )
    runs, rows = [], []
    start_model = train_args.pop("model", "mlp")
    for fold, (train_part, val_part) in enumerate(k_folds(len(pool), k, seed), start=1):
        carried = runs[-1].model if runs and not reset_between_folds else start_model
        run = train(data, model=carried, split=(pool[train_part], pool[val_part]), **train_args)
        runs.append(run)
        test_loss, test_accuracy = _score(run, data.subset(test_rows))
        last = run.epochs.iloc[-1] if run.completed_epochs else None
        rows.append({
            "fold": fold,
            "train_loss": last.train_loss if last is not None else np.nan,
            "val_loss": last.val_loss if last is not None else np.nan,
            "val_accuracy": last.val_accuracy if last is not None else np.nan,
            "test_loss": test_loss,
            "test_accuracy": test_accuracy,
        })  # fmt: skip
    return CrossValidation(runs, pd.DataFrame(rows, columns=list(FOLD_COLUMNS)), reset_between_folds, test_rows)


def _score(run: Run, test: Dataset) -> tuple[float, float]:
    """Loss and accuracy of the run's final model on `test`."""
    device = next(run.model.parameters()).device
    with torch_threads(run.config.threads):  # as many threads as training used: the same numbers
        return evaluate(run.model, test.x.to(device), test.y.to(device), loss_function(test.task))
