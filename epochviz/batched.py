"""Train several small models at once, as one batched computation: K runs for about the price of one.

Comparing the reset policies, trying several seeds or learning rates means training K small
models on the same data. Each of those models is tiny, so training them one after the other
spends most of its time in Python, not in arithmetic. Here the K models' weights are stacked
(`torch.func.stack_module_state`: one (K, …) tensor per parameter) and each layer becomes one
batched matrix product (`torch.baddbmm` over the K models). Autograd then gives every model its
gradient in one backward pass, and torch's own optimizers update the stacks. Nothing mixes
between the models: row k of every tensor belongs to model k alone, with its own seed, split,
sample order, learning rate, optimizer and reset policy, and it is recorded by the very code
that records a `train` run (`train.record_epoch`).

Measured on a 2-core CPU for K = 8 MLPs (benchmarks/results.md, "batched"): about 5× faster
than K calls of `train` (6–7× for the training steps alone); `torch.func.vmap` over one
model's loss, with `grad` or with autograd, was 2–3× (its own bookkeeping costs more than these
models' arithmetic), and stacking the models' own parameters at every step about 4×.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

import numpy as np
import torch
from torch import nn
from torch.func import stack_module_state

from . import checks
from .config import TrainConfig, resolve_device
from .data import Dataset, as_dataset, batch_sizes, check_full_batch, epoch_batches, epoch_seed, split_rows
from .models import build, fresh_weights, normalises_by_batch
from .objectives import loss_function, make_optimizer
from .policies import POLICIES
from .run import Run
from .threads import torch_threads
from .train import record_epoch

VARIANT_ARGUMENTS = ("reset", "seed", "lr", "optimizer", "split")  # what may differ from model to model
# settings train_many supports only at these values (off, or torch's usual float32)
UNSUPPORTED = {
    "accumulate": 1,
    "memory_budget_mb": None,
    "checkpoint": None,
    "track_weights": False,
    "lr_schedule": "constant",
    "precision": "float32",
}


def train_many(data: Dataset | str, variants: Sequence[dict], **shared) -> list[Run]:
    """Train one model per entry of `variants`, all together, and return one Run per model.

    `shared` are `train`'s keyword arguments common to every model (epochs, batch_size, model,
    val_fraction, on_epoch, …); each variant is a dict that overrides some of `reset`, `seed`,
    `lr`, `optimizer` and `split` for its model. Run k is what `train(data, **{**shared,
    **variants[k]})` returns, up to float rounding; only `elapsed_s` differs (one clock for all).
    Its `model` holds the final weights, but it cannot `resume`: it has no loop state.
    `on_epoch(run)` is called after each epoch for each model still training, in variant order.
    Only the models "mlp" and "linear" can be batched ("mlp_batchnorm" cannot: its batch norm
    layers are not in the batched forward pass), without accumulate, memory_budget_mb,
    checkpoint or track_weights: use `train` for those. With `split` per variant, every split
    must have as many training rows as the others, and as many validation rows.

    >>> runs = train_many("moons", [{"reset": r} for r in ("never", "optimizer", "weights")], epochs=5)
    >>> [run.config.reset for run in runs]
    ['never', 'optimizer', 'weights']

    What to notice: the three runs start from exactly the same weights (same seed) and see the
    same samples in the same order; only the reset policy differs, so any gap between their loss
    curves is the reset's doing. Training the three took about as long as training one.
    """
    data = as_dataset(data)
    runs = _new_runs(data, variants, shared)
    with torch_threads(runs[0].config.threads):
        _train_together(data, runs, shared.get("on_epoch"))
    return runs


def _train_together(data: Dataset, runs: list[Run], on_epoch) -> None:
    """The batched loop: every step trains all K models at once; records go to each model's Run."""
    first = runs[0].config
    device = resolve_device(first.device)
    together = sorted(runs, key=_shared_optimizer)  # row by row; neighbours that share an optimizer share its rows

    # initialise once: each model as `train` would build it, its weights one row of the stacks
    for run in together:
        run.model = build(run.config.model, data, run.config.seed).to(device)
    initial_weights = [{name: value.clone() for name, value in run.model.state_dict().items()} for run in together]
    stacks, _ = stack_module_state([run.model for run in together])  # name → (K, …), leaves for autograd
    layers = list(zip(list(stacks.values())[::2], list(stacks.values())[1::2], strict=True))  # (matrix, bias) each
    groups = _groups(together, list(stacks.values()))
    loss_of = loss_function(data.task, reduction="none")
    x, y = data.x.to(device), data.y.to(device)
    val_rows = torch.as_tensor(np.stack([run.val_indices for run in together]), device=device)
    x_val, y_val = x[val_rows], y[val_rows]  # (K, validation samples, features): each model's own
    sizes = batch_sizes(len(together[0].train_indices), first.batch_size, first.drop_last)
    training = [True] * len(together)  # False once a model diverged
    started = time.perf_counter()

    for epoch in range(1, first.epochs + 1):
        # reset: each model does what its own policy says, never before the first epoch
        for row, run in enumerate(together):
            policy = POLICIES[run.config.reset]
            if epoch > 1 and policy.weights == "initial":
                _load(stacks, row, initial_weights[row])
            if epoch > 1 and policy.weights == "fresh":
                _load(stacks, row, fresh_weights(run.model, epoch_seed(run.config.seed, epoch)))
        for group in groups:
            if epoch > 1 and group.forgets:
                group.optimizer = make_optimizer(group.kind, group.weights, group.lr)
        start = _flat(stacks)

        # one pass over the training data: model k visits its own training rows in its own order
        order = np.stack([run.train_indices[run.sample_order(epoch)] for run in together])
        order = torch.as_tensor(order, device=device)
        losses, outputs, elapsed = [], [], []
        for batch in epoch_batches(order, sizes):
            # forward: all K models at once, each on its own batch; each model's mean loss (K,)
            output = _forward(layers, x[batch])
            loss = loss_of(output.flatten(0, 1), y[batch].flatten()).view(len(together), -1).mean(1)
            # backward: model k's loss depends on row k alone, so one backward of the sum gives each its own gradient
            for group in groups:
                group.optimizer.zero_grad(set_to_none=False)  # the stacks' gradients, row by row (views)
            loss.sum().backward()
            # update: one step of torch's optimizer for each group of models
            for group in groups:
                group.optimizer.step()
            losses.append(loss.detach())
            outputs.append(output.detach())
            elapsed.append(time.perf_counter() - started)

        # record what the epoch did, model by model, exactly as `train` records a run
        end, step_losses = _flat(stacks), torch.stack(losses).cpu().numpy()  # (K, parameters), (steps, K)
        seen = order[:, : sizes.sum()]
        train_accuracy = _accuracy(torch.cat(outputs, dim=1), y[seen], data.task)
        val_loss, val_accuracy = _validate(layers, loss_of, x_val, y_val, data.task)
        for row, run in enumerate(together):
            if not training[row]:
                continue
            diverged = record_epoch(
                run, epoch, sizes, step_losses[:, row], np.array(elapsed), None, start=start[row], end=end[row],
                train_accuracy=train_accuracy[row], validation=(val_loss[row], val_accuracy[row]),
                elapsed_s=time.perf_counter() - started,
            )  # fmt: skip
            training[row] = not diverged
            if diverged or on_epoch is not None or epoch == first.epochs:  # its model, as `train` leaves it
                _load_model(run.model, stacks, row)
        for run in runs:  # in the order of the variants, each model that completed this epoch
            if on_epoch is not None and run.completed_epochs == epoch:
                on_epoch(run)
        if not any(training):
            break


