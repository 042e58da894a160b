"""Tiny models with seeded initialisation, and the check that a model fits a dataset.

The same seed always gives the same initial weights, on every machine: that is what lets a
learner compare a run that resets its weights with one that does not, and see that both
start from exactly the same place. The weights are drawn from a private generator, never
torch's global one, so a training in another thread (an explorer's, while a notebook cell
trains) cannot change them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import torch
from torch import nn

from .data import Dataset


def mlp(inputs: int, outputs: int, *, hidden: tuple[int, ...] = (32, 32), batch_norm: bool = False,
        seed: int = 0) -> nn.Sequential:  # fmt: skip
    """A multi-layer perceptron: Linear → ReLU for each hidden layer (Linear → BatchNorm1d → ReLU with
    `batch_norm`), then a Linear output.

    >>> mlp(2, 2)
    Sequential(
      (0): Linear(in_features=2, out_features=32, bias=True)
      (1): ReLU()
      (2): Linear(in_features=32, out_features=32, bias=True)
      (3): ReLU()
      (4): Linear(in_features=32, out_features=2, bias=True)
    )
    """
    sizes, generator = (inputs, *hidden), torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    for width_in, width_out in pairwise(sizes):
        normalise = [nn.BatchNorm1d(width_out)] if batch_norm else []
        layers += [_seeded_linear(width_in, width_out, generator), *normalise, nn.ReLU()]
    layers.append(_seeded_linear(sizes[-1], outputs, generator))
    return nn.Sequential(*layers)


def linear(inputs: int, outputs: int, *, seed: int = 0) -> nn.Linear:
    """One linear layer, y = W·x + b. On the `line` dataset it has two parameters: slope and intercept."""
    return _seeded_linear(inputs, outputs, torch.Generator().manual_seed(seed))


def mlp_batchnorm(inputs: int, outputs: int, *, seed: int = 0) -> nn.Sequential:
    """`mlp` with batch normalisation: Linear → BatchNorm1d → ReLU for each hidden layer, then a Linear output.

    While training, each BatchNorm layer rescales its inputs by the mean and spread of the
    *batch* they arrived in, so a sample's output depends on the other samples of its batch
    (evaluation uses the running averages it kept instead). That is why splitting a batch into
    micro-batches (`accumulate`) changes this model's training, and not `mlp`'s.

    >>> [type(layer).__name__ for layer in mlp_batchnorm(2, 2)]
    ['Linear', 'BatchNorm1d', 'ReLU', 'Linear', 'BatchNorm1d', 'ReLU', 'Linear']
    """
    return mlp(inputs, outputs, batch_norm=True, seed=seed)


BUILT_IN_MODELS = {"mlp": mlp, "linear": linear, "mlp_batchnorm": mlp_batchnorm}  # what `train(model=...)` builds
MODELS = tuple(BUILT_IN_MODELS)  # the names, for checks and messages


def build(model: str | nn.Module, data: Dataset, seed: int, dtype: torch.dtype = torch.float32) -> nn.Module:
    """The model `train` will use, in number format `dtype`: one made to fit `data` when named, or a copy
    of yours, checked to fit.

    A module you pass is copied, so training never changes the object you hold, cast to `dtype`
    (float32 unless `precision` says otherwise) and then checked with `check_model` before any
    training starts: a float64 module trains with precision="float64" as it is. One with more
    digits than `dtype` keeps is refused rather than rounded without a word.
    """
    if isinstance(model, nn.Module):
        wider = sorted({str(p.dtype) for p in model.parameters() if p.is_floating_point() and p.dtype.itemsize >
                        dtype.itemsize})  # fmt: skip
        if wider:
            precision = str(dtype).removeprefix("torch.")
            raise ValueError(f"model {type(model).__name__} holds {wider[0].removeprefix('torch.')} parameters, more "
                             f"digits than precision={precision!r} keeps; train it with precision='float64', or "
                             f"pass model.float() to round it on purpose.")  # fmt: skip
        copied = copy.deepcopy(model).to(dtype)
        check_model(copied, data)
        return copied
    return BUILT_IN_MODELS[model](data.features, data.outputs, seed=seed).to(dtype)


def fresh_weights(model: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """New random weights for `model`'s architecture, drawn from `seed`: where a brand-new model would start.

    Every linear layer is initialised as `nn.Linear` does it, from a private generator (for the
    built-in models, these are the very weights `build(..., seed=seed)` gives);
    any other layer by its own `reset_parameters()`, with torch's generator seeded from `seed`.
    The model itself is not changed. `reset="reinit"` starts every epoch from such weights.
    """
    fresh, generator = copy.deepcopy(model).cpu(), torch.Generator().manual_seed(seed)
    for module in fresh.modules():
        if isinstance(module, nn.Linear):
            _initialise_linear(module, generator)
        elif hasattr(module, "reset_parameters"):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                module.reset_parameters()
    return fresh.state_dict()


def normalises_by_batch(model: nn.Module) -> bool:
    """Whether `model` has batch normalisation: while training, a sample's output depends on the rest of its batch."""
    return any(isinstance(module, nn.modules.batchnorm._BatchNorm) for module in model.modules())


