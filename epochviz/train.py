"""The training loop: initialise once, then for each epoch, for each batch: forward, loss, backward, step.

This is the file to read when you wonder whether weights are reset between epochs. They are
not: `train` creates the model once, and every epoch of `_train_epochs` continues from the
weights the previous epoch ended with. The `reset` argument lets you try the other
hypotheses ("every epoch starts over") and see what they would do to the loss.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from . import checkpoint, checks
from .checkpoint import check_savable
from .config import TrainConfig, checkpoint_path, resolve_device
from .data import Dataset, as_dataset, batch_sizes, check_full_batch, epoch_batches, epoch_order, epoch_seed, split_rows
from .memory import check_fits, check_weight_store, from_device_error
from .models import build, check_batches, flat_parameters, fresh_weights
from .objectives import accuracy, evaluate, loss_function, make_optimizer
from .policies import POLICIES
from .run import Run
from .schedules import make_schedule
from .threads import torch_threads


@dataclass
class TrainingState:
    """What the loop needs to carry on: the model, its optimizer, and the tensors it trains on.

    A run that can carry on holds one in `run.training_state`; only this module reads it.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    initial_weights: dict[str, torch.Tensor]  # kept for a policy that restores them (reset="weights")
    x: torch.Tensor  # training features, on the training device
    y: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    generator_state: torch.Tensor  # torch's global generator on the training device, as the last epoch left it
    schedule: torch.optim.lr_scheduler.LRScheduler | None = None  # moves the optimizer's lr ("constant": None)
    saved_epoch: int = 0  # the last epoch the checkpoint file holds (0: none yet)


def train(
    data: Dataset | str = "moons",
    *,
    model: str | nn.Module = "mlp",
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 0.1,
    optimizer: str = "sgd",
    lr_schedule: str = "constant",
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
    threads: int | None = 1,
    precision: str = "float32",
    split: tuple[np.ndarray, np.ndarray] | None = None,
) -> Run:
    """Train a small model for `epochs` passes over `data` and record everything it does.

    Every argument is described in `TrainConfig`. `on_epoch(run)` is called after each epoch
    with the run so far (live plots use it). `split=(train_rows, val_rows)` chooses exactly which
    rows of `data` train and validate, instead of a random `val_fraction` (cross-validation uses it).

    >>> run = train("moons", epochs=5, seed=0)
    >>> bool(run.epochs.train_loss.iloc[-1] < run.epochs.train_loss.iloc[0])
    True

    What to notice: the loss of epoch 2 starts where epoch 1 ended, because nothing is reset.
    Try `reset="weights"` and every epoch starts again from the same initial weights.
    """
    config = TrainConfig(
        model=model, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, lr_schedule=lr_schedule,
        reset=reset, shuffle=shuffle, drop_last=drop_last, val_fraction=val_fraction, seed=seed, device=device,
        accumulate=accumulate, memory_budget_mb=memory_budget_mb, checkpoint=checkpoint,
        track_weights=track_weights, threads=threads, precision=precision,
    )  # fmt: skip
    data = as_dataset(data)
    train_rows, val_rows = split_rows(data, val_fraction=config.val_fraction, seed=config.seed, split=split)
    check_full_batch(config.batch_size, len(train_rows), config.drop_last)
    target = resolve_device(config.device)

    # initialise once: every epoch below continues from these weights unless `reset` says otherwise
    net = build(config.model, data, config.seed, config.dtype)
    sizes = batch_sizes(len(train_rows), config.batch_size, config.drop_last).tolist()
    check_batches(net, config.model_name, sizes, config.accumulate)
    if config.checkpoint and isinstance(config.model, nn.Module):
        check_savable(config)
    if config.memory_budget_mb is not None:  # a simulated device: refuse a step that, with the data, would not fit
        batch = min(config.batch_size, len(train_rows))
        on_device = data.subset(np.concatenate([train_rows, val_rows]))  # the samples `_attach` puts on the device
        check_fits(net, on_device, batch, config.accumulate, config.optimizer, config.memory_budget_mb)
    run = Run(config=config, data=data, train_indices=train_rows, val_indices=val_rows)
    _attach(run, net, target)
    return _train_until(run, config.epochs, on_epoch)


