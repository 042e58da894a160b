"""`Run`: the record of one training run, as plain data a learner can print, slice and plot.

The training loop appends to a Run; plots and widgets only read it. Nothing here trains or
draws, so a Run loaded from a checkpoint is as good as one fresh from `train`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace
from numbers import Integral

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import checks
from .config import TrainConfig
from .data import Dataset, as_numbers, epoch_order, steps_per_epoch
from .models import build, forward_from_flat
from .threads import torch_threads

BLOW_UP_FACTOR = 10  # a batch loss this many times the first one means training blew up, even while it stays finite
CHANCE_MARGIN = 0.05  # accuracy within this of always guessing the largest class is no better than chance
STEP_COLUMNS = ("epoch", "step", "batch", "batch_size", "samples_seen", "loss", "elapsed_s")
EPOCH_COLUMNS = (
    "epoch", "steps", "samples_seen", "train_loss", "val_loss",
    "train_accuracy", "val_accuracy", "weight_change", "elapsed_s",
)  # fmt: skip


@dataclass
class Run:
    """Everything one call of `train` did, epoch by epoch and step by step.

    >>> from epochviz import train
    >>> run = train("moons", epochs=3, seed=0)
    >>> run.epochs[["epoch", "steps", "samples_seen"]].values.tolist()
    [[1, 10, 320], [2, 10, 640], [3, 10, 960]]

    What to notice: `samples_seen` grows by the size of the training split every epoch, whatever
    the batch size; the batch size only changes how many steps that takes.

    - `steps`: one row per optimizer step (see STEP_COLUMNS); `loss` is the batch's mean loss
      measured *before* that step's update.
    - `epochs`: one row per completed epoch (see EPOCH_COLUMNS).
    - `params(epoch, at)`: every parameter as one flat array at the start or end of an epoch.
    - `train_indices` / `val_indices`: rows of `data` in the training / validation split;
      `sample_order(epoch)` says in which order that epoch visited the training rows.
    - `config`: the checked settings (a frozen TrainConfig): `run.config.batch_size`, `print(run.config)`.
    """

    config: TrainConfig  # the settings train() was called with; a resumed run gets a new one with its epochs
    data: Dataset  # the whole dataset, training and validation rows
    train_indices: np.ndarray  # rows of `data` that are trained on
    val_indices: np.ndarray  # rows of `data` held out to validate (may be empty)
    model: nn.Module | None = None  # the trained module, as the last epoch left it
    # (epoch, step) where the loss stopped being finite: the step whose batch loss was not (it is not
    # recorded), or the last step of an epoch that left the weights or the validation loss non-finite
    diverged_at: tuple[int, int] | None = None
    workers: int = 1  # processes that shared every epoch (`train_parallel`); 1 for `train`
    # for a run of several workers: epoch → one row per worker, the training positions it visited in order
    worker_orders: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _step_chunks: list[dict[str, np.ndarray]] = field(default_factory=list, repr=False)
    _epoch_rows: list[dict[str, float]] = field(default_factory=list, repr=False)
    _epoch_params: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list, repr=False)
    _step_weights: list[np.ndarray] = field(default_factory=list, repr=False)
    _tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    # The loop's live state (train.py's TrainingState: model, optimizer, initial weights, data on the
    # device), set by `train` so that `resume` can carry this run on in memory. Only train.py reads it;
    # ask `can_resume` instead. None for views, copies, runs loaded from a file and batched runs.
    training_state: object | None = field(default=None, repr=False)
    cannot_resume_because: str = field(default="it holds no training state; resume from its checkpoint file",
                                       repr=False)  # fmt: skip

    def __post_init__(self) -> None:
        if not isinstance(self.config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, such as another run's; got {type(self.config).__name__}.")

    def __repr__(self) -> str:
        done = f"{len(self._epoch_rows)}/{self.config.epochs} epochs"
        last = f", train loss {self._epoch_rows[-1]['train_loss']:.3g}" if self._epoch_rows else ""
        status = f", diverged at epoch {self.diverged_at[0]} step {self.diverged_at[1]}" if self.diverged else ""
        return (
            f"Run({self.data.name}, model={self.config.model_name!r}, reset={self.config.reset!r}, "
            f"batch_size={self.config.batch_size}, {done}{last}{status})"
        )

    # --- reading -------------------------------------------------------------------------------

    @property
    def steps(self) -> pd.DataFrame:
        if "steps" not in self._tables:
            columns = {name: _concat(chunk[name] for chunk in self._step_chunks) for name in STEP_COLUMNS}
            self._tables["steps"] = pd.DataFrame(columns)
        return self._tables["steps"]

    @property
    def epochs(self) -> pd.DataFrame:
        if "epochs" not in self._tables:
            self._tables["epochs"] = pd.DataFrame(self._epoch_rows, columns=list(EPOCH_COLUMNS))
        return self._tables["epochs"]

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None

    @property
    def blew_up(self) -> bool:
        """Whether some batch loss rose above BLOW_UP_FACTOR times the first one: the steps overshoot.

        A finite loss can still have blown up: at a learning rate far too large, epoch 1 may reach
        10⁸ and later epochs sit at a few units, which on a linear axis looks like 0 (trained),
        while the model is no better than guessing. `diverged` is the case where it stopped being a number.
        """
        losses = self.steps["loss"].to_numpy()
        return len(losses) > 1 and bool(losses.max() > BLOW_UP_FACTOR * abs(losses[0]))

    @property
    def at_chance(self) -> bool:
        """Whether, after at least one epoch, accuracy never beat always guessing the largest class (classification).

        Measured on the validation rows (the training rows when none are held out), at every epoch's end.
        """
        if self.data.task != "classification" or not self._epoch_rows:
            return False
        column = "val_accuracy" if len(self.val_indices) > 0 else "train_accuracy"
        return bool(self.epochs[column].max() <= self.chance_accuracy() + CHANCE_MARGIN)

    def chance_accuracy(self, rows: np.ndarray | None = None) -> float:
        """The accuracy of always guessing the most common class among `rows`.

        By default among the validation rows, or the training rows when none are held out (as `at_chance` measures).
        """
        if rows is None:
            rows = self.val_indices if len(self.val_indices) > 0 else self.train_indices
        labels = self.data.y[torch.as_tensor(rows)]
        return float(torch.bincount(labels).max() / len(labels)) if len(labels) else math.nan

    @property
    def can_resume(self) -> bool:
        """Whether `resume(run, epochs)` can carry this run on in memory (if not, `cannot_resume_because` says why)."""
        return self.training_state is not None and not self.diverged

    @property
    def cannot_predict_because(self) -> str:
        """Why `predict` cannot rebuild this run's past predictions, or "" when it can."""
        return _cannot_predict_because(build(self.config.model, self.data, self.config.seed), self.config.model_name)

    @property
    def completed_epochs(self) -> int:
        return len(self._epoch_rows)

    @property
    def total_steps(self) -> int:
        return self._last("step")

    @property
    def total_samples_seen(self) -> int:
        return self._last("samples_seen")

    @property
    def elapsed_s(self) -> float:
        """Seconds of training up to the end of the last completed epoch."""
        return self._epoch_rows[-1]["elapsed_s"] if self._epoch_rows else 0.0

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps in one full epoch: ⌈N_train / batch_size⌉, or ⌊…⌋ with drop_last."""
        return steps_per_epoch(len(self.train_indices), self.config.batch_size, self.config.drop_last)

    def params(self, epoch: int, at: str = "end") -> np.ndarray:
        """All parameters as one flat array (a copy), at the 'start' or 'end' of `epoch` (1-based)."""
        if at not in ("start", "end"):
            raise ValueError(f"at must be 'start' or 'end'; got {at!r}.")
        epoch = _checked_epoch(epoch, len(self._epoch_params))
        return self._epoch_params[epoch - 1][0 if at == "start" else 1].copy()

    def step_weights(self) -> np.ndarray:
        """The weights each step's loss was measured at, one row per step (needs `track_weights=True`)."""
        if not self.config.track_weights:
            raise ValueError("this run did not keep its weights per step; train it with track_weights=True.")
        return _concat(self._step_weights)

    def predict(self, x, epoch: int, at: str = "end") -> np.ndarray:
        """What the model predicts for the samples `x` with the parameters recorded at the 'start' or 'end' of `epoch`.

        For classification, each class's probability (the softmax of the outputs: one row per
        sample, one column per class); for regression, one value per sample. The model is rebuilt
        from the settings and `params(epoch, at)`, so a run read back from a checkpoint predicts
        exactly what the run that trained did, at every epoch.

        >>> from epochviz import train
        >>> run = train("moons", epochs=2)
        >>> run.predict([[0.0, 0.5], [1.0, -0.5]], epoch=2).shape
        (2, 2)

        What to notice: with reset="weights", `predict(x, k, "start")` is the same for every epoch k.
        """
        flat = self.params(epoch, at)
        x = as_numbers(x, "x")
        if x.dtype.kind not in "iubf":
            raise TypeError(f"x must hold numbers, one row per sample; got {x.dtype} values.")
        if x.ndim != 2 or x.shape[1] != self.data.features:
            raise ValueError(f"x must hold samples of {self.data.name!r}, shape (samples, {self.data.features}); "
                             f"got shape {x.shape}.")  # fmt: skip
        x = x.astype(np.float32)
        net = build(self.config.model, self.data, self.config.seed)  # only its architecture is used
        if reason := _cannot_predict_because(net, self.config.model_name):
            raise ValueError(reason)
        with torch_threads(self.config.threads):  # as many as training used: on a busy machine more are slower
            output = forward_from_flat(net, flat, torch.from_numpy(x)).cpu()
        return (torch.softmax(output, dim=1) if self.data.task == "classification" else output[:, 0]).numpy()

    def sample_order(self, epoch: int) -> np.ndarray:
        """Positions in the training split (0 … N_train−1) in the order epoch `epoch` visited them.

        For a run of several workers: the order its sampler dealt out, worker 0 taking the first position,
        worker 1 the next, and so on (a sampler that pads every share to one length repeats a few positions);
        step s trained on its s-th stretch of batch_size positions, whichever worker held them.

        `epoch` is one of the run's epochs, 1 … config.epochs (the order of an epoch still to come is
        already fixed by the seed; the loop reads it from here)."""
        epoch = _checked_epoch(epoch, self.config.epochs)
        if epoch in self.worker_orders:
            return self.worker_orders[epoch].T.reshape(-1)
        return epoch_order(len(self.train_indices), epoch, seed=self.config.seed, shuffle=self.config.shuffle)

    def first(self, epochs: int) -> Run:
        """This run as it stood after `epochs` epochs (0 … config.epochs): what training for that many gives.

        Training never looks ahead, so the first k epochs of a long run *are* a k-epoch run; the
        explorer uses this to show fewer epochs without training again. `first(0)` is the run
        before its first step: no steps, no epochs, and a model holding the initial weights. A run
        that stopped before its last epoch (it diverged, or is still training) is all there is of
        any longer one: `first` of more epochs than it completed gives the whole run. The result is
        a copy that shares nothing changeable with this run (history, tables, model): training
        this run on leaves it as it was.

        >>> from epochviz import train
        >>> run = train("moons", epochs=3)
        >>> run.first(2).completed_epochs, run.first(0).total_steps
        (2, 0)
        """
        epochs = checks.whole("epochs", epochs, minimum=0, maximum=max(self.completed_epochs, self.config.epochs))
        epochs = min(epochs, self.completed_epochs)
        diverged_at = self.diverged_at if epochs == self.completed_epochs else None
        return self._copy(
            epochs=epochs,
            steps=None if diverged_at else epochs,  # a divergence adds the steps of the epoch it stopped in
            config=replace(self.config, epochs=max(epochs, 1)),  # first(0) too is the start of a 1-epoch run
            model=self._model_after(epochs),
            diverged_at=diverged_at,
            cannot_resume_because=f"it is a view from run.first({epochs}); resume the full run",
        )

    def _copy(self, *, epochs: int | None, steps: int | None, **changes) -> Run:
        """A copy holding this run's first `epochs` epochs and first `steps` epochs of steps (None: all), with
        its own lists, arrays and tables; only the dataset and the frozen settings, which never change, are shared.
        It cannot resume: the loop's state belongs to this run alone."""
        return replace(
            self,
            train_indices=self.train_indices.copy(),
            val_indices=self.val_indices.copy(),
            _step_chunks=[{name: part.copy() for name, part in chunk.items()} for chunk in self._step_chunks[:steps]],
            _epoch_rows=[dict(row) for row in self._epoch_rows[:epochs]],
            _epoch_params=[(start.copy(), end.copy()) for start, end in self._epoch_params[:epochs]],
            _step_weights=[weights.copy() for weights in self._step_weights[:steps]],
            _tables={},
            worker_orders={
                epoch: order.copy() for epoch, order in self.worker_orders.items() if epochs is None or epoch <= epochs
            },
            training_state=None,
            **changes,
        )

    def _model_after(self, epochs: int) -> nn.Module | None:
        """A copy of the model holding its weights after `epochs` epochs (0: the initial weights)."""
        if self.model is None:
            return None
        if epochs == self.completed_epochs and (self.diverged or not epochs):  # weights the record does not hold
            return copy.deepcopy(self.model)
        return _with_parameters(self.model, self._epoch_params[epochs - 1][1] if epochs else self._epoch_params[0][0])

    # --- writing (the training loop's side) ----------------------------------------------------

    def add_steps(self, epoch: int, batch_sizes: np.ndarray, losses: np.ndarray, elapsed_s: np.ndarray,
                  weights: np.ndarray | None = None) -> None:  # fmt: skip
        """Append one epoch's steps (all of them, or those before a divergence)."""
        count, first_step = len(losses), self.total_steps + 1
        self._step_chunks.append({
            "epoch": np.full(count, epoch),
            "step": np.arange(first_step, first_step + count),
            "batch": np.arange(1, count + 1),
            "batch_size": batch_sizes,
            "samples_seen": self.total_samples_seen + np.cumsum(batch_sizes),
            "loss": losses,
            "elapsed_s": elapsed_s,
        })  # fmt: skip
        if weights is not None:
            self._step_weights.append(weights)
        self._tables.pop("steps", None)

    def add_epoch(self, *, train_loss: float, val_loss: float, train_accuracy: float, val_accuracy: float,
                  start: np.ndarray, end: np.ndarray, elapsed_s: float) -> None:  # fmt: skip
        """Append one completed epoch, after its steps: its summary and its parameters at start and end."""
        self._epoch_rows.append({
            "epoch": len(self._epoch_rows) + 1,
            "steps": len(self._step_chunks[-1]["step"]),
            "samples_seen": self.total_samples_seen,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "train_accuracy": train_accuracy,
            "val_accuracy": val_accuracy,
            "weight_change": float(np.linalg.norm((end - start).astype(np.float64))),  # float32 may overflow
            "elapsed_s": elapsed_s,
        })  # fmt: skip
        self._epoch_params.append((start, end))
        self._tables.pop("epochs", None)

    def _last(self, column: str) -> int:
        """The last value of a running count (step, samples_seen), 0 before the first step."""
        for chunk in reversed(self._step_chunks):  # an epoch that diverged at once has no steps
            if len(chunk[column]):
                return int(chunk[column][-1])
        return 0

    # --- as plain tensors and values (for checkpoints) ---------------------------------------

    def to_state(self) -> dict:
        """The whole record as tensors, numbers and strings: safe for `torch.load(weights_only=True)`."""
        chunks = [{name: torch.as_tensor(values) for name, values in chunk.items()} for chunk in self._step_chunks]
        return {
            "config": self.config.as_dict(),
            "train_indices": torch.as_tensor(self.train_indices),
            "val_indices": torch.as_tensor(self.val_indices),
            "diverged_at": list(self.diverged_at) if self.diverged else None,
            "step_chunks": chunks,
            "epoch_rows": [dict(row) for row in self._epoch_rows],
            "epoch_params": [[torch.as_tensor(start), torch.as_tensor(end)] for start, end in self._epoch_params],
            "step_weights": [torch.as_tensor(weights) for weights in self._step_weights],
        }

    @classmethod
    def from_state(cls, state: dict, data: Dataset, config: TrainConfig) -> Run:
        """Rebuild a Run from `to_state()`'s output, the dataset it was trained on and its settings, checked
        from `state["config"]` (a module of your own, stored by its class name, is yours to give back)."""
        run = cls(
            config=config,
            data=data,
            train_indices=state["train_indices"].numpy(),
            val_indices=state["val_indices"].numpy(),
            diverged_at=tuple(state["diverged_at"]) if state["diverged_at"] else None,
        )
        run._step_chunks = [{name: values.numpy() for name, values in chunk.items()} for chunk in state["step_chunks"]]
        run._epoch_rows = [dict(row) for row in state["epoch_rows"]]
        run._epoch_params = [(start.numpy(), end.numpy()) for start, end in state["epoch_params"]]
        run._step_weights = [weights.numpy() for weights in state["step_weights"]]
        return run


