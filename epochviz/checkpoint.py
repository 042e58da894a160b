"""Checkpoints: everything needed to stop training after any epoch and carry on later.

Epochs are bookkeeping. A checkpoint holds the weights, the optimizer's state, the epoch
counter, the history so far, the settings, the data, and the state of torch's random generator
as the last epoch left it: dropout in a module of your own draws its masks from it, so a
resumed run draws the very masks the run that never stopped drew. (The sample order of every
epoch needs no saved state: it follows from (seed, epoch) alone.) Resuming from it
(`epochviz.resume`) gives exactly the run that never stopped, to the last bit.

What epochviz needs none of, a larger training loop must save too: a learning-rate scheduler's
state, a mixed-precision grad scaler's scale, and the position inside an epoch with the data
loader's sampler state when it saves mid-epoch (epochviz saves only at epoch ends).

A file is one header line, `epochviz-checkpoint <version> sha256:<digest>`, then the payload
that `torch.save` wrote. The digest makes a single flipped bit anywhere refuse to load instead
of training on silently changed numbers. The payload holds only tensors, numbers and strings
and is read with `torch.load(weights_only=True)`, which refuses to execute anything a file might
smuggle in; then every setting is checked exactly as `train` checks its arguments. The settings
are stored as plain values (`TrainConfig.as_dict()`: your own module by its class name). Writes are
atomic: a crash while saving leaves the previous checkpoint intact, and the next save removes
the temporary file such a crash left behind.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import os
import re
import tempfile
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .config import TrainConfig, temporary_prefix
from .data import Dataset, check_split
from .models import CHECK_ROWS, MODELS, flat_parameters
from .objectives import loss_function, make_optimizer
from .run import Run
from .schedules import make_schedule

FORMAT = "epochviz-checkpoint"
VERSION = 3  # 3: the generator's state, and whether the data is ordered; 2: a header line with the payload's SHA-256
ENTRIES = ("run", "data", "model_state", "optimizer_state", "initial_weights", "generator_state")  # the payload
LEAVABLE = ("optimizer_state", "generator_state")  # what `resume(leave_out=...)` can do without, to show its effect
GENERATOR_DEVICES = ("cpu", "cuda")  # whose generator a state can be (the device type a run trained on)
DATA_FIELDS = ("x", "y", "task", "name", "classes", "ordered")


class CheckpointError(ValueError):
    """A file that cannot be resumed from: missing, truncated, corrupted, edited, or not ours."""


class SaveError(OSError):
    """Saving a checkpoint failed after an epoch had trained; `run` holds everything trained so far.

    `saved_epoch` is the last epoch the file holds (0: none). `resume(error.run, epochs)` carries
    the run on in memory, saving again after its next epoch.
    """

    def __init__(self, run: Run, epoch: int, saved_epoch: int, cause: OSError) -> None:
        saved = f"it holds epoch {saved_epoch}" if saved_epoch else "no epoch was saved there"
        super().__init__(
            f"saving the checkpoint after epoch {epoch} to {run.config.checkpoint!r} failed "
            f"({cause.strerror or cause}); {saved}. Nothing trained is lost: this error's .run holds all "
            f"{run.completed_epochs} epochs; make room and call resume(error.run, epochs) to carry on."
        )
        self.run, self.epoch, self.saved_epoch = run, epoch, saved_epoch


def save(path: str | os.PathLike, run: Run, model_state: dict, optimizer_state: dict, initial_weights: dict,
         generator_state: dict) -> None:  # fmt: skip
    """Write a checkpoint of `run` to `path` atomically: a temporary file, flushed and fsynced, then renamed.

    `generator_state` is {"device": "cpu" or "cuda", "state": torch's generator state on that device}.
    """
    data = run.data
    write(path, {
        "run": run.to_state(),
        "data": {"x": data.x, "y": data.y, "task": data.task, "name": data.name, "classes": list(data.classes),
                 "ordered": data.ordered},
        "model_state": model_state,
        "optimizer_state": optimizer_state,
        "initial_weights": initial_weights,
        "generator_state": generator_state,
    })  # fmt: skip


def check_savable(config: TrainConfig) -> None:
    """Refuse, before training, a module of your own that `save` could write but `resume` could never read.

    A checkpoint stores your module by its class name, so that name must be a Python name, and not
    a built-in model's (resuming would build that model instead).
    """
    name = config.model_name
    if not name.isidentifier() or name in MODELS:
        raise ValueError(f"model's class is called {name!r}, and a checkpoint stores your module by its class name; "
                         f"{'that is a built-in model' if name in MODELS else 'that is not a name'}: rename the "
                         f"class to save it with checkpoint=.")  # fmt: skip


def write(path: str | os.PathLike, contents: dict) -> None:
    """Write `contents` to `path` behind the header that names the format and checksums the payload."""
    buffer = io.BytesIO()
    torch.save(contents, buffer)
    payload = buffer.getvalue()
    header = f"{FORMAT} {VERSION} sha256:{hashlib.sha256(payload).hexdigest()}\n".encode()
    target = Path(path).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=temporary_prefix(target.name), suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(header + payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read(path: str | os.PathLike) -> dict:
    """The payload of the checkpoint at `path`, once its header and checksum are right; not yet checked."""
    path = Path(path).expanduser()
    name = repr(str(path))
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {name}.")
    header, newline, payload = path.read_bytes().partition(b"\n")
    parts = header.split(b" ")
    if not newline or len(parts) != 3 or parts[0] != FORMAT.encode():
        raise CheckpointError(_not_ours(name, path))
    if parts[1] != str(VERSION).encode():
        raise CheckpointError(f"{name} has checkpoint version {parts[1].decode(errors='replace')!r}; "
                              f"this epochviz reads version {VERSION}.")  # fmt: skip
    if parts[2] != f"sha256:{hashlib.sha256(payload).hexdigest()}".encode():
        raise CheckpointError(f"{name} is corrupted: its contents no longer match the checksum saved with them "
                              f"(a damaged disk, an incomplete copy, or an edit).")  # fmt: skip
    try:
        contents = torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
    except Exception as error:  # torch.load fails in many ways (OSError, RuntimeError…); each means the same here
        raise CheckpointError(f"{name} is damaged: its checksum matches, but torch cannot read what it holds "
                              f"(it was not written by epochviz's save).") from error  # fmt: skip
    if not isinstance(contents, dict):
        raise CheckpointError(f"{name} is damaged: it holds a {type(contents).__name__}, not a checkpoint's entries.")
    return contents


def load(path: str | os.PathLike, model: nn.Module | None = None) -> dict:
    """Read and check a checkpoint; its 'run' entry comes back as a Run, its 'data' as a Dataset.

    Every setting is checked as `train` would check it, and the history, data and split must
    agree with each other. Raises CheckpointError naming the file and what is wrong with it.
    A run of your own module needs `model` (one of its architecture): the file holds only its
    class name. The loaded settings say device='cpu', where the file's tensors are, and
    checkpoint=None: where a run carries on training and saving is `resume`'s to say.
    """
    contents = read(path)
    with _refused(path):
        missing = [entry for entry in ENTRIES if entry not in contents]
        if missing:
            raise ValueError(f"it has no {missing[0]!r} entry")
        data = _dataset(contents["data"])
        settings = _settings(contents["run"]["config"])
        _check_generator_state(contents["generator_state"])
    if settings["model"] not in MODELS and model is None:  # the file is sound; the argument is missing
        raise ValueError(f"{str(Path(path).expanduser())!r} trained your own module {settings['model']}; pass "
                         f"model=<a new one of the same architecture>.")  # fmt: skip
    with _refused(path):
        config = TrainConfig(**{**settings, "model": settings["model"] if model is None else model})
        run = Run.from_state(contents["run"], data, config)
        _check_history(run)
    return {**contents, "data": data, "run": run}


@contextlib.contextmanager
def _refused(path: str | os.PathLike):
    """Turn whatever a damaged file makes the checks inside raise into a CheckpointError naming `path`."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as error:
        if isinstance(error, KeyError):
            problem = f"it has no entry {error.args[0]!r}"
        elif type(error) in (ValueError, TypeError):  # our checks and TrainConfig's explain themselves
            problem = str(error)[:300]
        else:  # torch's or pandas' own words would say nothing to a learner; the chained error keeps them
            problem = "some part of it is not what epochviz saves"
        raise CheckpointError(f"{str(Path(path).expanduser())!r} cannot be resumed: {problem.rstrip('.')}.") from error


def check_model_fits(path: str | os.PathLike, contents: dict, net: nn.Module, *, yours: bool) -> None:
    """Refuse weights, initial weights or optimizer state in `contents` (from `load`) that do not fit `net`.

    `net` is the model `resume` built to carry on. When it is `yours` (a module the learner passed),
    weights of another shape mean that module is the wrong one, and the error names `model`.
    """
    name, run = repr(str(Path(path).expanduser())), contents["run"]
    expected = net.state_dict()
    problem = state_mismatch(expected, contents["model_state"])
    if problem and yours:
        raise ValueError(f"model does not fit the weights saved in {name} ({problem}); pass a new module of the "
                         f"architecture that was trained.")  # fmt: skip
    count = flat_parameters(net).numel()
    recorded = run.params(1).size if run.completed_epochs else count
    problems = {
        "model_state": problem,
        "initial_weights": state_mismatch(expected, contents["initial_weights"]),
        "optimizer_state": _optimizer_mismatch(contents["optimizer_state"], net, run),
        "history": None if recorded == count else f"its epochs hold {recorded} parameters, the model has {count}",
    }
    for entry, problem in problems.items():
        if problem:
            raise CheckpointError(f"{name} cannot be resumed: its {entry} does not fit the model: {problem}.")


def state_mismatch(expected: dict, stored) -> str | None:
    """How `stored` (named values read from a file) differs from `expected` in names, shapes or types; None if not."""
    if not isinstance(stored, dict):
        return f"it is a {type(stored).__name__}, not named tensors"
    if stored.keys() != expected.keys():
        missing, extra = expected.keys() - stored.keys(), stored.keys() - expected.keys()
        return f"it lacks {sorted(map(str, missing))}" if missing else f"it has unexpected {sorted(map(str, extra))}"
    for key, value in expected.items():
        if not _alike(stored[key], value):
            return f"{key!r} is {_describe(stored[key])} where {_describe(value)} belongs"
    return None


# --- checking what a file holds ------------------------------------------------------------------


def _dataset(stored) -> Dataset:
    """The Dataset in a file's 'data' entry; Dataset itself checks features, targets and classes."""
    if not isinstance(stored, dict) or set(stored) != set(DATA_FIELDS):
        raise ValueError(f"its data must hold exactly {list(DATA_FIELDS)}")
    names = stored["classes"]
    if not isinstance(stored["name"], str) or not isinstance(names, list) or not all(isinstance(c, str) for c in names):
        raise TypeError("its data.name must be a string and data.classes a list of class names")
    return Dataset(stored["x"], stored["y"], stored["task"], stored["name"], tuple(names), stored["ordered"])


def _settings(stored: dict) -> dict:
    """The settings a file holds as plain values, checked by TrainConfig exactly as `train` checks its arguments;
    device 'cpu' and checkpoint None (see `load`)."""
    expected = [setting.name for setting in fields(TrainConfig)]
    if not isinstance(stored, dict) or set(stored) != set(expected):
        known = set(stored) if isinstance(stored, dict) else set()
        missing, extra = [s for s in expected if s not in known], sorted(map(str, known - set(expected)))
        raise ValueError(f"its settings lack {missing}" if missing else f"its settings include unknown {extra}")
    model, device, file = stored["model"], stored["device"], stored["checkpoint"]
    if not isinstance(model, str) or not model.isidentifier():
        raise TypeError(f"model must be a model's name, {' or '.join(MODELS)} or a module's class; got {model!r}")
    if not isinstance(device, str) or not (file is None or isinstance(file, str)):
        raise TypeError(f"device must be a string and checkpoint a path or None; got {device!r} and {file!r}")
    # A module you trained is stored by its class name (`load` is given the module itself), and the
    # device and file a run carries on with are resume's own arguments, checked there.
    checked = TrainConfig(**{**stored, "model": model if model in MODELS else MODELS[0], "device": "cpu",
                             "checkpoint": None})  # fmt: skip
    return {**checked.as_dict(), "model": model}


def _check_generator_state(stored) -> None:
    """Refuse a generator state that no generator of its device type could take."""
    if not isinstance(stored, dict) or set(stored) != {"device", "state"} or stored["device"] not in GENERATOR_DEVICES:
        raise ValueError(f"its generator_state must hold a device type ({' or '.join(GENERATOR_DEVICES)}) and a state")
    state = stored["state"]
    if not isinstance(state, torch.Tensor) or state.dtype != torch.uint8 or state.ndim != 1:
        raise TypeError("its generator_state must be a 1-D uint8 tensor, as torch's generators give them")
    if stored["device"] == "cpu":  # a CUDA state can only be tried on a GPU; resume sets it there
        try:
            torch.Generator().set_state(state)
        except RuntimeError:
            raise ValueError(f"its generator_state ({state.numel()} bytes) is not a state of torch's CPU "
                             f"generator") from None  # fmt: skip


def _check_history(run: Run) -> None:
    """Refuse a split outside the data, or a history whose epochs, steps and weights disagree."""
    for rows in (run.train_indices, run.val_indices):
        if rows.ndim != 1 or rows.dtype != np.int64:
            raise TypeError(f"its train_indices and val_indices must be 1-D int64 row numbers; got {rows.dtype}")
    check_split((run.train_indices, run.val_indices), len(run.data))
    done, epochs, steps = run.completed_epochs, run.epochs, run.steps
    if done > run.config.epochs:
        raise ValueError(f"it has {done} completed epochs but its settings say epochs={run.config.epochs}")
    if run.diverged_at is not None and (len(run.diverged_at) != 2 or not all(isinstance(i, int)
                                                                              for i in run.diverged_at)):  # fmt: skip
        raise TypeError(f"its diverged_at must be (epoch, step); got {run.diverged_at!r}")
    if not all(np.issubdtype(dtype, np.number) for dtype in [*epochs.dtypes, *steps.dtypes]):
        raise TypeError("its epoch and step records must hold numbers")
    required = epochs[["epoch", "steps", "samples_seen", "train_loss", "weight_change", "elapsed_s"]]
    if epochs.epoch.tolist() != list(range(1, done + 1)) or required.isna().any(axis=None):
        raise ValueError("its epoch records must be numbered 1, 2, … with every count and loss filled in")
    counted = steps.epoch.value_counts().reindex(epochs.epoch, fill_value=0).tolist()
    if counted != epochs.steps.tolist() or len(steps) != run.total_steps or (epochs.steps != run.steps_per_epoch).any():
        raise ValueError(
            f"its step records do not match the steps its epochs counted, {run.steps_per_epoch} "
            f"per epoch with its batch_size and drop_last"
        )
    shapes = {run.params(epoch, at).shape for epoch in range(1, done + 1) for at in ("start", "end")}
    if len(shapes) > 1 or any(len(shape) != 1 for shape in shapes):
        raise ValueError(f"its epochs hold weights of different shapes: {sorted(shapes)}")
    if run.config.track_weights and done and run.step_weights().shape != (len(steps), *shapes.pop()):
        raise ValueError("its weights per step do not match its steps and its weights per epoch")


def _optimizer_mismatch(stored, net: nn.Module, run: Run) -> str | None:
    """How a stored optimizer state differs from what `run`'s settings and steps make for `net`; None if it fits."""
    config = run.config
    optimizer = _stepped_optimizer(net, run)
    make_schedule(config.lr_schedule, optimizer, run.steps_per_epoch, run.total_steps)  # the lr those steps left
    reference = optimizer.state_dict()
    if not isinstance(stored, dict) or stored.keys() != reference.keys():
        return "it is not an optimizer's state"
    groups = stored["param_groups"]
    if not isinstance(groups, list) or [
        group.get("params") if isinstance(group, dict) else None for group in groups
    ] != [g["params"] for g in reference["param_groups"]]:
        return f"its parameter groups are not those optimizer={config.optimizer!r} makes for this model"
    state = stored["state"]
    if not isinstance(state, dict) or state.keys() != reference["state"].keys():
        return "it holds state for other parameters"
    for index, expected in reference["state"].items():
        problem = state_mismatch(expected, state[index])
        if problem:
            return f"parameter {index}: {problem}"
    try:
        optimizer.load_state_dict(stored)
    except Exception:  # torch's own checks, whatever they raise
        return f"torch cannot load it into optimizer={config.optimizer!r}"
    # Compared after loading, as torch fills in settings that an older torch did not store;
    # every setting it then holds must be what optimizer and lr make (lr=nan in a file must not train).
    for group, expected in zip(optimizer.state_dict()["param_groups"], reference["param_groups"], strict=True):
        for key, value in expected.items():
            if key not in group or not _alike(group[key], value):
                return (f"it says {key}={group.get(key)!r} where optimizer={config.optimizer!r}, "
                        f"lr={config.lr}, lr_schedule={config.lr_schedule!r} make {value!r}")  # fmt: skip
    return None


def _stepped_optimizer(net: nn.Module, run: Run) -> torch.optim.Optimizer:
    """The optimizer `run`'s settings ask for, after one step on a copy of `net` with the gradient of a small batch.

    Its state then has every name and shape a trained one has (momentum, Adam's averages), for exactly
    the parameters that get a gradient: one that is frozen or that the forward pass never uses has none.
    """
    config, copied = run.config, copy.deepcopy(net)
    optimizer = make_optimizer(config.optimizer, copied, config.lr)
    x, y = run.data.x[:CHECK_ROWS].to(config.dtype), run.data.y[:CHECK_ROWS]
    with torch.random.fork_rng(devices=[]):  # dropout in your own module must not move torch's generator
        output = copied(x)
        loss_function(run.data.task)(output, y.to(output.dtype) if y.is_floating_point() else y).backward()
    optimizer.step()
    return optimizer


def _alike(value, expected) -> bool:
    """A tensor of the same shape and dtype, or a plain value of the same type that is equal."""
    if isinstance(expected, torch.Tensor):
        return isinstance(value, torch.Tensor) and value.shape == expected.shape and value.dtype == expected.dtype
    if isinstance(expected, (list, tuple)):
        return type(value) is type(expected) and len(value) == len(expected) and all(map(_alike, value, expected))
    return type(value) is type(expected) and value == expected


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).removeprefix('torch.')} tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def _not_ours(name: str, path: Path) -> str:
    """Why a file without our header is refused; a checkpoint of version 1 (a bare torch file) is named as such."""
    try:
        contents = torch.load(path, weights_only=True, map_location="cpu")
    except Exception:  # not a torch file at all, or one that would execute code when read
        return f"{name} is not an epochviz checkpoint (truncated, corrupted or another kind of file)."
    if isinstance(contents, dict) and contents.get("format") == FORMAT:
        return (f"{name} is an epochviz checkpoint of version {contents.get('version')!r}, without a checksum; "
                f"this epochviz reads version {VERSION}: train again to make one.")  # fmt: skip
    return f"{name} is a PyTorch file but not an epochviz checkpoint."


# --- temporary files that a killed save left behind ---------------------------------------------


def _remove_stale_temporaries(target: Path) -> None:
    """Delete temporary files of saves to `target` whose writing process is gone (killed while saving)."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.[^.]+\.tmp")
    for entry in os.scandir(target.parent):
        found = pattern.fullmatch(entry.name)
        if found and not process_alive(int(found.group(1))):
            with contextlib.suppress(OSError):  # another save got there first; a leftover must not stop this one
                os.unlink(entry.path)


def process_alive(pid: int) -> bool:
    """Whether process `pid` is alive, so a file it is writing (a temporary checkpoint, a parallel run's folder)
    must be left alone."""
    if os.name != "posix":
        return True  # os.kill would terminate it on Windows, so leftovers there are left alone
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except (ProcessLookupError, OverflowError):  # no such process, or a number no process can have
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True
