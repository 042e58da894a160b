"""What `ev.watch()` keeps of a learner's loop: its record, and what it compares one step with the next.

`WatchedRun` is the record a learner reads (a row per step, a row per epoch). `LoaderPass` follows one
pass over a DataLoader; `OptimizerMemory` holds what an optimizer's parameters, state and gradients were
right after its last step. The functions compare by value (`same_values`, `data_signature`, `fingerprint`):
the watcher (watching.py) decides with them whether a step continued where the last one left off.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Subset, TensorDataset

STEP_COLUMNS = ("run", "epoch", "step", "batch", "loss", "backward_passes", "elapsed_s")
EPOCH_COLUMNS = ("run", "epoch", "steps", "batches", "complete", "train_loss", "first_step", "last_step")


@dataclass
class WatchedRun:
    """What a watched loop did: one row per optimizer step (`steps`) and per epoch (`epochs`).

    - `steps`: run, epoch, step (counted within the run), batch (within the epoch), loss (the mean of the
      values `.backward()` was called on for that step; NaN if none), backward_passes, elapsed_s.
    - `epochs`: run, epoch, steps, batches (the DataLoader's length, if it has one), complete (the pass
      reached its end), train_loss (the mean step loss), first_step, last_step.
    A loop that trains several models one after the other on different data (cross-validation folds)
    gives several runs; a single training is run 1.
    """

    _rows: list[dict] = field(default_factory=list, repr=False)
    _passes: dict[tuple[int, int], tuple[int | None, bool]] = field(default_factory=dict, repr=False)

    @property
    def steps(self) -> pd.DataFrame:
        rows = [{**row, "loss": loss_number(row["loss"])} for row in self._rows]
        return pd.DataFrame(rows, columns=list(STEP_COLUMNS))

    @property
    def epochs(self) -> pd.DataFrame:
        steps = self.steps
        grouped = steps.groupby(["run", "epoch"], sort=False)
        table = grouped.agg(steps=("step", "size"), train_loss=("loss", "mean"), first_step=("step", "min"),
                            last_step=("step", "max")).reset_index()  # fmt: skip
        table["batches"] = [self._passes.get(key, (None, False))[0] for key in zip(table.run, table.epoch, strict=True)]
        table["complete"] = [
            self._passes.get(key, (None, False))[1] for key in zip(table.run, table.epoch, strict=True)
        ]
        return table[list(EPOCH_COLUMNS)]

    def __repr__(self) -> str:
        epochs = len({(row["run"], row["epoch"]) for row in self._rows})
        return f"WatchedRun({len(self._rows)} steps, {epochs} epochs)"


def loss_number(loss) -> float:
    return float(loss) if loss is not None else float("nan")


@dataclass
class LoaderPass:
    """One pass over a DataLoader: the iterator `iter(loader)` returned, and how far it has got."""

    loader: DataLoader
    iterator: object
    seen: int = 0  # batches the iterator had yielded when last looked at

    def moved(self) -> bool:
        return getattr(self.iterator, "_num_yielded", self.seen) != self.seen

    def look(self) -> None:
        self.seen = getattr(self.iterator, "_num_yielded", self.seen)

    @property
    def batches(self) -> int | None:
        try:
            return len(self.loader)
        except TypeError:  # an IterableDataset without a length
            return None


@dataclass
class OptimizerMemory:
    """What one optimizer's parameters and state were right after its last step, to compare the next with."""

    params: list[torch.Tensor]  # the tensors the last step updated
    versions: list[int]  # their version counters right after it: unchanged means untouched since
    after_step: list[torch.Tensor]  # copies of their values right after it
    initial: list[torch.Tensor]  # copies of their values before this run's first step
    state: list[dict] = field(default_factory=list)  # the optimizer's state per parameter after the last step
    state_versions: list[dict] = field(default_factory=list)
    grads: list[tuple] = field(default_factory=list)  # (parameter, its grad, the grad's version) after the step

    def weights_continue(self, params: list[torch.Tensor]) -> bool:
        untouched = all(p is q and p._version == v for p, q, v in zip(params, self.params, self.versions, strict=True))
        return untouched or all(same_values(p, a) for p, a in zip(params, self.after_step, strict=True))

    def state_lost(self, optimizer: torch.optim.Optimizer, params: list[torch.Tensor]) -> bool:
        """Whether state the last step left (momentum, Adam's averages) is gone or changed: only if there was some."""
        for param, before, versions in zip(params, self.state, self.state_versions, strict=True):
            now = optimizer.state.get(param, {})
            if before and not now:
                return True
            for name, value in before.items():
                current = now.get(name)
                if not isinstance(value, torch.Tensor):
                    if current != value:
                        return True
                elif current is value:  # the same tensor: changed in place only if emptied
                    if value._version != versions[name] and not bool(value.count_nonzero()):
                        return True
                elif not (isinstance(current, torch.Tensor) and same_values(current, value)):
                    return True
        return False


def same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.equal(a.detach(), b.detach().to(a.device))


def all_cleared(grads: list[tuple]) -> bool:
    """Whether every gradient in (parameter, gradient, its version) was set to None, replaced or zeroed since."""
    return bool(grads) and all(p.grad is not g or (g._version != v and not bool(g.any())) for p, g, v in grads)


def copies(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    return [t.detach().clone() for t in tensors]


def optimizer_params(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def data_signature(dataset) -> tuple:
    """What a dataset holds, by value, so that two loaders over the same samples are known as the same data.

    A Subset is its indices within its dataset's signature; a TensorDataset its tensors' shapes and sums;
    any other dataset its type and length.
    """
    if isinstance(dataset, Subset):
        indices = torch.as_tensor(np.asarray(dataset.indices), dtype=torch.float64)
        return ("subset", data_signature(dataset.dataset), len(indices), float(indices.sum()),
                float((indices * indices).sum()))  # fmt: skip
    if isinstance(dataset, TensorDataset):
        return ("tensors", *((tuple(t.shape), str(t.dtype), float(t.double().sum())) for t in dataset.tensors))
    try:
        size = len(dataset)
    except TypeError:
        size = None
    return (type(dataset).__qualname__, size)


def first_tensor(inputs) -> torch.Tensor | None:
    """The first tensor in a model's inputs, looking inside the tuples, lists and dicts batches come as."""
    if isinstance(inputs, torch.Tensor):
        return inputs
    values = inputs.values() if isinstance(inputs, dict) else inputs if isinstance(inputs, (tuple, list)) else ()
    return next((tensor for value in values if (tensor := first_tensor(value)) is not None), None)


def fingerprint(batch: torch.Tensor) -> tuple:
    flat = batch.detach().reshape(-1).double()
    return (tuple(batch.shape), float(flat.sum()), tuple(flat[:8].tolist()))
