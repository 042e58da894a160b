"""`TrainConfig`: the settings of one training run, checked before any training starts.

The same checked object is what the loop trains with, what `run.config` shows and (as plain
values) what a checkpoint stores. It is frozen: a run that trains for more epochs gets a new
one from `dataclasses.replace(config, epochs=...)`, which checks it again.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, fields

import torch
from torch import nn

from . import checks
from .memory import check_accumulate
from .models import MODELS
from .objectives import OPTIMIZERS
from .policies import RESETS
from .schedules import SCHEDULES

# the number formats a run can train in, by name: weights, data and every sum use this one
PRECISIONS = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class TrainConfig:
    """What `train` was asked to do. Creating one checks every field and names any bad one.

    >>> TrainConfig(epochs=0)
    Traceback (most recent call last):
    ...
    ValueError: epochs must be from 1 to 10,000; got 0.
    >>> TrainConfig(epochs=3).epochs
    3

    What to notice: `print(run.config)` lists every setting a run used, defaults included, one a
    line, so two runs can be compared setting by setting.
    """

    model: str | nn.Module = "mlp"  # "mlp", "linear", "mlp_batchnorm", or your own torch module (copied, never changed)
    epochs: int = 10  # full passes over the training data
    batch_size: int = 32  # samples per optimizer step; above the training-set size means one full batch
    lr: float = 0.1  # learning rate: about 0.01–0.5 for SGD on these datasets, 0.001–0.01 for Adam
    optimizer: str = "sgd"  # "sgd", "momentum" (SGD with momentum 0.9) or "adam"
    lr_schedule: str = "constant"  # how lr moves from step to step: a name in schedules.SCHEDULES
    reset: str = "never"  # what starts over at every epoch start: a name in policies.POLICIES ("never": nothing)
    shuffle: bool = True  # visit the training samples in a new random order every epoch
    drop_last: bool = False  # skip a last batch smaller than batch_size
    val_fraction: float = 0.2  # share of samples held out to validate, in [0, 1)
    seed: int = 0  # one seed fixes the initial weights, the split and every epoch's order
    device: str = "auto"  # "cpu", "cuda", "cuda:N", or "auto" (a GPU when there is one)
    accumulate: int = 1  # micro-batches per step whose gradients add up (saves memory; same result without batch norm)
    memory_budget_mb: float | None = None  # simulate a device this big (a step and the data); None: no limit
    checkpoint: str | None = None  # file to save a resumable checkpoint to after every epoch ("~" is your home)
    track_weights: bool = False  # also keep the weights of every step (memory: steps × parameters)
    threads: int | None = 1  # CPU threads torch may use while training; None: torch's own setting.
    # One suits these tiny models: a second thread gains little, and on a busy machine (a shared
    # classroom server, a laptop running a browser) it can make training ten times slower.
    precision: str = "float32"  # number format of weights and data: "float32" (~7 digits, torch's usual)
    # or "float64" (~16 digits, slower): the same training, rounded less at every step

    def __post_init__(self) -> None:
        if not isinstance(self.model, nn.Module):
            checks.choice("model", self.model, MODELS)
        # every number is stored as a plain Python value, so NumPy or torch scalars never reach the loop
        self._set("epochs", checks.whole("epochs", self.epochs, minimum=1, maximum=checks.MAX_EPOCHS))
        self._set("batch_size", checks.whole("batch_size", self.batch_size, minimum=1, maximum=checks.MAX_SAMPLES))
        self._set("lr", checks.number("lr", self.lr, low=0, high=1e9, low_open=True))
        checks.choice("optimizer", self.optimizer, OPTIMIZERS)
        checks.choice("lr_schedule", self.lr_schedule, SCHEDULES)
        checks.choice("reset", self.reset, RESETS)
        checks.flag("shuffle", self.shuffle)
        checks.flag("drop_last", self.drop_last)
        self._set("val_fraction", checks.number("val_fraction", self.val_fraction, low=0, high=1))
        self._set("seed", checks.seed(self.seed))
        self._set("accumulate", checks.whole("accumulate", self.accumulate, minimum=1, maximum=checks.MAX_SAMPLES))
        check_accumulate(self.batch_size, self.accumulate)
        if self.memory_budget_mb is not None:
            self._set("memory_budget_mb", checks.number("memory_budget_mb", self.memory_budget_mb, low=0, high=1e9,
                                                        low_open=True))  # fmt: skip
        if self.checkpoint is not None:
            self._set("checkpoint", checkpoint_path(self.checkpoint))
        checks.flag("track_weights", self.track_weights)
        if self.threads is not None:
            self._set("threads", checks.whole("threads", self.threads, minimum=1, maximum=256))
        checks.choice("precision", self.precision, PRECISIONS)
        resolve_device(self.device)

    def _set(self, name: str, value) -> None:
        object.__setattr__(self, name, value)  # the dataclass is frozen once checked

    @property
    def model_name(self) -> str:
        """The model's name: "mlp", "linear", or the class name of your own module."""
        return type(self.model).__name__ if isinstance(self.model, nn.Module) else self.model

    @property
    def dtype(self) -> torch.dtype:
        """The torch number format `precision` names: what the weights and the data are stored in."""
        return PRECISIONS[self.precision]

    def as_dict(self) -> dict:
        """The settings as plain values (what a checkpoint stores); your own module appears as its class name."""
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "model": self.model_name}

    def __repr__(self) -> str:
        lines = [f"    {setting.name}={_shown(getattr(self, setting.name))}," for setting in fields(self)]
        return "\n".join(["TrainConfig(", *lines, ")"])


