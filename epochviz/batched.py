"""Train several small models at once, as one batched computation: K runs for about the price of one.

Comparing the reset policies, trying several seeds or learning rates means training K small
models on the same data. Each of those models is tiny, so training them one after the other
spends most of its time in Python, not in arithmetic. Here the K models' weights are stacked
into one (K, parameters) tensor and each layer becomes one batched matrix product
(`torch.baddbmm` over the K models), forward and backward. Nothing mixes between the models:
row k of every tensor belongs to model k alone, with its own seed, split, sample order,
learning rate, optimizer and reset policy.

The backward pass is written out (the chain rule, layer by layer) rather than left to autograd:
for models this small autograd's bookkeeping costs more than the arithmetic. Measured on a
2-core CPU for K = 8 MLPs: this way trains about 6× faster than K calls of `train`, autograd
on the stacked weights about 4×, and `torch.func.vmap` over a per-model loss was slower still.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import checks
from .config import TrainConfig, resolve_device
from .data import Dataset, as_dataset, check_full_batch, epoch_seed, split_rows
from .models import build, flat_parameters, fresh_weights
from .objectives import MOMENTUM
from .policies import POLICIES
from .run import Run
from .train import epoch_diverged, torch_threads

VARIANT_ARGUMENTS = ("reset", "seed", "lr", "optimizer", "split")  # what may differ from model to model
UNSUPPORTED = {"accumulate": 1, "memory_budget_mb": None, "checkpoint": None, "track_weights": False}  # only "off"
BETAS, EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults


def train_many(data: Dataset | str, variants: Sequence[dict], **shared) -> list[Run]:
    """Train one model per entry of `variants`, all together, and return one Run per model.

    `shared` are `train`'s keyword arguments common to every model (epochs, batch_size, model,
    val_fraction, on_epoch, …); each variant is a dict that overrides some of `reset`, `seed`,
    `lr`, `optimizer` and `split` for its model. Run k is what `train(data, **{**shared,
    **variants[k]})` returns, up to float rounding; only `elapsed_s` differs (one clock for all).
    Its `model` holds the final weights, but it cannot `resume`: it has no loop state.
    `on_epoch(run)` is called after each epoch for each model still training, in variant order.
    Only the named models ("mlp", "linear") can be batched, without accumulate, memory_budget_mb,
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

    # initialise once: each model as `train` would build it, its weights one row of a (K, parameters) tensor
    for run in runs:
        run.model = build(run.config.model, data, run.config.seed).to(device)
    weights = torch.stack([flat_parameters(run.model) for run in runs])
    initial_weights, layers = weights.clone(), _layer_views(weights, runs[0].model)
    optimizers = _Optimizers([run.config.optimizer for run in runs], [run.config.lr for run in runs], weights)
    policies = [POLICIES[run.config.reset] for run in runs]
    back_to_initial = torch.tensor([policy.weights == "initial" for policy in policies], device=device)
    reset_optimizer = torch.tensor([policy.optimizer for policy in policies], device=device)
    x, y = data.x.to(device), data.y.to(device)
    val_rows = torch.as_tensor(np.stack([run.val_indices for run in runs]), device=device)
    x_val, y_val = x[val_rows], y[val_rows]  # (K, validation samples, features): each model's own
    training = [True] * len(runs)  # False once a model's loss stops being finite
    started = time.perf_counter()

    for epoch in range(1, first.epochs + 1):
        # reset: each model does what its own policy says, never before the first epoch
        if epoch > 1 and back_to_initial.any():
            weights[back_to_initial] = initial_weights[back_to_initial]
        for k, (run, policy) in enumerate(zip(runs, policies, strict=True)):
            if epoch > 1 and policy.weights == "fresh":  # what `train` loads: new weights drawn from (seed, epoch)
                fresh = fresh_weights(run.model, epoch_seed(run.config.seed, epoch))
                weights[k] = torch.cat([fresh[name].reshape(-1) for name, _ in run.model.named_parameters()])
        if epoch > 1 and reset_optimizer.any():
            optimizers.forget(reset_optimizer)
        start = weights.cpu().numpy().copy()

        # one pass over the training data: model k visits its own training rows in its own order
        order = np.stack([run.train_indices[run.sample_order(epoch)] for run in runs])
        batches = list(torch.as_tensor(order, device=device).split(first.batch_size, dim=1))
        if first.drop_last and batches[-1].shape[1] < first.batch_size:
            batches.pop()
        losses, correct, elapsed = [], [], []
        for batch in batches:
            # forward and backward, for all K models at once (each on its own batch)
            targets = y[batch]
            activations = _forward(layers, x[batch])
            loss, slope = _losses(activations[-1], targets, data.task)
            gradient = _backward(layers, activations, slope)
            # update: one optimizer step per model
            optimizers.step(weights, gradient)
            losses.append(loss)
            if data.task == "classification":
                correct.append((activations[-1].argmax(-1) == targets).sum(1))
            elapsed.append(time.perf_counter() - started)

        # record what the epoch did, model by model, exactly as `train` records a run
        step_losses = torch.stack(losses).cpu().numpy().astype(np.float64)  # (steps, K)
        sizes = np.array([batch.shape[1] for batch in batches])
        train_accuracy = (torch.stack(correct).sum(0) / int(sizes.sum())).tolist() if correct else [np.nan] * len(runs)
        val_loss, val_accuracy = _validate(layers, x_val, y_val, data.task)
        end = weights.cpu().numpy().copy()
        for k, run in enumerate(runs):
            if not training[k]:
                continue
            finite = np.isfinite(step_losses[:, k])
            done = len(batches) if finite.all() else int(np.argmin(finite))
            run.add_steps(epoch, sizes[:done], step_losses[:done, k], np.array(elapsed[:done]))
            torch.nn.utils.vector_to_parameters(weights[k], run.model.parameters())
            if done < len(batches):
                run.diverged_at, training[k] = (epoch, run.total_steps + 1), False
                continue
            if epoch_diverged(weights[k], val_loss[k], len(run.val_indices)):
                run.diverged_at, training[k] = (epoch, run.total_steps), False
                continue
            run.add_epoch(
                train_loss=float(np.average(step_losses[:, k], weights=sizes)),
                val_loss=val_loss[k],
                train_accuracy=train_accuracy[k],
                val_accuracy=val_accuracy[k],
                start=start[k],
                end=end[k],
                elapsed_s=time.perf_counter() - started,
            )
            if on_epoch is not None:
                on_epoch(run)
        if not any(training):
            break


