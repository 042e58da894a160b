"""Learning-rate schedules, counted in epochs: how the learning rate moves from step to step.

Each schedule here is one of torch's own (`torch.optim.lr_scheduler`), stepped after every
optimizer step, and sized in epochs (so many steps per epoch). Each depends on the step count
alone, so a run resumed at step s rebuilds its schedule by stepping it s times: nothing else
needs saving. (A schedule that reacts to the loss, such as `ReduceLROnPlateau`, would need its
`state_dict` in the checkpoint.)

- "constant": the same learning rate at every step (no scheduler at all).
- "warm_restarts": cosine annealing with warm restarts (SGDR, `CosineAnnealingWarmRestarts`),
  one cycle per epoch: the rate glides from `lr` towards 0 over each epoch and jumps back to
  `lr` at the next one's start, which is one reason a real loss curve jumps at epoch edges.
- "halve_each_epoch": `StepLR` with `gamma=0.5` every epoch: big steps first, smaller later.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

SCHEDULES = {
    "constant": "the same learning rate at every step",
    "warm_restarts": "cosine from lr down to 0 within each epoch, back to lr at the next epoch's start",
    "halve_each_epoch": "the learning rate halves at every epoch's start",
}  # name → what it does, for menus and messages


def make_schedule(name: str, optimizer: torch.optim.Optimizer, steps_per_epoch: int,
                  steps_done: int = 0) -> torch.optim.lr_scheduler.LRScheduler | None:  # fmt: skip
    """The scheduler for schedule `name` on `optimizer`, already stepped `steps_done` times (None for "constant").

    It sets the learning rate of the step to come: the loop calls its `step()` after every optimizer step.
    """
    if name == "constant":
        return None
    for group in optimizer.param_groups:  # every schedule starts from the run's own lr, not the lr it got to
        group["lr"] = group.setdefault("initial_lr", group["lr"])
    if name == "warm_restarts":
        schedule = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=steps_per_epoch)
    else:
        schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=steps_per_epoch, gamma=0.5)
    with warnings.catch_warnings():  # stepping ahead without optimizer steps is the point here, not a mistake
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
        for _ in range(steps_done):
            schedule.step()
    return schedule


def learning_rates(name: str, lr: float, steps_per_epoch: int, steps: int) -> np.ndarray:
    """The learning rate each of the first `steps` steps trains with under schedule `name`.

    >>> learning_rates("warm_restarts", 0.1, steps_per_epoch=4, steps=8).round(3).tolist()
    [0.1, 0.085, 0.05, 0.015, 0.1, 0.085, 0.05, 0.015]
    """
    weight = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([weight], lr=lr)
    schedule = make_schedule(name, optimizer, steps_per_epoch)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradient, so nothing moves; the schedule only follows the steps
        if schedule is not None:
            schedule.step()
    return np.array(rates)