def _shown(value) -> str:
    return f"<your own {type(value).__name__} module>" if isinstance(value, nn.Module) else repr(value)


def checkpoint_path(value, name: str = "checkpoint") -> str:
    """`value` as the absolute path of a checkpoint file that can be written, with `~` expanded to your home folder.

    Checked before training, so a typo fails at once instead of after the first epoch: the path must
    not be empty or a folder, its folder must exist or be creatable, and be writable, and every name
    on the way must fit the file system, the temporary file a save writes first included. What is
    already there must be a regular file: saving replaces it whole, so a device (`/dev/null`), a
    named pipe or a symbolic link there would be replaced by a file, not written through. The path
    is made absolute now, so a later change of the working folder cannot send saves elsewhere.
    """
    if not isinstance(value, (str, os.PathLike)) or not isinstance(os.fspath(value), str):
        raise TypeError(f"{name} must be a file path such as 'run.pt', or None; got {type(value).__name__}.")
    path = os.path.expanduser(os.fspath(value))
    if not path.strip() or "\0" in path:
        raise ValueError(f"{name} must name a file such as 'run.pt'; got {value!r}.")
    if os.path.isdir(path):
        raise ValueError(f"{name}={value!r} is a folder; name a file in it, such as {os.path.join(path, 'run.pt')!r}.")
    path = os.path.abspath(path)
    if os.path.lexists(path):
        kind = _file_kind(os.lstat(path).st_mode)
        if kind != "a regular file":
            raise ValueError(f"{name}={value!r} is {kind}, not a regular file: saving would replace it with a "
                             f"checkpoint; name a new or ordinary file such as 'run.pt'.")  # fmt: skip
    existing = os.path.dirname(path)
    while not os.path.lexists(existing):  # the nearest folder that is already there: saving creates the rest
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"{name}={value!r} cannot be created: {existing!r} is a file, not a folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{name}={value!r} cannot be written: you may not write to the folder {existing!r}.")
    longest = _longest_name(existing)
    created = os.path.relpath(path, existing).split(os.sep)[:-1]  # the folders saving creates on the way
    for part in [*created, temporary_prefix(os.path.basename(path)) + "x" * TEMPORARY_RANDOM_CHARS + ".tmp"]:
        if len(os.fsencode(part)) > longest:
            raise ValueError(f"{name}={value!r} has a name too long for its file system ({len(os.fsencode(part))} "
                             f"bytes in {part[:40]!r}…, at most {longest}; a save first writes a temporary file "
                             f"named '.<name>.<process>.<random>.tmp'); choose a shorter name.")  # fmt: skip
    return path


TEMPORARY_RANDOM_CHARS = 8  # the random part `tempfile.mkstemp` puts in a temporary file's name


def temporary_prefix(file_name: str) -> str:
    """The start of the temporary file's name a save to `file_name` writes first (`tempfile.mkstemp`'s prefix).

    The writer's process id in it tells a later save whether the file is still being written.
    """
    return f".{file_name}.{os.getpid()}."


def _file_kind(mode: int) -> str:
    """What an existing path is, in words, from its `os.lstat` mode (a symbolic link is not followed)."""
    kinds = [
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((kind for test, kind in kinds if test(mode)), "a special file")


def _longest_name(folder: str) -> int:
    """The longest file name, in bytes, the file system holding `folder` allows."""
    if hasattr(os, "pathconf"):
        return os.pathconf(folder, "PC_NAME_MAX")
    return 255  # Windows has no pathconf; NTFS and FAT32 allow 255 characters


def resolve_device(device: str) -> torch.device:
    """The torch device for `device`; 'auto' picks the GPU when there is one."""
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda'; got {type(device).__name__}.")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but this machine has no CUDA GPU; use 'cpu' or 'auto'.")
        if torch.device(device).index is not None and torch.device(device).index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r} but this machine has {torch.cuda.device_count()} GPU(s).")
        return torch.device(device)
    raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}.")