def resume(source: str | os.PathLike | Run, epochs: int, *, on_epoch: Callable[[Run], None] | None = None,
           model: nn.Module | None = None, device: str = "auto", leave_out: str | None = None) -> Run:  # fmt: skip
    """Carry on training until `epochs` epochs in total, from a checkpoint file or a Run in memory.

    A Run in memory carries on in place (like calling `fit` again): the same object is returned,
    with more epochs and `run.config.epochs` raised to `epochs`; views and copies made of it
    before (`first`) stay as they were. A checkpoint gives a new Run that keeps
    saving to the same file and trains on `device`. `model` is needed only when the run
    trained your own module: pass one of the same architecture to load the weights into.

    `leave_out` ("optimizer_state" or "generator_state") resumes from a file as if that piece had
    not been saved, to see what it holds: the optimizer starts over (momentum and Adam's averages
    from zero), or torch's generator starts from the seed again, as a script that calls
    `torch.manual_seed(seed)` and then loads the rest would do. Such a run is an experiment: it
    does not save to the file it came from.

    >>> run = train("moons", epochs=3)
    >>> resume(run, epochs=6).completed_epochs
    6

    What to notice: the result is exactly `train("moons", epochs=6)`: the same losses and the same
    weights. Stopping between epochs changes nothing; the epochs are only bookkeeping.
    """
    target = resolve_device(device)
    if leave_out is not None:
        checks.choice("leave_out", leave_out, checkpoint.LEAVABLE)
    if model is not None and not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch module of the architecture that was trained, or None; "
                        f"got {type(model).__name__}.")  # fmt: skip
    if isinstance(source, Run):
        run = source
        if run.training_state is None:
            raise ValueError(f"this Run cannot resume: {run.cannot_resume_because}.")
        if model is not None or leave_out is not None:
            argument = "model" if model is not None else "leave_out"
            raise ValueError(f"{argument} is only for resuming from a checkpoint file; a Run carries on with all "
                             f"it has.")  # fmt: skip
    elif isinstance(source, (str, os.PathLike)):
        saved = checkpoint.load(source, model=model)
        run = saved["run"]
        net = build(run.config.model, run.data, run.config.seed, run.config.dtype)
        checkpoint.check_model_fits(source, saved, net, yours=model is not None)
        net.load_state_dict(saved["model_state"])
        if leave_out is not None:
            saved[leave_out] = None
        # it trains on `device` and keeps saving where it was read from (unless it left a piece out)
        saving = checkpoint_path(source, "source") if leave_out is None else None
        run.config = replace(run.config, device=device, checkpoint=saving)
        _attach(run, net, target, saved["initial_weights"], saved["optimizer_state"], saved["generator_state"])
    else:
        raise TypeError(f"source must be a checkpoint file path or a Run; got {type(source).__name__}.")
    epochs = checks.whole("epochs", epochs, minimum=run.completed_epochs, maximum=checks.MAX_EPOCHS)
    if run.diverged:
        raise ValueError(f"this run diverged at epoch {run.diverged_at[0]}; there is nothing sound to continue.")
    return _train_until(run, epochs, on_epoch)


def _attach(run: Run, net: nn.Module, device: torch.device, initial_weights: dict | None = None,
            optimizer_state: dict | None = None, generator_state: dict | None = None) -> None:  # fmt: skip
    """Give `run` what the loop needs to train it: the model on `device`, its optimizer, its data, its generator.

    Without a saved `generator_state` for this kind of device, torch's generator starts as
    `torch.manual_seed(seed)` leaves it (a CPU and a GPU draw different numbers from one state).
    """
    net = net.to(device)
    optimizer = make_optimizer(run.config.optimizer, net, run.config.lr)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    if initial_weights is None:
        initial_weights = {name: value.clone() for name, value in net.state_dict().items()}
    rows, held_out = torch.as_tensor(run.train_indices), torch.as_tensor(run.val_indices)
    # features, and targets that are values (regression), in the run's precision; class numbers stay whole
    x, y = (
        run.data.x.to(run.config.dtype),
        run.data.y.to(run.config.dtype) if run.data.y.is_floating_point() else run.data.y,
    )
    run.model = net
    # a schedule depends on the step count alone: a resumed run's is stepped as far as the run got
    schedule = make_schedule(run.config.lr_schedule, optimizer, run.steps_per_epoch, run.total_steps)
    run.training_state = TrainingState(
        model=net,
        optimizer=optimizer,
        initial_weights={name: value.to(device) for name, value in initial_weights.items()},
        x=x[rows].to(device),
        y=y[rows].to(device),
        x_val=x[held_out].to(device),
        y_val=y[held_out].to(device),
        generator_state=generator_state["state"]
        if generator_state is not None and generator_state["device"] == device.type
        else torch.Generator(device).manual_seed(run.config.seed).get_state(),
        schedule=schedule,
        saved_epoch=run.completed_epochs if run.config.checkpoint else 0,  # a resumed run's file holds its epochs
    )


