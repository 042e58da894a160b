"""Datasets, splits and sample orders: everything a training run reads.

A `Dataset` is plain data: features `x`, targets `y`, and what kind of task they pose.
The generators below are small, seeded and need no download, so every notebook runs offline
and every number in it can be reproduced.

This module depends on nothing else in epochviz.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import checks
from .checks import MAX_CLASSES, MAX_SAMPLES, number, whole

TASKS = ("classification", "regression")


@dataclass(frozen=True)
class Dataset:
    """Features and targets of one learning problem.

    `x` is a float32 tensor of shape (samples, features). `y` holds one target per sample:
    class numbers (int64) for classification, real values (float32) for regression.
    `ordered` says that the order of the rows is part of the data (as in `sorted_by_label`):
    a split then keeps the training rows in this order, so an epoch without shuffling visits
    them as they are stored. Otherwise the training rows come in the split's random order.

    >>> data = moons(n=200)
    >>> len(data), data.features, data.classes
    (200, 2, ('0', '1'))
    """

    x: torch.Tensor
    y: torch.Tensor
    task: str
    name: str = "custom"
    classes: tuple[str, ...] = ()
    ordered: bool = False  # True: splits keep the training rows in the order they have here

    def __post_init__(self) -> None:
        # the task, name and class names as plain strings (a NumPy string is a str too, but a checkpoint could
        # not be read back with it), so that whatever trains here can also be saved and resumed
        for field_name in ("task", "name"):
            value = getattr(self, field_name)
            if not isinstance(value, str):
                raise TypeError(f"data.{field_name} must be a string; got {value!r} ({type(value).__name__}).")
            object.__setattr__(self, field_name, str(value))
        if not isinstance(self.classes, (tuple, list)) or not all(isinstance(c, str) for c in self.classes):
            raise TypeError(f"data.classes must be a tuple of class names (strings); got {self.classes!r}.")
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        check_dataset(self)

    def __len__(self) -> int:
        return len(self.x)

    def __repr__(self) -> str:
        kind = f"{len(self.classes)} classes" if self.classes else "regression"
        return f"Dataset({self.name!r}, {len(self)} samples, {self.features} features, {kind})"

    @property
    def features(self) -> int:
        return self.x.shape[1]

    @property
    def outputs(self) -> int:
        """How many numbers a model must predict per sample: one per class, or one value."""
        return len(self.classes) if self.task == "classification" else 1

    def subset(self, rows: np.ndarray | torch.Tensor) -> Dataset:
        """The samples at `rows`, in that order, as a new Dataset."""
        rows = torch.as_tensor(rows, dtype=torch.long)
        return Dataset(self.x[rows], self.y[rows], self.task, self.name, self.classes, self.ordered)

    def sorted_by_label(self) -> Dataset:
        """The same samples sorted by class: every sample of class 0 first, then class 1, and so on.

        The result is `ordered`, so its training rows stay in that order: trained with
        `shuffle=False`, every epoch sweeps through one class, then the next. Within a class the
        samples keep their order here.

        >>> data = moons(n=6).sorted_by_label()
        >>> data.y.tolist(), data.name
        ([0, 0, 0, 1, 1, 1], 'moons, sorted by label')

        What to notice: nothing but the order changes (the same samples, the same classes), yet
        without shuffling each batch now holds one class only, and the loss saw-tooths.
        """
        if self.task != "classification":
            raise ValueError(
                f"sorted_by_label needs a classification dataset, with a class label per sample; "
                f"{self.name!r} is a {self.task} dataset (data.task={self.task!r})."
            )
        rows = torch.argsort(self.y, stable=True)
        return Dataset(self.x[rows], self.y[rows], self.task, f"{self.name}, sorted by label", self.classes, True)


def check_dataset(data: Dataset) -> None:
    """Raise a ValueError or TypeError that says what is wrong with `data`, if anything is."""
    if not isinstance(data.x, torch.Tensor) or not isinstance(data.y, torch.Tensor):
        raise TypeError(
            f"data.x and data.y must be torch tensors; got {type(data.x).__name__} "
            f"and {type(data.y).__name__}. Build one with epochviz.from_arrays(x, y)."
        )
    if data.task not in TASKS:
        raise ValueError(f"data.task must be one of {TASKS}; got {data.task!r}.")
    checks.flag("data.ordered", data.ordered)
    if data.x.ndim != 2 or data.x.dtype != torch.float32:
        raise ValueError(
            f"data.x must be a float32 tensor of shape (samples, features); "
            f"got {data.x.dtype} of shape {tuple(data.x.shape)}."
        )
    if data.y.ndim != 1 or len(data.y) != len(data.x):
        raise ValueError(
            f"data.y must hold one target per sample: {len(data.x)} samples in data.x, "
            f"but data.y has shape {tuple(data.y.shape)}."
        )
    if len(data.x) == 0:
        raise ValueError("data is empty: it needs at least one sample.")
    if data.x.shape[1] == 0:
        raise ValueError(f"data.x has no features: a model needs at least one number per sample; got shape "
                         f"{tuple(data.x.shape)}.")  # fmt: skip
    if not torch.isfinite(data.x).all():
        bad = int((~torch.isfinite(data.x)).any(dim=1).sum())
        raise ValueError(f"data.x has NaN or infinite features in {bad} sample(s); remove or fill them.")
    if data.task == "classification":
        if data.y.dtype != torch.int64 or not data.classes:
            raise ValueError("a classification dataset needs int64 class numbers in y and names in classes.")
        if int(data.y.min()) < 0 or int(data.y.max()) >= len(data.classes):
            raise ValueError(
                f"data.y must hold class numbers 0 … {len(data.classes) - 1}; "
                f"got values from {int(data.y.min())} to {int(data.y.max())}."
            )
    elif data.y.dtype != torch.float32 or not torch.isfinite(data.y).all():
        raise ValueError("a regression dataset needs finite float32 targets in y.")


def from_arrays(x, y, *, task: str | None = None, name: str = "custom") -> Dataset:
    """Wrap your own arrays (NumPy, lists or tensors) as a Dataset.

    The task is guessed from `y` when not given: whole numbers mean classes, anything else
    regression. Class numbers are 0, 1, 2, … with every class present; other whole numbers (a
    price, a year) are refused with a hint, since as classes they would mean one output per value.

    >>> from_arrays([[0.0], [1.0]], [0, 1]).task
    'classification'
    """
    x = as_numbers(x, "x")
    try:
        with np.errstate(over="ignore"):  # values beyond float32 become inf, which the check below reports
            x = torch.as_tensor(x.astype(np.float32))
    except (TypeError, ValueError) as error:
        raise TypeError(f"x must be numbers, one row per sample (a list, NumPy array or tensor): {error}") from None
    if x.ndim == 1:
        x = x[:, None]
    y = as_numbers(y, "y")
    if y.ndim != 1 or y.dtype.kind not in "iubf":
        raise TypeError(f"y must be one number per sample (class numbers or values); got {y.dtype} of shape {y.shape}.")
    if task is not None:
        checks.choice("task", task, TASKS)
    if not isinstance(name, str):
        raise TypeError(f"name must be a string; got {type(name).__name__}.")
    if task is None:
        task = "classification" if y.dtype.kind in "iub" else "regression"
    if task == "classification":
        count = _class_count(y)
        return Dataset(x, torch.as_tensor(y.astype(np.int64)), task, name, tuple(str(c) for c in range(count)))
    return Dataset(x, torch.as_tensor(y.astype(np.float32)), task, name)


def as_numbers(values, name: str) -> np.ndarray:
    """`values` (a list, NumPy array or tensor) as a NumPy array of its values, refusing what has no real numbers.

    A tensor is read as it is: one that requires grad gives its values (training data is never
    differentiated), one in a float format NumPy lacks (bfloat16) is widened to float32, which holds it
    exactly. A meta tensor (a shape without values), a sparse tensor and complex numbers are refused by
    `name`: dropping the imaginary part or densifying a huge matrix must be the learner's own choice.
    """
    if isinstance(values, torch.Tensor):
        if values.is_meta:
            raise TypeError(f"{name} is a meta tensor: it has a shape but no values; pass a tensor that holds numbers.")
        if values.layout != torch.strided:
            raise TypeError(f"{name} is a {str(values.layout).removeprefix('torch.')} tensor; pass "
                            f"{name}.to_dense().")  # fmt: skip
        values = values.detach().cpu()
        if values.is_floating_point() and values.dtype not in (torch.float16, torch.float32, torch.float64):
            values = values.float()
        values = values.numpy()
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as error:  # rows of different lengths, or things that are not numbers
        raise TypeError(f"{name} must be numbers (a list, NumPy array or tensor): {error}") from None
    if array.dtype.kind == "c":
        raise TypeError(f"{name} holds complex numbers, which a model here cannot train on; pass {name}.real, "
                        f"abs({name}), or both parts as separate features.")  # fmt: skip
    return array


def _class_count(y: np.ndarray) -> int:
    """How many classes the class numbers in `y` name, if they are 0 … K−1, all present, K ≤ MAX_CLASSES."""
    regression = "if y is a quantity (a price, a count, a measurement), pass task='regression'"
    if y.dtype.kind == "f" and not (np.isfinite(y).all() and (y == np.round(y)).all()):
        raise ValueError(f"y must hold whole class numbers for task='classification'; got values such as "
                         f"{float(y[~(np.isfinite(y) & (y == np.round(y)))][0])!r}; {regression}.")  # fmt: skip
    present = np.unique(y)
    if len(present) == 0:
        return 0  # an empty dataset, which Dataset refuses by name
    low, high = int(present[0]), int(present[-1])  # Python ints: uint64 and float values stay exact
    if low < 0:
        raise ValueError(f"y must hold class numbers 0, 1, 2, …; got {low}; {regression}.")
    if high >= MAX_CLASSES:
        raise ValueError(
            f"y has values up to {high:,}: as class numbers that is a {high + 1:,}-class problem, and at most "
            f"{MAX_CLASSES:,} classes are allowed; {regression}."
        )
    if len(present) < high + 1:
        missing = np.setdiff1d(np.arange(high + 1), present)
        never = f"{len(missing):,} of them never appear{'s' if len(missing) == 1 else ''}"
        raise ValueError(
            f"y must hold class numbers 0 … {high} with every class present, but {never} "
            f"(such as {', '.join(str(c) for c in missing[:3])}): renumber them with "
            f"np.unique(y, return_inverse=True)[1], or, {regression}."
        )
    return high + 1


# --- generators: small, seeded, offline -------------------------------------------------------


def moons(n: int = 400, *, noise: float = 0.2, seed: int = 0) -> Dataset:
    """Two interleaving half circles: a 2-D problem no straight line can separate."""
    from sklearn.datasets import make_moons

    x, y = make_moons(
        n_samples=whole("n", n, minimum=1, maximum=MAX_SAMPLES),
        noise=number("noise", noise, low=0, high=100),
        random_state=checks.seed(seed),
    )
    return _classes(x, y, "moons", 2)


def circles(n: int = 400, *, noise: float = 0.1, factor: float = 0.5, seed: int = 0) -> Dataset:
    """A small circle inside a large one: two classes, separable only by a curved boundary."""
    from sklearn.datasets import make_circles

    x, y = make_circles(
        n_samples=whole("n", n, minimum=1, maximum=MAX_SAMPLES),
        noise=number("noise", noise, low=0, high=100),
        factor=number("factor", factor, low=0, high=1, low_open=True),
        random_state=checks.seed(seed),
    )
    return _classes(x, y, "circles", 2)


def spirals(n: int = 600, *, classes: int = 3, noise: float = 0.2, seed: int = 0) -> Dataset:
    """Arms of a spiral, one per class: a hard 2-D problem that needs several epochs."""
    n, classes = whole("n", n, minimum=1, maximum=MAX_SAMPLES), whole("classes", classes, minimum=2, maximum=100)
    rng = np.random.default_rng(checks.seed(seed))
    label = np.arange(n) % classes
    radius = rng.uniform(0.05, 1.0, n)
    angle = 4.0 * radius + label * 2 * math.pi / classes + rng.normal(0, number("noise", noise, low=0, high=100), n)
    x = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1) * 2
    return _classes(x, label, "spirals", classes)


def line(n: int = 200, *, slope: float = 2.0, intercept: float = -1.0, noise: float = 0.5, seed: int = 0) -> Dataset:
    """Points near the line y = slope·x + intercept: regression with a two-parameter answer.

    A `linear` model has exactly two parameters here (slope and intercept), so its whole loss
    surface can be drawn and every step of training followed on it.
    """
    slope, intercept = number("slope", slope, low=-1e6, high=1e6), number("intercept", intercept, low=-1e6, high=1e6)
    rng = np.random.default_rng(checks.seed(seed))
    x = rng.uniform(-2.0, 2.0, whole("n", n, minimum=1, maximum=MAX_SAMPLES))
    y = slope * x + intercept + rng.normal(0.0, number("noise", noise, low=0, high=100), len(x))
    return Dataset(
        torch.as_tensor(x[:, None], dtype=torch.float32),
        torch.as_tensor(y, dtype=torch.float32),
        "regression",
        "line",
    )


def digits(n: int | None = None, *, seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes, no download).

    Pixel values are scaled to 0 … 1. With `n`, a seeded random subset of that size.
    """
    from sklearn.datasets import load_digits

    seed = checks.seed(seed)
    images = load_digits()
    x, y = images.data / 16.0, images.target
    if n is not None:
        whole("n", n, minimum=1, maximum=len(x))
        rows = np.random.default_rng(seed).permutation(len(x))[:n]
        x, y = x[rows], y[rows]
    return _classes(x, y, "digits", 10)