def check_batches(model: nn.Module, name: str, sizes: Sequence[int], accumulate: int) -> None:
    """Refuse, before training, a batch or micro-batch of one sample when `model` (called `name`) normalises by batch.

    Batch normalisation divides by the spread of the batch, and one sample has none: torch would
    stop mid-epoch. `sizes` are the epoch's batch sizes; each is split into `accumulate` pieces
    as `torch.chunk` does (pieces of ⌈size / accumulate⌉, the last one smaller).
    """
    if not normalises_by_batch(model):
        return
    for size in sorted(set(sizes)):
        piece = math.ceil(size / accumulate)
        if min(piece, size % piece or piece) >= 2:
            continue
        where = (f"a batch of {size} split into accumulate={accumulate} micro-batches has one of" if accumulate > 1
                 else "the epoch's last batch has")  # fmt: skip
        raise ValueError(
            f"model {name} has batch normalisation, which needs at least 2 samples in every batch and micro-batch, "
            f"but {where} 1 sample; choose another batch_size{' or accumulate' if accumulate > 1 else ''}, "
            f"or drop_last=True."
        )


def flat_parameters(model: nn.Module) -> torch.Tensor:
    """All parameters of `model` as one detached 1-D tensor (a copy), in a fixed order."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def forward_from_flat(model: nn.Module, flat: np.ndarray | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`model`'s outputs for `x` when its parameters are `flat` (in `flat_parameters` order); `model` is unchanged.

    This is how a recorded run is evaluated at any epoch without a trained module: `flat` is a
    row of the record (`run.params(epoch, "end")`) and `model` only lends its architecture, so a
    freshly built one does. It runs in eval mode and without gradients, as a prediction should.

    >>> net = mlp(2, 2)
    >>> x = torch.zeros(1, 2)
    >>> bool(torch.equal(forward_from_flat(net, flat_parameters(net), x), net(x)))
    True
    """
    names_and_shapes = [(name, parameter.shape) for name, parameter in model.named_parameters()]
    flat = torch.as_tensor(flat)
    wanted = sum(shape.numel() for _, shape in names_and_shapes)
    if flat.ndim != 1 or flat.numel() != wanted:
        raise ValueError(f"flat must hold the {wanted} parameters of {type(model).__name__} in one row; "
                         f"got shape {tuple(flat.shape)}.")  # fmt: skip
    first = next(model.parameters())  # the device and number type the module computes in
    pieces = torch.split(flat.to(first), [shape.numel() for _, shape in names_and_shapes])
    parameters = {name: piece.reshape(shape) for (name, shape), piece in zip(names_and_shapes, pieces, strict=True)}
    training = model.training
    model.eval()  # dropout must not drop anything from a prediction
    try:
        with torch.no_grad():
            return torch.func.functional_call(model, parameters, (x.to(first),))
    finally:
        model.train(training)


CHECK_ROWS = 5  # samples `check_model` sends through a module: a batch, since some go wrong only for more than one