@dataclass
class _Group:
    """Models in neighbouring rows that share an optimizer kind, a learning rate and their reset: one optimizer."""

    rows: slice
    kind: str
    lr: float
    forgets: bool  # the reset policy clears the optimizer every epoch
    weights: list[torch.Tensor]  # the stacks' rows of these models (views): the optimizer updates them in place
    optimizer: torch.optim.Optimizer


def _shared_optimizer(run: Run) -> tuple[str, float, bool]:
    return run.config.optimizer, run.config.lr, POLICIES[run.config.reset].optimizer


def _groups(together: list[Run], stacks: list[torch.Tensor]) -> list[_Group]:
    """One group per run of neighbouring rows with the same optimizer, learning rate and optimizer reset.

    Each group's weights and gradients are views of its rows of the stacks and of the stacks'
    gradients (kept, zeroed in place), so backward fills them and torch's optimizer updates the stacks.
    """
    for stack in stacks:
        stack.grad = torch.zeros_like(stack)
    groups, start = [], 0
    for (kind, lr, forgets), members in groupby(together, key=_shared_optimizer):
        rows = slice(start, start + len(list(members)))
        weights = [stack.detach()[rows].requires_grad_() for stack in stacks]
        for own, stack in zip(weights, stacks, strict=True):
            own.grad = stack.grad[rows]
        groups.append(_Group(rows, kind, lr, forgets, weights, make_optimizer(kind, weights, lr)))
        start = rows.stop
    return groups


@torch.no_grad()
def _load(stacks: dict[str, torch.Tensor], row: int, weights: dict[str, torch.Tensor]) -> None:
    """Put one model's weights (a state dict) into its row of the stacks: what `load_state_dict` does in `train`."""
    for name, stack in stacks.items():
        stack[row] = weights[name]