GENERATORS = {"moons": moons, "circles": circles, "spirals": spirals, "line": line, "digits": digits}


def dataset(name: str, **kwargs) -> Dataset:
    """A built-in dataset by name: one of 'moons', 'circles', 'spirals', 'line', 'digits'.

    The keyword arguments go to its generator (`n`, `noise`, `seed`, …), so `dataset("moons", n=200)`
    is `moons(n=200)`. (A run saved to a checkpoint is read back by `epochviz.resume`.)

    >>> dataset("line", n=50).task
    'regression'
    """
    if not isinstance(name, str) or name not in GENERATORS:
        raise ValueError(f"data must be a Dataset or one of {sorted(GENERATORS)}; got {name!r}.")
    return GENERATORS[name](**kwargs)


def as_dataset(data: Dataset | str) -> Dataset:
    """`data` itself if it is a Dataset, or the dataset of that name."""
    if isinstance(data, str):
        return dataset(data)
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a Dataset or a dataset name such as 'moons'; got {type(data).__name__}.")
    return data


def _classes(x: np.ndarray, y: np.ndarray, name: str, classes: int) -> Dataset:
    return Dataset(
        torch.as_tensor(x, dtype=torch.float32),
        torch.as_tensor(y, dtype=torch.int64),
        "classification",
        name,
        tuple(str(c) for c in range(classes)),
    )


