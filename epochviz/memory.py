"""How much device memory a training run needs during a step, and which batch sizes fit a device.

An epoch does not depend on hardware, but whether a batch size can run on it does: during a
step the device holds the parameters, their gradients, the optimizer's state, everything the
forward pass saves for the backward pass ("activations") and, in epochviz, the whole dataset
(training and validation samples, put on the device once). Only the activations grow with the
batch size, which is why a batch too big for a GPU runs out of memory, and why gradient
accumulation (several small forward/backward passes per step) fixes it without changing what
an epoch is. It is the same training only for models without batch normalisation (see
`models.mlp_batchnorm`), and it takes longer: more, smaller passes per step.

Activation bytes are measured, not guessed: a forward pass runs under
`torch.autograd.graph.saved_tensors_hooks` and adds up every tensor autograd keeps.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn

from . import checks
from .data import Dataset, as_dataset
from .models import MODELS, build, normalises_by_batch
from .objectives import OPTIMIZERS, loss_function, make_optimizer
from .step_memory import MB, PARTS, Footprint

MAX_WEIGHT_STORE_MB = 256  # what track_weights may keep: far above any teaching run, well below a laptop's memory
_MEASURED_UP_TO = 8192  # above this batch size, activations are extrapolated from two measurements


class OutOfMemoryError(RuntimeError):
    """A training step needs more memory than the device (real or simulated) has."""

    def __init__(self, message: str, *, needed_mb: float | None, budget_mb: float | None,
                 largest_batch_size: int | None) -> None:  # fmt: skip
        super().__init__(message)
        self.needed_mb = needed_mb
        self.budget_mb = budget_mb
        self.largest_batch_size = largest_batch_size


def footprint(model: str | nn.Module, data: Dataset, batch_size: int, optimizer: str = "sgd") -> Footprint:
    """Measure the device memory a run of `model` on `data` needs while it takes a step on `batch_size` samples.

    `model` is a built-in model's name (such as "mlp") or your own module (it is not changed).
    The batch is drawn from `data` (repeated if the batch is larger than the dataset: only its
    shape matters here). `data` counts whole: `train` keeps all of its training and validation
    samples on the device for the whole run.

    >>> import epochviz as ev
    >>> small, large = (footprint("mlp", ev.moons(), b) for b in (32, 4096))
    >>> small.params == large.params and large.activations > 100 * small.activations
    True

    What to notice: parameters, gradients, optimizer state and data stay the same for every
    batch size; only the activations grow, in proportion to the batch.
    """
    batch_size = checks.whole("batch_size", batch_size, minimum=1, maximum=checks.MAX_SAMPLES)
    checks.choice("optimizer", optimizer, OPTIMIZERS)
    data = as_dataset(data)
    if not isinstance(model, nn.Module):
        checks.choice("model", model, MODELS)
    net = build(model, data, seed=0).cpu()
    weights = sum(p.numel() * p.element_size() for p in net.parameters() if p.requires_grad)
    return Footprint(
        batch_size=batch_size,
        optimizer=optimizer,
        params=sum(t.numel() * t.element_size() for t in (*net.parameters(), *net.buffers())),
        grads=weights,
        optimizer_state=_optimizer_state_bytes(net, optimizer),
        activations=_activation_bytes(net, data, batch_size),
        data=data.x.nbytes + data.y.nbytes,
    )


def parts_that_grow(model: str | nn.Module, data: Dataset, batch_sizes: tuple[int, int], optimizer: str = "sgd") -> str:
    """Which parts of the footprint are larger with the second of `batch_sizes` than with the first, in words.

    >>> import epochviz as ev
    >>> parts_that_grow("mlp", ev.digits(), (512, 1024), optimizer="adam")
    'activations'
    """
    if isinstance(batch_sizes, (str, bytes)) or not isinstance(batch_sizes, Sequence) or len(batch_sizes) != 2:
        raise TypeError(f"batch_sizes must be two batch sizes such as (512, 1024); got {batch_sizes!r}.")
    small, large = (footprint(model, data, size, optimizer) for size in batch_sizes)
    grown = [part.replace("_", " ") for part in PARTS if getattr(large, part) > getattr(small, part)]
    return " and ".join(grown) or "nothing"


def max_batch_size(model: str | nn.Module, data: Dataset, budget_mb: float, optimizer: str = "sgd") -> int:
    """The largest batch size whose step, with `data` on the device, fits in `budget_mb` megabytes (0 if none does),
    and that `train` accepts (at most 10,000,000 samples).

    >>> import epochviz as ev
    >>> b = max_batch_size("mlp", ev.moons(), budget_mb=0.5)
    >>> footprint("mlp", ev.moons(), b).total_mb <= 0.5 < footprint("mlp", ev.moons(), b + 1).total_mb
    True
    """
    budget_mb = checks.number("budget_mb", budget_mb, low=0, high=1e9, low_open=True)
    return largest_fitting(footprint(model, data, 1, optimizer), footprint(model, data, 2, optimizer), budget_mb)


def largest_fitting(one: Footprint, two: Footprint, budget_mb: float) -> int:
    """The largest batch size that fits in `budget_mb` MB, from the footprints of batches of 1 and 2 (0 if none).

    Only the activations grow with the batch, one sample's worth at a time, so two sizes tell every other.
    It is at most MAX_SAMPLES, the largest batch `train` accepts, however large the budget.
    """
    per_sample = two.total - one.total
    fixed = one.total - per_sample
    if per_sample <= 0 or one.total > budget_mb * MB:
        return 0
    return min(int((budget_mb * MB - fixed) // per_sample), checks.MAX_SAMPLES)


def micro_batch_size(batch_size: int, accumulate: int) -> int:
    """Samples in memory at once when each batch is split into `accumulate` micro-batches."""
    check_accumulate(batch_size, accumulate)
    return math.ceil(batch_size / accumulate)


def check_accumulate(batch_size: int, accumulate: int) -> None:
    """Refuse more micro-batches than a batch has samples: some would be empty."""
    if accumulate > batch_size:
        raise ValueError(
            f"accumulate={accumulate} splits each batch into more micro-batches than the "
            f"batch has samples (batch_size={batch_size}); use accumulate ≤ batch_size."
        )


def check_fits(model: str | nn.Module, data: Dataset, batch_size: int, accumulate: int, optimizer: str,
               budget_mb: float) -> None:  # fmt: skip
    """Raise OutOfMemoryError before training if a step of this size, with `data` on the device, exceeds `budget_mb`."""
    needed = footprint(model, data, micro_batch_size(batch_size, accumulate), optimizer)
    if needed.total_mb > budget_mb:
        raise out_of_memory(needed, batch_size, budget_mb, max_batch_size(model, data, budget_mb, optimizer))


def out_of_memory(needed: Footprint, batch_size: int, budget_mb: float, largest: int) -> OutOfMemoryError:
    """The error for a step that needs `needed` (batches of `batch_size`, maybe split) but has only `budget_mb` MB.

    It names the way out: the `largest` batch size that fits, or accumulating micro-batches of that size.
    """
    remedy = f"The largest batch that fits is {largest}" if largest else "Not even one sample fits"
    if largest:
        splits = math.ceil(batch_size / largest)
        remedy += f"; or keep batches of {batch_size} and set accumulate={splits} (micro-batches of ≤ {largest})"
    return OutOfMemoryError(
        f"Out of memory: training with {needed.batch_size} samples at once needs {needed.total_mb:.3g} MB "
        f"({needed}) but the device has {budget_mb:.3g} MB. {remedy}.",
        needed_mb=needed.total_mb,
        budget_mb=budget_mb,
        largest_batch_size=largest,
    )


def check_weight_store(model: nn.Module, steps: int) -> None:
    """Refuse, before training, to keep the weights of `steps` steps (`track_weights=True`) beyond MAX_WEIGHT_STORE_MB.

    The run keeps one copy of every parameter per step, in host memory: steps × parameters
    numbers, which for a large model trained with small batches is gigabytes.
    """
    parameters = sum(p.numel() for p in model.parameters())
    needed_mb = steps * sum(p.numel() * p.element_size() for p in model.parameters()) / MB
    if needed_mb > MAX_WEIGHT_STORE_MB:
        raise ValueError(
            f"track_weights=True would keep {steps:,} steps × {parameters:,} parameters = {needed_mb:,.0f} MB of "
            f"weights, more than the {MAX_WEIGHT_STORE_MB:,} MB allowed; train fewer epochs, with a larger batch_size "
            f"or a smaller model, or use track_weights=False (each epoch's start and end weights are always kept)."
        )


def from_device_error(error: BaseException, device: torch.device, batch_size: int) -> OutOfMemoryError:
    """Turn PyTorch's own out-of-memory error into ours, with the device's numbers when it has them."""
    budget = None
    if device.type == "cuda":
        budget = torch.cuda.get_device_properties(device).total_memory / MB
    size = f" ({budget:.0f} MB)" if budget else ""
    return OutOfMemoryError(
        f"Out of memory on {device}{size} with batch_size={batch_size}: use a smaller batch, or "
        f"accumulate=k to split each batch into k micro-batches. PyTorch said: {str(error).splitlines()[0]}",
        needed_mb=None,
        budget_mb=budget,
        largest_batch_size=None,
    )


def _activation_bytes(model: nn.Module, data: Dataset, batch_size: int) -> int:
    """Bytes autograd saves during one forward pass and loss on `batch_size` samples."""
    if batch_size == 1 and normalises_by_batch(model):  # it cannot train on one sample; what it saves grows linearly
        two, three = (_activation_bytes(model, data, size) for size in (2, 3))
        return 2 * two - three
    if batch_size > _MEASURED_UP_TO:
        half, full = (_activation_bytes(model, data, size) for size in (_MEASURED_UP_TO // 2, _MEASURED_UP_TO))
        per_sample = (full - half) / (_MEASURED_UP_TO // 2)
        return round(full + per_sample * (batch_size - _MEASURED_UP_TO))
    rows = torch.arange(batch_size) % len(data)
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}  # storage address → bytes, so a tensor saved twice counts once

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        loss_function(data.task)(model(data.x[rows]), data.y[rows])
    return sum(saved.values())


def _optimizer_state_bytes(model: nn.Module, optimizer: str) -> int:
    """Bytes of state the optimizer keeps after one step (measured on a copy of the model)."""
    copied = copy.deepcopy(model)
    for p in copied.parameters():
        p.grad = torch.zeros_like(p)
    stepper = make_optimizer(optimizer, copied, lr=0.0)
    stepper.step()
    return sum(
        value.numel() * value.element_size()
        for state in stepper.state.values()
        for value in state.values()
        if isinstance(value, torch.Tensor)
    )
