"""Why a loss curve jumps at epoch edges: five real causes, each reproduced by one training run.

A loss curve with a tooth at every epoch edge worries learners: did something reset? Sometimes
yes (a model rebuilt inside the loop), but more often the jump is in what is *measured* or
*scheduled* at the edges, not in the training. Each `Cause` here is one of them, with the call
that makes it, how to tell it apart from the others and what to do about it; `gallery()` trains
all five and keeps, beside each run, the numbers that show its jump. The quiz order of the
numbered mystery curves lives here too (`MYSTERY_ORDER`), so a notebook can ask before it tells.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import checks
from .data import line, moons
from .epoch_edges import losses_at_epoch_edges
from .run import Run
from .schedules import learning_rates
from .train import train

EPOCHS = 6  # every cause's run: enough edges to see a pattern repeat, few enough to see each one
CURVES = {
    "batch loss": "the loss of every batch, as training measured it",
    "progress bar": "the running mean of the epoch's batch losses so far: what Keras's progress bar prints",
    "batch loss and evaluation": "every batch's loss (dropout on), and at each epoch's end the training split "
    "evaluated (dropout off), in one line",
}  # what a cause's curve draws: the gallery figure looks its kind up here


@dataclass(frozen=True)
class Cause:
    """One reason a loss curve jumps at epoch edges, and the run that shows it."""

    name: str  # the key in CAUSES
    label: str  # the quiz's option, in a learner's words
    call: str  # the one call that made the run, as a learner would type it
    curve: str  # which line of the run the gallery draws: a key of CURVES
    how_to_tell: str
    what_to_do: str


CAUSES = {
    cause.name: cause
    for cause in (
        Cause(
            "reset",
            label="the weights are reset at every epoch start",
            call='ev.train("moons", optimizer="adam", lr=0.01, reset="weights")',
            curve="batch loss",
            how_to_tell="every epoch starts at epoch 1's first loss and never gets lower",
            what_to_do="build the model (and its optimizer) once, before the epoch loop",
        ),
        Cause(
            "sorted",
            label="the data is sorted by class and not shuffled",
            call='ev.train(ev.moons().sorted_by_label(), shuffle=False, optimizer="adam", lr=0.01)',
            curve="batch loss",
            how_to_tell="the same teeth in every epoch, at the same batch: where the next class begins",
            what_to_do="shuffle every epoch (shuffle=True, or DataLoader(shuffle=True))",
        ),
        Cause(
            "progress_bar",
            label="the progress bar's running average restarts every epoch",
            call='ev.plots.running_average(ev.train("moons"))',
            curve="progress bar",
            how_to_tell="the printed number drops at the edges; each batch's own loss does not",
            what_to_do="nothing is wrong: log each batch's loss (or the epoch's mean) instead",
        ),
        Cause(
            "warm_restarts",
            label="the learning rate jumps back up at every epoch start",
            call='ev.train(ev.line(n=2000), model="linear", batch_size=20, lr=0.7, lr_schedule="warm_restarts")',
            curve="batch loss",
            how_to_tell="the loss rises just after each edge and settles as the epoch ends; the lr curve shows why",
            what_to_do="nothing is wrong if you chose the schedule: plot the lr beside the loss",
        ),
        Cause(
            "dropout",
            label="dropout is on while training and off while evaluating",
            call='ev.train("moons", model=<a net with nn.Dropout(0.5)>, optimizer="adam", lr=0.01); '
            "ev.losses_at_epoch_edges(run)",
            curve="batch loss and evaluation",
            how_to_tell="only the end-of-epoch points are low: the batches (dropout on) stay above them",
            what_to_do="compare like with like: training and validation loss both in evaluation mode",
        ),
    )
}
MYSTERY_ORDER = ("progress_bar", "sorted", "dropout", "reset", "warm_restarts")  # the cause of curve 1, 2, …


@dataclass
class Jump:
    """A cause, the run that shows it, and the numbers that measure its jump (`evidence`, one sentence)."""

    cause: Cause
    run: Run
    evidence: str
    edges: pd.DataFrame | None = None  # `losses_at_epoch_edges(run)`, where the curve needs it (dropout)


def gallery(seed: int = 0) -> dict[int, Jump]:
    """Train every cause's run and measure its jump: curve number (1, 2, …, in `MYSTERY_ORDER`) → Jump.

    >>> jumps = gallery()
    >>> [jump.cause.name for jump in jumps.values()] == list(MYSTERY_ORDER)
    True

    What to notice: five curves that all jump at epoch edges, and only one of them (`reset`)
    because training really starts over. `ev.plots.jump_gallery(jumps)` draws them.
    """
    seed = checks.seed(seed)
    return {number: BUILDERS[name](seed) for number, name in enumerate(MYSTERY_ORDER, start=1)}


def restart_rise(run: Run) -> float:
    """How many times larger the batch loss is in each epoch's first quarter than in the last quarter before it.

    Medians over every edge after the first epoch's, so a rare spike of a batch does not decide
    it: 1 means the edges change nothing.

    >>> restart_rise(train("moons", epochs=3)) < 2
    True
    """
    losses = run.steps.loss.to_numpy()
    per_epoch, quarter = run.steps_per_epoch, max(1, run.steps_per_epoch // 4)
    edges = range(per_epoch, run.total_steps, per_epoch)
    after = np.concatenate([losses[edge : edge + quarter] for edge in edges])
    before = np.concatenate([losses[edge - quarter : edge] for edge in edges])
    return float(np.median(after) / np.median(before))


def dropout_mlp(seed: int = 0, p: float = 0.5) -> nn.Sequential:
    """The dropout cause's own module: `mlp`'s shape, 64 wide, with `nn.Dropout(p)` after each hidden layer.

    Its initial weights come from `torch.manual_seed(seed)`, drawn without touching your own random numbers.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Dropout(p), nn.Linear(64, 64), nn.ReLU(),
                             nn.Dropout(p), nn.Linear(64, 2))  # fmt: skip


