"""Checkpoints: everything needed to stop training after any epoch and carry on later.

Epochs are bookkeeping. A checkpoint holds the weights, the optimizer's state, the epoch
counter, the history so far, the settings and the data; the sample order of every later
epoch follows from (seed, epoch), so no random-generator state is needed. Resuming from it
(`epochviz.resume`) gives exactly the run that never stopped.

Files hold only tensors, numbers and strings, and are read with `torch.load(weights_only=True)`,
which refuses to execute anything a file might smuggle in. Writes are atomic: a crash while
saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from .data import Dataset
from .run import Run

FORMAT = "epochviz-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A file that cannot be resumed from: missing, truncated, corrupted, or not ours."""


def save(path: str | os.PathLike, run: Run, model_state: dict, optimizer_state: dict, initial_weights: dict) -> None:
    """Write a checkpoint of `run` to `path` atomically: a temporary file, flushed and fsynced, then renamed."""
    data = run.data
    contents = {
        "format": FORMAT,
        "version": VERSION,
        "run": run.to_state(),
        "data": {"x": data.x, "y": data.y, "task": data.task, "name": data.name, "classes": list(data.classes)},
        "model_state": model_state,
        "optimizer_state": optimizer_state,
        "initial_weights": initial_weights,
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(contents, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load(path: str | os.PathLike) -> dict:
    """Read and check a checkpoint; its 'run' entry comes back as a Run, its 'data' as a Dataset.

    Raises CheckpointError naming the file for anything that is not a whole epochviz checkpoint.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {str(path)!r}.")
    try:
        contents = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:  # torch.load fails in many ways on a bad file; each means the same here
        reason = f"{type(error).__name__}: {str(error).split('. ')[0]}"
        raise CheckpointError(
            f"{str(path)!r} is not a readable epochviz checkpoint (truncated, corrupted or another kind of file): "
            f"{reason[:160]}"
        ) from error
    if not isinstance(contents, dict) or contents.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is a PyTorch file but not an epochviz checkpoint.")
    if contents.get("version") != VERSION:
        raise CheckpointError(f"{str(path)!r} has checkpoint version {contents.get('version')!r}; expected {VERSION}.")
    stored = contents["data"]
    contents["data"] = Dataset(stored["x"], stored["y"], stored["task"], stored["name"], tuple(stored["classes"]))
    contents["run"] = Run.from_state(contents["run"], contents["data"])
    return contents