@torch.no_grad()
def _load_model(model: nn.Module, stacks: dict[str, torch.Tensor], row: int) -> None:
    """The other way: the model's own parameters take its row of the stacks."""
    for parameter, stack in zip(model.parameters(), stacks.values(), strict=True):
        parameter.copy_(stack[row])


def _flat(stacks: dict[str, torch.Tensor]) -> np.ndarray:
    """Every model's weights, one flat row per model in `flat_parameters` order, on the host (a copy)."""
    return torch.cat([stack.detach().flatten(1) for stack in stacks.values()], dim=1).cpu().numpy()


def _forward(layers: list[tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor) -> torch.Tensor:
    """All K models on their own batch, x (K, batch, features) → (K, batch, outputs).

    Linear layers with a ReLU between them: the models `mlp` and `linear` build.
    """
    for number, (matrix, bias) in enumerate(layers, start=1):
        x = torch.baddbmm(bias.unsqueeze(1), x, matrix.transpose(1, 2))
        if number < len(layers):
            x = x.relu()
    return x


def _accuracy(output: torch.Tensor, target: torch.Tensor, task: str) -> list[float]:
    """Each model's share of its samples whose highest-scoring class is right (NaN for regression or none)."""
    if task != "classification" or target.shape[1] == 0:
        return [float("nan")] * len(target)
    return (output.argmax(-1) == target).float().mean(1).tolist()


@torch.no_grad()
def _validate(layers: list, loss_of, x: torch.Tensor, y: torch.Tensor, task: str) -> tuple[list[float], list[float]]:
    """Each model's mean loss and accuracy on its own validation rows (NaN when there are none)."""
    if x.shape[1] == 0:
        return [float("nan")] * len(x), [float("nan")] * len(x)
    output = _forward(layers, x)
    losses = loss_of(output.flatten(0, 1), y.flatten()).view(len(x), -1).mean(1)
    return losses.tolist(), _accuracy(output, y, task)


def _new_runs(data: Dataset, variants: Sequence[dict], shared: dict) -> list[Run]:
    """One empty Run per variant, its settings checked and its split chosen; errors name the argument."""
    if isinstance(variants, dict) or not isinstance(variants, Sequence) or not variants:
        raise TypeError("variants must be a non-empty list of dicts, one per model, e.g. [{'seed': 0}, {'seed': 1}].")
    settings = {key: value for key, value in shared.items() if key not in ("on_epoch", "split")}
    checks.function("on_epoch", shared.get("on_epoch"))
    runs = []
    for number, variant in enumerate(variants, start=1):
        if not isinstance(variant, dict):
            raise TypeError(f"variants must hold dicts; variant {number} is a {type(variant).__name__}.")
        if extra := sorted(set(variant) - set(VARIANT_ARGUMENTS)):
            raise ValueError(
                f"variant {number} sets {', '.join(extra)}: only {', '.join(VARIANT_ARGUMENTS)} may differ between "
                f"models. Pass {extra[0]} as a shared argument, or train that model with epochviz.train."
            )
        config = TrainConfig(**{**settings, **{key: value for key, value in variant.items() if key != "split"}})
        for name, default in UNSUPPORTED.items():
            if getattr(config, name) != default:
                raise ValueError(f"train_many does not support {name}={getattr(config, name)!r}; use epochviz.train.")
        if isinstance(config.model, nn.Module) or normalises_by_batch(build(config.model, data, config.seed)):
            yours = "your own module" if isinstance(config.model, nn.Module) else repr(config.model)
            raise ValueError(f"train_many batches only models of linear layers and ReLUs, model='mlp' or 'linear'; "
                             f"train {yours} with epochviz.train.")  # fmt: skip
        split = variant.get("split", shared.get("split"))
        train_rows, val_rows = split_rows(data, val_fraction=config.val_fraction, seed=config.seed, split=split)
        if runs and (len(train_rows), len(val_rows)) != (len(runs[0].train_indices), len(runs[0].val_indices)):
            raise ValueError(
                f"split of variant {number} has {len(train_rows)} training and {len(val_rows)} validation rows, "
                f"variant 1 has {len(runs[0].train_indices)} and {len(runs[0].val_indices)}: "
                f"batched models need splits of equal sizes."
            )
        runs.append(Run(config=config, data=data, train_indices=train_rows, val_indices=val_rows,
                        cannot_resume_because="it was trained by train_many, which keeps no loop state per model; "
                        "train it with epochviz.train to resume it"))  # fmt: skip
    check_full_batch(config.batch_size, len(train_rows), config.drop_last)
    return runs