def _checked_epoch(epoch, last: int) -> int:
    """`epoch` as an int, if it is a whole number (not a bool, which would pass for 1) from 1 to `last`."""
    if isinstance(epoch, bool) or not isinstance(epoch, Integral):
        raise TypeError(f"epoch must be a whole number such as 1; got {epoch!r} ({type(epoch).__name__}).")
    if not 1 <= epoch <= last:
        raise ValueError(f"epoch must be from 1 to {last} for this run; got {epoch!r}.")
    return int(epoch)


def _concat(chunks) -> np.ndarray:
    chunks = list(chunks)
    return np.concatenate(chunks) if chunks else np.array([])


def _cannot_predict_because(net: nn.Module, name: str) -> str:
    if any(True for _ in net.buffers()):
        return (f"{name} keeps buffers (such as batch norm's running averages) the run does not record, "
                f"so its past predictions cannot be rebuilt.")  # fmt: skip
    return ""


def _with_parameters(model: nn.Module, flat: np.ndarray) -> nn.Module:
    """A copy of `model` holding the parameters in `flat`.

    Its parameters become views of the vector given to `vector_to_parameters`, so that vector is
    a copy of `flat` (`torch.tensor`, not `as_tensor`): changing the model must not change the record.
    """
    copied = copy.deepcopy(model)
    torch.nn.utils.vector_to_parameters(torch.tensor(flat, device=next(copied.parameters()).device),
                                        copied.parameters())  # fmt: skip
    return copied
