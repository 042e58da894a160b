"""What training minimises and how a model is scored: losses, optimizers, accuracy.

Shared by the training loop and by the memory measurements, so both use the very same loss
and optimizer a run uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

OPTIMIZER_LABELS = {"sgd": "SGD", "momentum": "SGD + momentum", "adam": "Adam"}  # name → what menus and titles say
OPTIMIZERS = tuple(OPTIMIZER_LABELS)  # what `train(optimizer=...)` takes; `make_optimizer` builds each
MOMENTUM = 0.9  # the "momentum" optimizer's: each step keeps 90 % of the previous step's direction


def make_optimizer(name: str, model: nn.Module | Iterable[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    """A fresh optimizer for `model` (or for these weights): it holds no momentum and no running averages yet."""
    parameters = model.parameters() if isinstance(model, nn.Module) else model
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr)
    if name == "momentum":
        return torch.optim.SGD(parameters, lr=lr, momentum=MOMENTUM)
    return torch.optim.Adam(parameters, lr=lr)


def loss_function(task: str, reduction: str = "mean") -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross-entropy for classification, mean squared error for regression: the batch's mean, or with
    reduction="none" one loss per sample (train_many averages those over each model's own batch)."""
    if task == "classification":
        return lambda output, target: F.cross_entropy(output, target, reduction=reduction)
    return lambda output, target: F.mse_loss(output.squeeze(-1), target, reduction=reduction)


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
    training = model.training
    model.eval()  # layers such as dropout behave differently when evaluating; leave the model as found
    output = model(x)
    model.train(training)
    task = "classification" if y.dtype == torch.int64 else "regression"
    return float(loss_of(output, y)), accuracy(output, y, task)
