"""Data parallelism: one epoch shared by several workers, with PyTorch's own distributed engine.

Real training is often spread over many devices. Each of W workers (here: CPU processes on
this machine, talking over 127.0.0.1 with `torch.distributed`'s gloo backend) holds the same
model, started from the same seed. A `DistributedSampler` deals each epoch's shuffled order
out to the workers, so every worker sees about N/W samples per epoch, and each step:

    forward and backward on its own batch of B samples
    all_reduce: add up every worker's gradient, so all of them hold the gradient of the W·B samples
    step: the same update on every worker, so the models stay identical

That is what `DistributedDataParallel` does (in buckets, overlapped with the backward pass);
here it is written out. The epoch does not change: it is still one pass over the N training
samples. Only the steps divide: ⌈N / (W·B)⌉ of them, each on W·B samples, which is why W
workers with batch B follow the same curve as one worker with batch W·B.

The classic bug is forgetting `sampler.set_epoch(epoch)`: the sampler then shuffles with the
same seed every epoch, and every epoch visits the samples in the same order
(`train_parallel(..., set_epoch=False)` shows it).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from . import checks
from .checkpoint import process_alive
from .config import TrainConfig
from .data import Dataset, as_dataset, epoch_seed, split_rows
from .models import build, flat_parameters
from .objectives import evaluate, loss_function, make_optimizer
from .run import Run
from .train import record_epoch

MAX_WORKERS = 8  # processes on one machine; each is a whole Python with torch (about 300 MB)
FOLDER_PREFIX = "epochviz-parallel-"  # each call's folder in the temporary folder: this, its process id, a dash
PARENT_CHECK_S = 0.5  # how often a worker checks that the process that started it is still there
REPORT_TIMEOUT_S = 120  # longest wait for an epoch (the first includes starting Python and torch, on a busy machine)


def train_parallel(
    data: Dataset | str = "moons",
    *,
    workers: int = 2,
    batch_size: int = 16,
    epochs: int = 10,
    lr: float = 0.1,
    optimizer: str = "sgd",
    model: str = "mlp",
    val_fraction: float = 0.2,
    seed: int = 0,
    set_epoch: bool = True,
    on_epoch: Callable[[Run], None] | None = None,
) -> Run:
    """Train with `workers` processes that share every epoch, and record it as one Run.

    `batch_size` is each worker's batch: one step trains on `workers × batch_size` samples, so
    `run.config.batch_size` (and the step count) is that of the equivalent single-worker run,
    `train(data, batch_size=workers * batch_size)`, whose losses it reproduces to float rounding
    (the workers add their gradients in another order). `run.worker_orders[epoch]` holds, row by
    row, the training positions each worker visited. With `set_epoch=False` the sampler is never
    told the epoch, the bug that repeats one order in every epoch. When N is not a multiple of
    W, the sampler repeats a few samples so every worker gets as many (`samples_seen` says so).

    >>> run = train_parallel("moons", workers=2, batch_size=16, epochs=2)  # doctest: +SKIP
    >>> run.steps_per_epoch, int(run.epochs.samples_seen.iloc[0])          # doctest: +SKIP
    (10, 320)

    What to notice: two workers, batch 16 each: 10 steps of 32 samples, 320 samples an epoch,
    exactly what one worker with batch 32 does.
    """
    workers = checks.whole("workers", workers, minimum=1, maximum=MAX_WORKERS)
    if not isinstance(model, str):
        raise TypeError(f"model must be the name of a built-in model for train_parallel; got {type(model).__name__}.")
    # a step trains on workers × batch_size samples, which `train` allows up to MAX_SAMPLES
    batch_size = checks.whole("batch_size", batch_size, minimum=1, maximum=checks.MAX_SAMPLES // workers)
    config = TrainConfig(
        model=model, epochs=epochs, batch_size=batch_size * workers, lr=lr,
        optimizer=optimizer, val_fraction=val_fraction, seed=seed, device="cpu",
    )  # fmt: skip
    set_epoch = checks.flag("set_epoch", set_epoch)
    checks.function("on_epoch", on_epoch)
    data = as_dataset(data)
    train_rows, val_rows = split_rows(data, val_fraction=config.val_fraction, seed=config.seed)
    run = Run(config=config, data=data, train_indices=train_rows, val_indices=val_rows, workers=workers,
              cannot_resume_because="its training state lived in the worker processes, which have ended")  # fmt: skip

    _remove_stale_folders()
    # the workers meet at a store this process serves, on a port it binds itself: no other program can take it
    # between choosing it and using it
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False, timeout=timedelta(seconds=60))
    with tempfile.TemporaryDirectory(prefix=f"{FOLDER_PREFIX}{os.getpid()}-") as folder:
        folder = Path(folder)
        settings = {"config": config, "data": data, "rows": (train_rows, val_rows), "workers": workers,
                    "batch_size": batch_size, "set_epoch": set_epoch, "port": store.port,
                    "parent": os.getpid()}  # fmt: skip
        torch.save(settings, folder / "settings.pt")
        processes = []
        try:
            for rank in range(workers):
                processes.append(_start_worker(rank, folder))
            for epoch in range(1, config.epochs + 1):
                report = _wait_for_report(folder / f"epoch-{epoch}.pt", processes, folder)
                run.worker_orders[epoch] = report.pop("orders")
                if record_epoch(run, epoch, **report):  # it diverged: stop, as `train` does
                    break
                if on_epoch is not None:
                    on_epoch(run)
            else:
                for process in processes:
                    process.wait(timeout=30)
        finally:  # on an error or an interrupt too: no worker outlives this call
            _stop(processes)
    return run


def _start_worker(rank: int, folder: Path) -> subprocess.Popen:
    """Start worker `rank` as its own Python process (in its own process group, so it can be stopped whole).

    A fresh interpreter rather than multiprocessing's "spawn", which re-runs the caller's script
    and so fails in a script without `if __name__ == "__main__":`; this works from anywhere.
    """
    package_parent = str(Path(__file__).resolve().parent.parent)  # the children import this very epochviz
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")])),
        "GLOO_SOCKET_IFNAME": "lo",  # the workers talk over the loopback interface (127.0.0.1) only
        "OMP_NUM_THREADS": "1",
    }
    code = f"from epochviz.parallel import _worker; _worker({rank}, {str(folder)!r})"
    with open(folder / f"worker-{rank}.log", "wb") as log:
        return subprocess.Popen([sys.executable, "-c", code], env=environment, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip


def _worker(rank: int, folder: str) -> None:
    """One worker's whole training: the loop of `train`, with its share of each epoch and an all_reduce."""
    folder = Path(folder)
    settings = torch.load(folder / "settings.pt", weights_only=False)
    config, data = settings["config"], settings["data"]
    workers, batch_size = settings["workers"], settings["batch_size"]
    torch.set_num_threads(1)
    _exit_with_parent(settings["parent"])
    try:
        store = dist.TCPStore("127.0.0.1", settings["port"], is_master=False, timeout=timedelta(seconds=60))
        dist.init_process_group("gloo", store=store, rank=rank, world_size=workers, timeout=timedelta(seconds=60))
        train_rows, val_rows = (torch.as_tensor(rows) for rows in settings["rows"])
        x, y, x_val, y_val = data.x[train_rows], data.y[train_rows], data.x[val_rows], data.y[val_rows]
        loss_of = loss_function(data.task)

        # initialise once, the same on every worker: the same seed gives the same weights
        model = build(config.model, data, config.seed)
        optimizer = make_optimizer(config.optimizer, model, config.lr)
        # the sampler shuffles with seed + epoch: starting from epoch_seed(seed, 0), epoch e draws the order
        # that `train` draws for epoch e, and deals this worker every W-th position of it
        sampler = DistributedSampler(range(len(x)), num_replicas=workers, rank=rank, shuffle=True,
                                     seed=epoch_seed(config.seed, 0))  # fmt: skip
        started = time.perf_counter()

        for epoch in range(1, config.epochs + 1):
            if settings["set_epoch"]:
                sampler.set_epoch(epoch)  # forget this, and every epoch repeats the same order
            start = flat_parameters(model).numpy()
            mine = torch.tensor(list(sampler))
            sizes, losses, elapsed, correct = [], [], [], 0.0
            for batch in mine.split(batch_size):
                # how many samples this step trains on, over all the workers
                step_size = _sum(torch.tensor(float(len(batch))))
                optimizer.zero_grad()
                # forward and backward on this worker's batch; its share of the mean loss over the whole step
                output = model(x[batch])
                share = loss_of(output, y[batch]) * (len(batch) / step_size)
                share.backward()
                # all_reduce: the shares add up to the gradient of the whole step's mean loss, on every worker
                for parameter in model.parameters():
                    dist.all_reduce(parameter.grad)
                # update: the same gradient, so the same step on every worker
                optimizer.step()
                sizes.append(int(step_size))
                losses.append(float(_sum(share.detach())))
                elapsed.append(time.perf_counter() - started)
                if data.task == "classification":
                    correct += float((output.argmax(dim=1) == y[batch]).sum())

            orders = [torch.zeros_like(mine) for _ in range(workers)]
            dist.all_gather(orders, mine)
            samples, correct = sum(sizes), float(_sum(torch.tensor(correct)))
            if rank == 0:  # all hold the same model: one report is enough
                _write(folder / f"epoch-{epoch}.pt", {
                    "sizes": np.array(sizes), "losses": np.array(losses), "elapsed": np.array(elapsed),
                    "step_weights": None, "start": start, "end": flat_parameters(model).numpy(),
                    "train_accuracy": correct / samples if data.task == "classification" else math.nan,
                    "validation": evaluate(model, x_val, y_val, loss_of),
                    "elapsed_s": time.perf_counter() - started, "orders": torch.stack(orders).numpy(),
                })  # fmt: skip
        dist.barrier()
    except Exception:  # say what went wrong to the caller, who stops every worker
        (folder / f"error-{rank}.txt").write_text(traceback.format_exc())
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _sum(value: torch.Tensor) -> torch.Tensor:
    """`value` added up over all the workers (every worker gets the total)."""
    dist.all_reduce(value)
    return value


