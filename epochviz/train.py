"""The training loop: initialise once, then for each epoch, for each batch: forward, loss, backward, step.

This is the file to read when you wonder whether weights are reset between epochs. They are
not: `train` creates the model once, and every epoch of `_train_epochs` continues from the
weights the previous epoch ended with. The `reset` argument lets you try the other
hypotheses ("every epoch starts over") and see what they would do to the loss.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import TrainConfig, resolve_device
from .data import Dataset, epoch_order, load, train_validation_split
from .models import build, flat_parameters
from .run import Run


@dataclass(frozen=True)
class Reset:
    """What a reset policy restores at the start of every epoch after the first."""

    weights: bool  # put the initial weights back
    optimizer: bool  # forget momentum and Adam's running averages


RESET_POLICIES = {
    "never": Reset(weights=False, optimizer=False),  # real training: every epoch continues
    "optimizer": Reset(weights=False, optimizer=True),  # weights continue, optimizer state starts over
    "weights": Reset(weights=True, optimizer=True),  # "each epoch is a standalone training process"
}


@dataclass
class TrainingState:
    """What the loop needs to carry on: the model, its optimizer, and the tensors it trains on."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    initial_weights: dict[str, torch.Tensor]  # kept for reset="weights"
    x: torch.Tensor  # training features, on the training device
    y: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor


def train(
    data: Dataset | str = "moons",
    *,
    model: str | nn.Module = "mlp",
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 0.1,
    optimizer: str = "sgd",
    reset: str = "never",
    shuffle: bool = True,
    drop_last: bool = False,
    val_fraction: float = 0.2,
    seed: int = 0,
    device: str = "auto",
    on_epoch: Callable[[Run], None] | None = None,
    accumulate: int = 1,
    memory_budget_mb: float | None = None,
    checkpoint: str | None = None,
    track_weights: bool = False,
) -> Run:
    """Train a small model for `epochs` passes over `data` and record everything it does.

    Every argument is described in `TrainConfig`. `on_epoch(run)` is called after each epoch
    with the run so far (live plots use it).

    >>> run = train("moons", epochs=5, seed=0)
    >>> bool(run.epochs.train_loss.iloc[-1] < run.epochs.train_loss.iloc[0])
    True

    What to notice: the loss of epoch 2 starts where epoch 1 ended, because nothing is reset.
    Try `reset="weights"` and every epoch starts again from the same initial weights.
    """
    config = TrainConfig(
        model=model, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, reset=reset,
        shuffle=shuffle, drop_last=drop_last, val_fraction=val_fraction, seed=seed, device=device,
        accumulate=accumulate, memory_budget_mb=memory_budget_mb, checkpoint=checkpoint,
        track_weights=track_weights,
    )  # fmt: skip
    if on_epoch is not None and not callable(on_epoch):
        raise TypeError(f"on_epoch must be a function taking the run, or None; got {type(on_epoch).__name__}.")
    data = _dataset(data)
    train_rows, val_rows = train_validation_split(len(data), config.val_fraction, config.seed)
    if config.drop_last and config.batch_size > len(train_rows):
        raise ValueError(
            f"batch_size={config.batch_size} with drop_last=True leaves no full batch of the "
            f"{len(train_rows)} training samples; use a smaller batch or drop_last=False."
        )
    target = resolve_device(config.device)

    # initialise once: every epoch below continues from these weights unless `reset` says otherwise
    net = build(config.model, data, config.seed).to(target)
    state = TrainingState(
        model=net,
        optimizer=make_optimizer(config.optimizer, net, config.lr),
        initial_weights={name: value.clone() for name, value in net.state_dict().items()},
        x=data.x[train_rows].to(target),
        y=data.y[train_rows].to(target),
        x_val=data.x[val_rows].to(target),
        y_val=data.y[val_rows].to(target),
    )
    run = Run(config=config.as_dict(), data=data, train_indices=train_rows, val_indices=val_rows, model=net)
    return _train_epochs(run, state, range(1, config.epochs + 1), on_epoch)


