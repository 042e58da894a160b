"""Argument checks for the public edge: each error names the argument, the value and what is allowed.

Internals trust their inputs; every public function checks its own with these before it
does any work, so a learner's typo fails at once with a message they can act on.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from numbers import Integral, Real

# Limits on what a learner can ask for: far beyond any teaching run, so only a typo reaches them,
# and it is refused at once instead of hanging the kernel or exhausting memory.
MAX_EPOCHS = 10_000
MAX_SAMPLES = 10_000_000  # samples in a generated dataset, rows in a split, samples in a batch
MAX_CLASSES = 1_000  # classes in a classification dataset: one output per class
MAX_SEED = 2**32 - 1  # what NumPy and scikit-learn accept as a seed


def whole(name: str, value, *, minimum: int = 0, maximum: int | None = None) -> int:
    """`value` as an int, if it is a whole number (not a bool) in [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be a whole number; got {value!r} ({type(value).__name__}).")
    if value < minimum or (maximum is not None and value > maximum):
        allowed = f"from {minimum} to {maximum:,}" if maximum is not None else f"{minimum} or more"
        raise ValueError(f"{name} must be {allowed}; got {value!r}.")
    return int(value)


def number(name: str, value, *, low: float, high: float = math.inf, low_open: bool = False) -> float:
    """`value` as a float, if it is a finite real number in [low, high) — or (low, high) with `low_open`."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number; got {value!r} ({type(value).__name__}).")
    value = float(value)
    inside = (value > low if low_open else value >= low) and value < high
    if not math.isfinite(value) or not inside:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be a finite number in {bracket}{low:g}, {high:g}); got {value!r}.")
    return value


def choice(name: str, value, options: Collection[str]) -> str:
    """`value`, if it is one of `options`."""
    if not isinstance(value, str) or value not in options:
        listed = ", ".join(repr(option) for option in options)
        raise ValueError(f"{name} must be one of {listed}; got {value!r}.")
    return value


def seed(value, name: str = "seed") -> int:
    """`value` as a seed: a whole number from 0 to MAX_SEED."""
    return whole(name, value, minimum=0, maximum=MAX_SEED)


def function(name: str, value):
    """`value`, if it is something callable or None (an optional callback such as on_epoch)."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be a function taking the run, or None; got {type(value).__name__}.")
    return value


def flag(name: str, value) -> bool:
    """`value`, if it is True or False."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False; got {value!r} ({type(value).__name__}).")
    return value