def _write(path: Path, report: dict) -> None:
    """Save `report` so that the caller never reads half a file: write beside it, then rename."""
    torch.save(report, path.with_suffix(".part"))
    os.replace(path.with_suffix(".part"), path)


def _wait_for_report(path: Path, processes: list[subprocess.Popen], folder: Path) -> dict:
    """Rank 0's report of one epoch, once it is there; an error if a worker failed, died or went silent."""
    deadline = time.monotonic() + REPORT_TIMEOUT_S
    while not path.exists():
        failed = [(rank, process.poll()) for rank, process in enumerate(processes) if process.poll() not in (None, 0)]
        if failed:
            # a worker killed by a signal is the cause; the others then fail on their broken connection to it
            rank, code = min(failed, key=lambda failure: (failure[1] > 0, failure[0]))
            if code < 0:
                raise RuntimeError(f"train_parallel: worker {rank} was killed by {_signal_name(-code)} (kill -9 and "
                                   f"the system's out-of-memory killer send SIGKILL).")  # fmt: skip
            error = folder / f"error-{rank}.txt"
            detail = (error if error.exists() else folder / f"worker-{rank}.log").read_text().strip().splitlines()
            raise RuntimeError(f"train_parallel: worker {rank} stopped: {detail[-1] if detail else 'no message'}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"train_parallel: no word from the workers for {REPORT_TIMEOUT_S} s.")
        time.sleep(0.02)
    return torch.load(path, weights_only=False)


def _stop(processes: list[subprocess.Popen]) -> None:
    """End every worker that is still running, with its whole process group: politely, then for sure."""
    for process in processes:
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()


def _signal_group(process: subprocess.Popen, signal_number: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have just ended
        os.killpg(process.pid, signal_number)


def _signal_name(number: int) -> str:
    """A signal's name and number, such as 'SIGKILL (signal 9)'."""
    try:
        return f"{signal.Signals(number).name} (signal {number})"
    except ValueError:  # a number Python has no name for (a real-time signal)
        return f"signal {number}"


def _exit_with_parent(parent: int) -> None:
    """End this worker as soon as `parent`, the process that started it, is gone (a kernel restart, a kill -9).

    Nobody would read what it trains, and it would go on using a CPU for every remaining epoch. A thread
    asks every PARENT_CHECK_S seconds who this process's parent is: when that process dies, the answer changes.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(1)  # at once: the main thread may be waiting in a collective for workers that are gone too

    threading.Thread(target=watch, name="epochviz-parent-watch", daemon=True).start()


def _remove_stale_folders() -> None:
    """Delete the folders that earlier calls left behind when their process was killed mid-training.

    A folder's name holds its process id (`epochviz-parallel-<pid>-…`); one whose process is gone
    belongs to nobody. Folders of running processes, another notebook's included, are left alone.
    """
    pattern = re.compile(rf"{FOLDER_PREFIX}(\d+)-\w+")
    for entry in os.scandir(tempfile.gettempdir()):
        found = pattern.fullmatch(entry.name)
        if found and entry.is_dir(follow_symlinks=False) and not process_alive(int(found.group(1))):
            shutil.rmtree(entry.path, ignore_errors=True)  # another call may be removing it at the same moment