def _train_epochs(run: Run, state: TrainingState, epochs: range, on_epoch: Callable[[Run], None] | None) -> Run:
    """The loop itself: each epoch is one full pass over the training samples, in batches."""
    config = run.config
    policy = RESET_POLICIES[config["reset"]]
    loss_of = loss_function(run.data.task)
    model, n = state.model, len(state.x)
    started = time.perf_counter() - run.elapsed_s  # a resumed run keeps counting where it stopped

    for epoch in epochs:
        # reset: only what the chosen policy says, and never before the first epoch
        if epoch > 1 and policy.weights:
            model.load_state_dict(state.initial_weights)
        if epoch > 1 and policy.optimizer:
            state.optimizer = make_optimizer(config["optimizer"], model, config["lr"])
        optimizer = state.optimizer
        start = flat_parameters(model)

        # one pass over the training data: a fresh order, cut into batches
        order = torch.from_numpy(epoch_order(n, epoch, seed=config["seed"], shuffle=config["shuffle"]))
        batches = list(order.to(state.x.device).split(config["batch_size"]))
        if config["drop_last"] and len(batches[-1]) < config["batch_size"]:
            batches.pop()
        losses, outputs, weights, elapsed = [], [], [], []
        model.train()
        for batch in batches:
            if config["track_weights"]:
                weights.append(flat_parameters(model))
            optimizer.zero_grad()
            # forward and backward, in `accumulate` micro-batches (one unless memory is short):
            # each adds its share of the batch's mean loss, so the gradients sum to the batch's
            batch_loss = 0.0
            for micro in batch.chunk(config["accumulate"]):
                output = model(state.x[micro])
                loss = loss_of(output, state.y[micro]) * (len(micro) / len(batch))
                loss.backward()
                batch_loss += loss.detach()
                outputs.append(output.detach())
            # update: one optimizer step per batch
            optimizer.step()
            losses.append(batch_loss)
            elapsed.append(time.perf_counter() - started)

        # record what the epoch did (one copy to the host per epoch, not one per step)
        step_losses = torch.stack(losses).cpu().numpy().astype(np.float64)
        sizes = np.array([len(batch) for batch in batches])
        finite = np.isfinite(step_losses)
        done = len(batches) if finite.all() else int(np.argmin(finite))
        step_weights = torch.stack(weights).cpu().numpy()[:done] if weights else None
        run.add_steps(epoch, sizes[:done], step_losses[:done], np.array(elapsed[:done]), step_weights)
        if done < len(batches):
            run.diverged_at = (epoch, run.total_steps + 1)
            break
        end = flat_parameters(model)
        val_loss, val_accuracy = evaluate(model, state.x_val, state.y_val, loss_of)
        seen = order[: sizes.sum()].to(state.x.device)
        run.add_epoch(
            train_loss=float(np.average(step_losses, weights=sizes)),
            val_loss=val_loss,
            train_accuracy=accuracy(torch.cat(outputs), state.y[seen], run.data.task),
            val_accuracy=val_accuracy,
            start=start.cpu().numpy(),
            end=end.cpu().numpy(),
            elapsed_s=time.perf_counter() - started,
        )
        if on_epoch is not None:
            on_epoch(run)
    return run


def make_optimizer(name: str, model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """A fresh optimizer for `model`: it holds no momentum and no running averages yet."""
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr)
    if name == "momentum":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    return torch.optim.Adam(model.parameters(), lr=lr)


def loss_function(task: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross-entropy for classification, mean squared error for regression (both batch means)."""
    if task == "classification":
        return F.cross_entropy
    return lambda output, target: F.mse_loss(output.squeeze(-1), target)


def accuracy(output: torch.Tensor, target: torch.Tensor, task: str) -> float:
    """Share of samples whose highest-scoring class is the right one (NaN for regression)."""
    if task != "classification" or len(target) == 0:
        return math.nan
    return float((output.argmax(dim=1) == target).float().mean())


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_of: Callable) -> tuple[float, float]:
    """Mean loss and accuracy of `model` on (x, y) without training; NaN for an empty set."""
    if len(x) == 0:
        return math.nan, math.nan
    model.eval()
    output = model(x)
    task = "classification" if y.dtype == torch.int64 else "regression"
    return float(loss_of(output, y)), accuracy(output, y, task)


def _dataset(data: Dataset | str) -> Dataset:
    if isinstance(data, str):
        return load(data)
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a Dataset or a dataset name such as 'moons'; got {type(data).__name__}.")
    return data