def _train_until(run: Run, epochs: int, on_epoch: Callable[[Run], None] | None) -> Run:
    checks.function("on_epoch", on_epoch)
    state = run.training_state
    if run.config.track_weights:  # refuse before training a store of weights that would not fit in memory
        check_weight_store(state.model, run.total_steps + (epochs - run.completed_epochs) * run.steps_per_epoch)
    run.config = replace(run.config, epochs=epochs)
    try:
        with torch_threads(run.config.threads), _global_randomness(run):
            return _train_epochs(run, state, range(run.completed_epochs + 1, epochs + 1), on_epoch)
    except torch.OutOfMemoryError as error:  # a real device ran out: say so in the learner's terms
        raise from_device_error(error, state.x.device, run.config.batch_size) from error


def _train_epochs(run: Run, state: TrainingState, epochs: range, on_epoch: Callable[[Run], None] | None) -> Run:
    """The loop itself: each epoch is one full pass over the training samples, in batches."""
    config = run.config
    policy = POLICIES[config.reset]
    loss_of = loss_function(run.data.task)
    model = state.model
    pieces, keep_weights = config.accumulate, config.track_weights
    sizes = batch_sizes(len(state.x), config.batch_size, config.drop_last)  # the same cut every epoch
    own_module = isinstance(config.model, nn.Module)  # it may draw random numbers (dropout) from torch's generator
    generator = _global_generator(state.x.device)
    started = time.perf_counter() - run.elapsed_s  # a resumed run keeps counting where it stopped
    end = None  # the weights the previous epoch ended with (on the host, as the record keeps them)
    model.train()

    for epoch in epochs:
        # reset: only what the chosen policy says, and never before the first epoch
        if epoch > 1 and policy.weights == "initial":
            model.load_state_dict(state.initial_weights)
        if epoch > 1 and policy.weights == "fresh":
            model.load_state_dict(fresh_weights(model, epoch_seed(config.seed, epoch)))
        if epoch > 1 and policy.optimizer:
            state.optimizer = make_optimizer(config.optimizer, model, config.lr)
            state.schedule = make_schedule(config.lr_schedule, state.optimizer, run.steps_per_epoch, run.total_steps)
        optimizer = state.optimizer
        if own_module:  # its random draws carry on where the last epoch's ended, in one go or resumed from a file
            generator.set_state(state.generator_state)
        # where this epoch starts: where the previous one ended, unless the reset moved the weights
        start = end if end is not None and not policy.restores_weights else flat_parameters(model).cpu().numpy()

        # one pass over the training data: a fresh order, cut into batches
        order = torch.from_numpy(epoch_order(len(state.x), epoch, seed=config.seed, shuffle=config.shuffle))
        order = order.to(state.x.device)
        batches = epoch_batches(order, sizes)
        losses, outputs, weights, elapsed = [], [], [], []
        for batch in batches:
            if keep_weights:
                weights.append(flat_parameters(model))
            optimizer.zero_grad()
            if pieces == 1:
                # forward: predictions and the batch's mean loss
                output = model(state.x[batch])
                loss = loss_of(output, state.y[batch])
                # backward: the gradient of that loss for every weight
                loss.backward()
            else:  # the same gradient in smaller pieces, when the batch does not fit in memory at once
                output, loss = _accumulate(model, loss_of, state.x, state.y, batch, pieces)
            # update: one optimizer step per batch
            optimizer.step()
            if state.schedule is not None:  # the learning rate of the next step, as the schedule says
                state.schedule.step()
            losses.append(loss.detach())
            outputs.append(output.detach())
            elapsed.append(time.perf_counter() - started)

        # record what the epoch did (one copy to the host per epoch, not one per step)
        if own_module:
            state.generator_state = generator.get_state()
        end = flat_parameters(model).cpu().numpy()
        seen = order[: sizes.sum()]  # all of the order, unless drop_last left some out
        diverged = record_epoch(
            run,
            epoch,
            sizes,
            torch.stack(losses).cpu().numpy(),
            np.array(elapsed),
            torch.stack(weights).cpu().numpy() if weights else None,
            start=start,
            end=end,
            train_accuracy=accuracy(torch.cat(outputs), state.y[seen], run.data.task),
            validation=evaluate(model, state.x_val, state.y_val, loss_of),
            elapsed_s=time.perf_counter() - started,
        )
        if diverged:
            break
        if config.checkpoint:
            _save(run, state, epoch)
        if on_epoch is not None:
            on_epoch(run)
    return run