def _layer_views(weights: torch.Tensor, model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each linear layer's (matrix, bias) for all K models, as views into the rows of `weights`.

    The views share memory with `weights`, so updating `weights` in place updates every layer.
    """
    views, start = [], 0
    for layer in (module for module in model.modules() if isinstance(module, nn.Linear)):
        outputs, inputs = layer.out_features, layer.in_features
        matrix = weights[:, start : start + outputs * inputs].view(-1, outputs, inputs)
        views.append((matrix, weights[:, start + outputs * inputs : start + outputs * (inputs + 1)]))
        start += outputs * (inputs + 1)
    return views


def _forward(layers: list, x: torch.Tensor) -> list[torch.Tensor]:
    """All K models on their own batch, x (K, batch, features): each layer's input, then the output.

    Linear layers with a ReLU between them: the models `mlp` and `linear` build.
    """
    activations = [x]
    for number, (matrix, bias) in enumerate(layers, start=1):
        x = torch.baddbmm(bias.unsqueeze(1), x, matrix.transpose(1, 2))
        if number < len(layers):
            x = x.relu()
        activations.append(x)
    return activations


def _losses(output: torch.Tensor, target: torch.Tensor, task: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Each model's mean loss on its own batch (K,), and its gradient with respect to `output`.

    The losses of `objectives.loss_function`: cross-entropy, whose gradient is softmax − one-hot,
    or mean squared error, whose gradient is 2 · error; both divided by the batch size (a mean).
    """
    if task == "classification":
        log_probabilities = output.log_softmax(-1)
        losses = -log_probabilities.gather(-1, target.unsqueeze(-1)).squeeze(-1).mean(1)
        slope = log_probabilities.exp() - F.one_hot(target, output.shape[-1])
    else:
        error = output.squeeze(-1) - target
        losses, slope = error.square().mean(1), 2 * error.unsqueeze(-1)
    return losses, slope / target.shape[1]


def _backward(layers: list, activations: list[torch.Tensor], slope: torch.Tensor) -> torch.Tensor:
    """The chain rule from the output back to the first layer: every model's gradient, shape (K, parameters).

    `slope` starts as the loss's gradient with respect to the output; at each layer it gives that
    layer's weight gradient (slope · input) and bias gradient (slope summed over the batch).
    """
    gradients = []
    for number in reversed(range(len(layers))):
        gradients[:0] = [torch.bmm(slope.transpose(1, 2), activations[number]).flatten(1), slope.sum(1)]
        if number > 0:  # back through the layer, then through the ReLU before it
            slope = torch.bmm(slope, layers[number][0]) * (activations[number] > 0)
    return torch.cat(gradients, dim=1)


def _validate(layers: list, x: torch.Tensor, y: torch.Tensor, task: str) -> tuple[list[float], list[float]]:
    """Each model's loss and accuracy on its own validation rows (NaN when there are none)."""
    count = len(x)
    if x.shape[1] == 0:
        return [float("nan")] * count, [float("nan")] * count
    output = _forward(layers, x)[-1]
    accuracy = (output.argmax(-1) == y).float().mean(1).tolist() if task == "classification" else [float("nan")] * count
    return _losses(output, y, task)[0].tolist(), accuracy


class _Optimizers:
    """torch.optim's SGD, SGD with momentum and Adam on stacked weights: row k follows model k's optimizer.

    Each row has its own learning rate and its own step count, so a reset of one model's
    optimizer state (`forget`) leaves the others' momentum and averages alone.
    """

    def __init__(self, kinds: list[str], lr: list[float], like: torch.Tensor) -> None:
        everyone = slice(None)  # plain slicing when all models use one optimizer: no gathering
        self.rows = {
            kind: everyone if set(kinds) == {kind} else torch.tensor([k == kind for k in kinds], device=like.device)
            for kind in set(kinds)
        }
        self.lr = torch.tensor(lr, dtype=like.dtype, device=like.device).unsqueeze(1)
        self.average = torch.zeros_like(like)  # momentum buffer, or Adam's running mean of gradients
        self.average_of_squares = torch.zeros_like(like)  # Adam's running mean of squared gradients
        self.steps = torch.zeros(len(kinds), 1, dtype=torch.float64, device=like.device)  # since the last reset

    def forget(self, models: torch.Tensor) -> None:
        """What a fresh torch optimizer has for these models: no momentum, no averages, no steps."""
        self.average[models] = 0
        self.average_of_squares[models] = 0
        self.steps[models] = 0

    def step(self, weights: torch.Tensor, gradient: torch.Tensor) -> None:
        """One update of every model, in place, as its own torch optimizer would make it."""
        self.steps += 1
        direction = gradient.clone()  # plain SGD moves along the gradient itself
        if "momentum" in self.rows:  # buffer = momentum · buffer + gradient (the first step: the gradient)
            rows = self.rows["momentum"]
            self.average[rows] = self.average[rows].mul(MOMENTUM).add(gradient[rows])
            direction[rows] = self.average[rows]
        if "adam" in self.rows:  # running means of gradients and their squares, with bias correction
            rows = self.rows["adam"]
            part = gradient[rows]
            mean = self.average[rows].lerp(part, 1 - BETAS[0])
            mean_of_squares = self.average_of_squares[rows].mul(BETAS[1]).addcmul(part, part, value=1 - BETAS[1])
            self.average[rows], self.average_of_squares[rows] = mean, mean_of_squares
            steps = self.steps[rows]
            correction = (1 - BETAS[1] ** steps).sqrt().to(weights.dtype)
            scale = (1 / (1 - BETAS[0] ** steps)).to(weights.dtype)
            direction[rows] = scale * mean / (mean_of_squares.sqrt() / correction + EPS)
        weights -= self.lr * direction


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
        if isinstance(config.model, nn.Module):
            raise ValueError(
                "train_many batches only model='mlp' or 'linear'; train your own module with epochviz.train."
            )
        split = variant.get("split", shared.get("split"))
        train_rows, val_rows = split_rows(len(data), val_fraction=config.val_fraction, seed=config.seed, split=split)
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