# --- splits and orders ------------------------------------------------------------------------


def train_validation_split(n: int, val_fraction: float, seed: int, *,
                           name: str = "val_fraction") -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Row numbers of the training and validation parts of `n` samples.

    A seeded shuffle, then the last `round(n · val_fraction)` rows (at least one when the
    fraction is above zero) are held out. With `val_fraction=0` every row trains, in its
    own order. `name` is what errors call the fraction (cross-validation holds out its test
    rows with `test_fraction`).

    >>> train_rows, val_rows = train_validation_split(10, 0.2, seed=0)
    >>> len(train_rows), len(val_rows)
    (8, 2)
    """
    n = whole("n", n, minimum=1, maximum=MAX_SAMPLES)
    val_fraction = number(name, val_fraction, low=0, high=1)
    if val_fraction == 0:
        return np.arange(n), np.arange(0)
    held_out = max(1, round(n * val_fraction))
    if held_out >= n:
        raise ValueError(
            f"{name}={val_fraction} of {n} samples leaves nothing to train on; use a smaller fraction or more samples."
        )
    rows = np.random.default_rng(checks.seed(seed)).permutation(n)
    return rows[:-held_out], rows[-held_out:]


def k_folds(n: int, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split `n` rows into `k` folds: for each fold, (training rows, validation rows).

    Every row is validated exactly once and trained on in the other k − 1 folds.

    >>> [len(val) for _, val in k_folds(10, 3, seed=0)]
    [4, 3, 3]
    """
    n = whole("n", n, minimum=1, maximum=MAX_SAMPLES)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= k <= n:
        raise ValueError(f"k must be a whole number between 2 and the number of samples ({n}); got {k!r}.")
    rows = np.random.default_rng(checks.seed(seed)).permutation(n)
    folds = np.array_split(rows, k)
    return [(np.concatenate(folds[:i] + folds[i + 1 :]), fold) for i, fold in enumerate(folds)]