def _save(run: Run, state: TrainingState, epoch: int) -> None:
    """Save `run` after `epoch` to its checkpoint file; if the disk refuses, stop with an error that keeps the run."""
    try:
        generator = {"device": state.x.device.type, "state": state.generator_state}
        checkpoint.save(run.config.checkpoint, run, state.model.state_dict(), state.optimizer.state_dict(),
                        state.initial_weights, generator)  # fmt: skip
    except OSError as error:  # a full disk, a removed folder, a lost network drive: the training itself is sound
        raise checkpoint.SaveError(run, epoch, state.saved_epoch, error) from error
    state.saved_epoch = epoch


def record_epoch(run: Run, epoch: int, sizes: np.ndarray, losses: np.ndarray, elapsed: np.ndarray,
                 step_weights: np.ndarray | None, *, start: np.ndarray, end: np.ndarray, train_accuracy: float,
                 validation: tuple[float, float], elapsed_s: float) -> bool:  # fmt: skip
    """Append what epoch `epoch` did to `run`, and say whether the run diverged in it (the loop then stops).

    Its steps are kept up to the first one whose loss is not finite. An epoch whose every batch
    loss was finite still diverged if it ended with weights or a validation loss that are
    infinite or NaN: its last update blew up. Only a sound epoch gets a row in `run.epochs`.
    `train` and `train_many` both record through here.
    """
    losses = losses.astype(np.float64)
    finite = np.isfinite(losses)
    done = len(losses) if finite.all() else int(np.argmin(finite))
    run.add_steps(
        epoch, sizes[:done], losses[:done], elapsed[:done], None if step_weights is None else step_weights[:done]
    )
    val_loss, val_accuracy = validation
    if done < len(losses):
        run.diverged_at = (epoch, run.total_steps + 1)
    elif not np.isfinite(end).all() or (len(run.val_indices) > 0 and not np.isfinite(val_loss)):
        run.diverged_at = (epoch, run.total_steps)
    else:
        run.add_epoch(
            train_loss=float((losses * sizes).sum() / sizes.sum()),  # the mean over samples: batches weigh by size
            val_loss=val_loss,
            train_accuracy=train_accuracy,
            val_accuracy=val_accuracy,
            start=start,
            end=end,
            elapsed_s=elapsed_s,
        )
        return False
    return True


_GLOBAL_GENERATOR = threading.RLock()  # held while a training draws from torch's global generator


@contextmanager
def _global_randomness(run: Run) -> Iterator[None]:
    """While a module of your own trains: torch's global generator, for this training alone.

    Layers such as dropout draw from torch's global generator, which has no private
    counterpart. The loop sets it to the run's own generator state every epoch and keeps the
    state it ends with (a checkpoint stores it); holding it under a lock (one such training at
    a time: another thread's waits) keeps anyone else's training from drawing in between, and
    it is restored afterwards, so your own random numbers carry on as if nothing had trained.
    The models epochviz builds draw nothing while training and need none of this.
    """
    if not isinstance(run.config.model, nn.Module):
        yield
        return
    device = run.training_state.x.device
    with _GLOBAL_GENERATOR, torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        yield


def _global_generator(device: torch.device) -> torch.Generator:
    """The generator that torch's random layers (dropout) draw from on `device`."""
    if device.type == "cuda":
        return torch.cuda.default_generators[device.index if device.index is not None else torch.cuda.current_device()]
    return torch.default_generator


def _accumulate(model: nn.Module, loss_of: Callable, x: torch.Tensor, y: torch.Tensor, batch: torch.Tensor,
                pieces: int) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Forward and backward over `batch` in `pieces` micro-batches, one at a time.

    Each micro-batch's loss is weighted by its share of the batch, so the gradients add up to
    exactly the whole batch's (and the losses to its mean loss) while only one micro-batch's
    activations are in memory at once.
    """
    outputs, total = [], 0.0
    for micro in batch.chunk(pieces):
        output = model(x[micro])
        loss = loss_of(output, y[micro]) * (len(micro) / len(batch))
        loss.backward()
        outputs.append(output.detach())
        total += loss.detach()
    return torch.cat(outputs), total
