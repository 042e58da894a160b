"""Tiny models with seeded initialisation.

The same seed always gives the same initial weights, on every machine: that is what lets a
learner compare a run that resets its weights with one that does not, and see that both
start from exactly the same place.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from itertools import pairwise

import torch
from torch import nn

from .data import Dataset

MODELS = ("mlp", "linear")


def mlp(inputs: int, outputs: int, *, hidden: tuple[int, ...] = (32, 32), seed: int = 0) -> nn.Sequential:
    """A multi-layer perceptron: Linear → ReLU for each hidden layer, then a Linear output.

    >>> mlp(2, 2)
    Sequential(
      (0): Linear(in_features=2, out_features=32, bias=True)
      (1): ReLU()
      (2): Linear(in_features=32, out_features=32, bias=True)
      (3): ReLU()
      (4): Linear(in_features=32, out_features=2, bias=True)
    )
    """
    sizes = (inputs, *hidden)
    layers: list[nn.Module] = []
    with _seeded(seed):
        for width_in, width_out in pairwise(sizes):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], outputs))
        return nn.Sequential(*layers)


def linear(inputs: int, outputs: int, *, seed: int = 0) -> nn.Linear:
    """One linear layer, y = W·x + b. On the `line` dataset it has two parameters: slope and intercept."""
    with _seeded(seed):
        return nn.Linear(inputs, outputs)


def build(model: str | nn.Module, data: Dataset, seed: int) -> nn.Module:
    """The model `train` will use: one made to fit `data` when named, or a copy of yours.

    A module you pass is copied, so training never changes the object you hold.
    """
    if isinstance(model, nn.Module):
        return copy.deepcopy(model)
    factory = {"mlp": mlp, "linear": linear}[model]
    return factory(data.features, data.outputs, seed=seed)


def flat_parameters(model: nn.Module) -> torch.Tensor:
    """All parameters of `model` as one detached 1-D tensor (a copy), in a fixed order."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


@contextmanager
def _seeded(seed: int):
    """Run a block with torch's global generator seeded, leaving it as it was afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