def split_rows(data: Dataset, *, val_fraction: float, seed: int, split=None) -> tuple[np.ndarray, np.ndarray]:
    """The (train_rows, val_rows) a run on `data` uses: an explicit `split`, checked, or a seeded random one.

    The training rows of an `ordered` dataset are put back in the dataset's order: a random
    split chooses which rows train, but an epoch without shuffling must still visit them as
    stored (sorted by label stays sorted by label).
    """
    if split is None:
        train_rows, val_rows = train_validation_split(len(data), val_fraction, seed)
    else:
        train_rows, val_rows = check_split(split, len(data))
    return (np.sort(train_rows) if data.ordered else train_rows), val_rows


def steps_per_epoch(n_train: int, batch_size: int, drop_last: bool) -> int:
    """Optimizer steps in one epoch: ⌈n_train / batch_size⌉, or ⌊…⌋ when the last, smaller batch is dropped."""
    return n_train // batch_size if drop_last else -(-n_train // batch_size)


def batch_sizes(n_train: int, batch_size: int, drop_last: bool) -> np.ndarray:
    """How many samples each step of an epoch trains on: full batches, then what is left (unless dropped)."""
    sizes = np.full(steps_per_epoch(n_train, batch_size, drop_last), batch_size)
    if not drop_last and n_train % batch_size:
        sizes[-1] = n_train % batch_size
    return sizes


