"""Epochs are a unit of work; seconds depend on the machine.

The same training on two machines sees the same samples in the same order and computes the
same losses epoch by epoch, but the wall clock says different things. That is why training
is counted in epochs: an epoch means the same on a laptop and on a cluster.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from . import checks
from .data import Dataset
from .run import Run
from .train import train


def compare_hardware(data: Dataset | str = "moons", *, threads: Sequence[int] = (1, 2), slowdown: float = 4.0,
                     **train_args) -> dict[str, Run]:  # fmt: skip
    """Train the same configuration on each real setting this machine has, plus a simulated slow one.

    Real settings: the CPU with each number of `threads`, and the GPU when there is one. The
    last entry is clearly labelled as simulated: the first run's record with its clock
    stretched `slowdown` times (the losses are not touched: they would be the same).

    >>> runs = compare_hardware("moons", epochs=5)
    >>> list(runs)
    ['CPU · 1 thread', 'CPU · 2 threads', 'simulated: a 4× slower machine']

    What to notice: `run.epochs.train_loss` agrees across all of them (up to the last bits of
    floating-point rounding, since more threads add numbers in a different order), while
    `run.epochs.elapsed_s` does not.
    """
    if "device" in train_args:
        raise ValueError("compare_hardware chooses the devices itself; do not pass device.")
    if isinstance(threads, (str, bytes)) or not isinstance(threads, Sequence) or not threads:
        raise TypeError(f"threads must be a list of thread counts such as (1, 2); got {threads!r}.")
    threads = [checks.whole("threads", count, minimum=1, maximum=256) for count in threads]
    checks.number("slowdown", slowdown, low=1, high=1e6)
    runs: dict[str, Run] = {}
    for count in threads:
        runs[f"CPU · {count} thread{'s' if count > 1 else ''}"] = train(data, device="cpu", threads=count, **train_args)
    if torch.cuda.is_available():
        runs[f"GPU · {torch.cuda.get_device_name()}"] = train(data, device="cuda", **train_args)
    runs[f"simulated: a {slowdown:g}× slower machine"] = next(iter(runs.values())).stretched(slowdown)
    return runs