def _first_losses(run: Run) -> pd.Series:
    return run.steps.groupby("epoch").loss.first()


def _reset(seed: int) -> Jump:
    run = train("moons", epochs=EPOCHS, optimizer="adam", lr=0.01, reset="weights", seed=seed)
    edges = losses_at_epoch_edges(run)
    starts, ends = edges.train_loss_at_start, edges.train_loss_at_end
    same = "exactly epoch 1's" if (starts == starts.iloc[0]).all() else "not epoch 1's"
    evidence = (f"measured on the whole training split, every epoch starts at loss {starts.iloc[0]:.3g} "
                f"({same}) and ends near {ends.mean():.3g}, however low the epoch before ended")  # fmt: skip
    return Jump(CAUSES["reset"], run, evidence, edges)


def _sorted(seed: int) -> Jump:
    run = train(moons().sorted_by_label(), epochs=EPOCHS, shuffle=False, optimizer="adam", lr=0.01, seed=seed)
    switch = class_switch(run)
    steps = run.steps.query("epoch > 1")
    before, after = steps.query("batch == @switch - 1").loss.mean(), steps.query("batch == @switch + 1").loss.mean()
    evidence = (f"after epoch 1, the batch loss rises from {before:.3g} to {after:.3g} on average across "
                f"batch {switch} of {run.steps_per_epoch}, where class 1 begins, in every epoch")  # fmt: skip
    return Jump(CAUSES["sorted"], run, evidence)


def class_switch(run: Run) -> int:
    """The batch (1-based) of each epoch in which an unshuffled run on class-sorted data meets its second class."""
    labels = run.data.y[run.train_indices].numpy()
    first_other = int(np.argmax(labels != labels[0]))
    return first_other // run.config.batch_size + 1


def _progress_bar(seed: int) -> Jump:
    run = train("moons", epochs=EPOCHS, seed=seed)
    losses = run.steps.loss.to_numpy().reshape(EPOCHS, -1)  # every epoch has the same batches here
    printed_at_end = run.epochs.train_loss.to_numpy()  # at an epoch's last batch the running mean is the epoch's
    printed_soon_after = losses[1:, :3].mean(axis=1)  # three batches into the next epoch: the mean of those three
    evidence = (f"from an epoch's end to three batches into the next, the printed number drops by "
                f"{np.mean(printed_at_end[:-1] - printed_soon_after):.2g} on average; the batch loss across the "
                f"same edges (its last 3 batches against the next epoch's first 3) changes by "
                f"{np.mean(printed_soon_after - losses[:-1, -3:].mean(axis=1)):+.2g}")  # fmt: skip
    return Jump(CAUSES["progress_bar"], run, evidence)


def _warm_restarts(seed: int) -> Jump:
    run = train(line(n=2000), model="linear", epochs=EPOCHS, batch_size=20, lr=0.7, lr_schedule="warm_restarts",
                seed=seed)  # fmt: skip
    rates = learning_rates("warm_restarts", run.config.lr, run.steps_per_epoch, run.total_steps)
    evidence = (f"the learning rate glides from {rates[0]:.3g} to {rates[run.steps_per_epoch - 1]:.2g} within each "
                f"epoch and is back at {rates[run.steps_per_epoch]:.3g} at the next one's start; an epoch's first "
                f"quarter of batches has {restart_rise(run):.2g}× the median loss of the quarter before")  # fmt: skip
    return Jump(CAUSES["warm_restarts"], run, evidence)


def _dropout(seed: int) -> Jump:
    run = train("moons", model=dropout_mlp(seed), epochs=EPOCHS, optimizer="adam", lr=0.01, seed=seed)
    edges = losses_at_epoch_edges(run)
    last_batches = run.steps.groupby("epoch").loss.apply(lambda losses: losses.tail(3).mean()).to_numpy()
    evidence = (f"an epoch's last 3 batches (dropout on) average {last_batches.mean():.3g}; the same weights "
                f"on the whole training split with dropout off: {edges.train_loss_at_end.mean():.3g}")  # fmt: skip
    return Jump(CAUSES["dropout"], run, evidence, edges)


BUILDERS: dict[str, Callable[[int], Jump]] = {
    "reset": _reset,
    "sorted": _sorted,
    "progress_bar": _progress_bar,
    "warm_restarts": _warm_restarts,
    "dropout": _dropout,
}  # cause → the function that trains its run and measures its jump


def causes_table() -> pd.DataFrame:
    """Cause → how to tell → what to do, one row per cause, in the order of `CAUSES`."""
    return pd.DataFrame(
        [{"cause": c.label, "how to tell": c.how_to_tell, "what to do": c.what_to_do} for c in CAUSES.values()]
    ).set_index("cause")