def epoch_batches(order: torch.Tensor, sizes: np.ndarray) -> tuple[torch.Tensor, ...]:
    """An epoch's sample order (along its last dimension) cut into batches of `sizes` (see `batch_sizes`).

    With drop_last the samples after the last full batch are left out of this epoch; the next
    epoch's order is drawn afresh, so they are not left out for good.
    """
    return order.split(int(sizes[0]), dim=-1)[: len(sizes)]


def check_split(split, n: int) -> tuple[np.ndarray, np.ndarray]:
    """An explicit (train_rows, val_rows) split of n samples, checked: whole row numbers within 0 … n−1,
    each row used at most once (an epoch visits every training sample once), something to train."""
    if not isinstance(split, (tuple, list)) or len(split) != 2:
        raise TypeError("split must be a pair (train_rows, val_rows) of row numbers.")
    train_rows, val_rows = (_row_numbers(rows, part, n) for rows, part in zip(split, PARTS, strict=True))
    if len(train_rows) == 0:
        raise ValueError("split has no training rows: train_rows must hold at least one row number.")
    every = np.concatenate([train_rows, val_rows])
    if len(np.unique(every)) < len(every):
        values, counts = np.unique(every, return_counts=True)
        raise ValueError(
            f"split uses row {values[counts > 1][0]} more than once: each row trains or validates, and only once "
            f"(an epoch visits each training sample once, and a validation row must be unseen)."
        )
    return train_rows, val_rows


PARTS = ("train_rows", "val_rows")  # the two halves of a split, as its errors name them


def _row_numbers(rows, part: str, n: int) -> np.ndarray:
    """`rows` as an int64 array, if it is a 1-D sequence of whole row numbers within 0 … n−1."""
    try:
        array = np.asarray(rows)
    except (TypeError, ValueError, OverflowError) as error:
        raise TypeError(f"split's {part} must be a list of whole row numbers: {error}") from None
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        hint = " (a True/False mask? pass np.flatnonzero(mask))" if array.dtype.kind == "b" else ""
        raise TypeError(
            f"split's {part} must be a 1-D list of whole row numbers{hint}; got {array.dtype} values of shape "
            f"{array.shape}."
        )
    if array.min() < 0 or array.max() >= n:
        bad = array[(array < 0) | (array >= n)][0]
        raise ValueError(f"split's {part} must be row numbers within 0 … {n - 1}; got {bad}.")
    return array.astype(np.int64)


def check_full_batch(batch_size: int, n_train: int, drop_last: bool) -> None:
    """Refuse drop_last with a batch larger than the training set: no batch would remain."""
    if drop_last and batch_size > n_train:
        raise ValueError(
            f"batch_size={batch_size} with drop_last=True leaves no full batch of the {n_train} training "
            f"samples; use a smaller batch or drop_last=False."
        )


def epoch_order(n: int, epoch: int, *, seed: int, shuffle: bool) -> np.ndarray:
    """The order in which epoch `epoch` visits positions 0 … n−1 of the training split.

    Every epoch is a complete pass: the result is a permutation of 0 … n−1. With shuffling it
    is derived from (seed, epoch) alone, so epoch 3 has the same order whether the run lasts 5
    epochs or 50, and a resumed run sees exactly what an uninterrupted one would.
    """
    if not shuffle:
        return np.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(epoch_seed(seed, epoch))).numpy()


def epoch_seed(seed: int, epoch: int) -> int:
    """One seed per (seed, epoch): what an epoch draws depends on nothing but these two numbers."""
    return (seed * 1_000_003 + epoch) % 2**64