def check_model(model: nn.Module, data: Dataset) -> None:
    """Raise a ValueError, before any training, if `model` cannot train on `data`.

    A batch of the first few samples goes through `model`, in its own number format (in eval mode,
    so that dropout and batch norm draw and update nothing): it must take `data.features` numbers
    per sample and return, for every sample of the batch, `data.outputs` floating-point scores, one
    per class for classification or one value for regression, that depend on a parameter that
    trains (else there is no gradient). A TorchScript module is refused: its copy cannot be trained.

    >>> check_model(nn.Linear(2, 1), moons_data)  # doctest: +SKIP
    ValueError: model Linear returns 1 number(s) per sample, but 'moons' has 2 classes, ...
    """
    name, parameters = type(model).__name__, list(model.parameters())
    if isinstance(model, torch.jit.ScriptModule):
        raise ValueError(f"model {name} is a TorchScript module (made by torch.jit.script or torch.jit.trace), "
                         f"whose copy torch cannot train; pass the nn.Module it was made from.")  # fmt: skip
    if not parameters:
        raise ValueError(f"model {name} has no parameters: there is nothing to train.")
    if not any(parameter.requires_grad for parameter in parameters):
        raise ValueError(f"model {name} has no parameter that trains: all {len(parameters)} are frozen "
                         f"(requires_grad=False); unfreeze some with parameter.requires_grad_(True).")  # fmt: skip
    wanted = (
        f"has {data.outputs} classes, and a classification model needs one output per class"
        if data.task == "classification"
        else "is a regression task, and a regression model needs one output per sample"
    )
    number_format = next((p.dtype for p in parameters if p.is_floating_point()), data.x.dtype)
    batch = data.x[:CHECK_ROWS].to(device=parameters[0].device, dtype=number_format)
    training = model.training
    model.eval()  # dropout and batch norm must not draw or update anything for a check
    try:
        with torch.enable_grad():  # (even inside no_grad) to see whether the output depends on a weight that trains
            output = model(batch)
    except torch.OutOfMemoryError:
        return  # no memory even for a few samples says nothing about shapes; training reports it in its own terms
    except (RuntimeError, IndexError, ValueError) as error:
        raise ValueError(
            f"model {name} cannot take the samples of {data.name!r}, which have {data.features} "
            f"feature(s) each (x of shape (samples, {data.features})); the forward pass said: "
            f"{str(error).splitlines()[0]}"
        ) from None
    finally:
        model.train(training)
    if not isinstance(output, torch.Tensor) or output.ndim != 2 or output.shape[0] != len(batch):
        got = f"shape {tuple(output.shape)}" if isinstance(output, torch.Tensor) else f"a {type(output).__name__}"
        raise ValueError(
            f"model {name} must return one tensor of shape (samples, {data.outputs}) for {data.name!r}; for a "
            f"batch of {len(batch)} sample(s) it returned {got}."
        )
    if not output.is_floating_point():
        raise ValueError(
            f"model {name} returns {str(output.dtype).removeprefix('torch.')} numbers, but a loss needs "
            f"floating-point scores; return the last layer's output (not its argmax or a rounding)."
        )
    if not output.requires_grad:
        raise ValueError(
            f"model {name} returns an output that depends on no parameter that trains (its forward detaches it "
            f"or runs under torch.no_grad()): there would be no gradient to train with."
        )
    if output.shape[1] != data.outputs:
        raise ValueError(
            f"model {name} returns {output.shape[1]} number(s) per sample, but {data.name!r} "
            f"{wanted} ({data.outputs}); change the size of its last layer."
        )


def _seeded_linear(inputs: int, outputs: int, generator: torch.Generator) -> nn.Linear:
    """`nn.Linear(inputs, outputs)` initialised as torch does it, but drawing from `generator`.

    These are the very numbers `torch.manual_seed(seed)` followed by `nn.Linear` gives; only the
    generator is private, so no other thread can draw from it in between.
    """
    layer = nn.utils.skip_init(nn.Linear, inputs, outputs)  # no draws from the global generator
    _initialise_linear(layer, generator)
    return layer


def _initialise_linear(layer: nn.Linear, generator: torch.Generator) -> None:
    """What `nn.Linear.reset_parameters` does, drawing from `generator` instead of torch's global one."""
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
    bound = 1 / math.sqrt(layer.in_features) if layer.in_features > 0 else 0
    if layer.bias is not None:
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
