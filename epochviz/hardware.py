"""Epochs are a unit of work; seconds depend on the machine, and so do the last digits.

The same training on two machines sees the same samples in the same order, but it need not
do the same arithmetic: PyTorch picks its CPU kernels per processor (plain, AVX2 or AVX-512
instructions, which add sums in another order and approximate exp and log differently), a GPU uses
kernels of its own, and float64 rounds far less than float32. `compare_hardware` runs one
training each way and keeps every record, so you can see what holds (the losses, to a few
digits, and the epochs it takes to reach a loss) and what does not (the last digits, the seconds).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from . import checks
from .config import TrainConfig
from .data import Dataset, as_dataset
from .run import Run
from .train import train

KERNEL_PATHS = ("default", "avx2", "avx512")  # values of ATEN_CPU_CAPABILITY, plainest first
REFERENCE = "CPU · default kernels"  # float32 on the plain kernels every x86 CPU runs: what the others are compared to
FLOAT64 = "CPU · default kernels · float64"
CHOSEN_HERE = ("device", "precision", "on_epoch", "checkpoint")  # settings compare_hardware sets or cannot pass on


@dataclass
class HardwareComparison:
    """One training done with different arithmetic: the runs, the kernels each really used, and what was skipped.

    - `runs`: label → Run: `REFERENCE` (float32 on the plain kernels) and float64 on the same kernels,
      then each faster kernel path, then the GPU when there is one. Each path trained in a process of its own.
    - `kernels`: label → the kernel path torch reported in that process ("DEFAULT", "AVX2", …; "CUDA").
    - `skipped`: what this machine cannot run, and why (a CPU without AVX-512, no GPU).
    """

    runs: dict[str, Run]
    kernels: dict[str, str]
    skipped: dict[str, str] = field(default_factory=dict)

    def agreement(self, loss: float) -> pd.DataFrame:
        """How each kind of other arithmetic compares with the reference run: one row per kind, yes/no answers.

        Columns: the epochs to reach a training loss of `loss` or less, and the last epoch's training
        loss to 3 significant digits. A row says "same" only when every run of that kind agrees with
        the reference; the numbers themselves are in `runs`.

        What to notice: the epoch count and the rounded loss usually agree. Whether the last bits agree
        is not asked here: it depends on the processor (two kernel paths can round alike on one CPU
        and differently on the next), so a table that said it would be true on some machines only.
        `epochviz.plots.loss_differences(comparison.runs)` draws them instead.
        """
        loss = checks.number("loss", loss, low=0, low_open=True)
        reference = self.runs[REFERENCE]
        kinds = {
            "another CPU kernel path": [
                label for label in self.runs if label.endswith("kernels") and label != REFERENCE
            ],
            "float64 instead of float32": [FLOAT64],
            "a GPU instead of the CPU": [label for label in self.runs if label.startswith("GPU")],
        }
        rows = {}
        for kind, labels in kinds.items():
            if not labels:
                why = next((why for label, why in self.skipped.items() if label.startswith("GPU")), "not run")
                rows[kind] = dict.fromkeys(_QUESTIONS, f"skipped: {why}")
                continue
            others = [self.runs[label] for label in labels]
            rows[kind] = {
                question: _verdict([answer(run, loss) for run in others], answer(reference, loss))
                for question, answer in _QUESTIONS.items()
            }
        return pd.DataFrame.from_dict(rows, orient="index")


def _epochs_to_reach(run: Run, loss: float) -> int | None:
    reached = run.epochs.epoch[run.epochs.train_loss <= loss]
    return int(reached.iloc[0]) if len(reached) else None


_QUESTIONS = {
    "epochs to reach the loss": _epochs_to_reach,
    "last loss, 3 digits": lambda run, loss: float(f"{run.epochs.train_loss.iloc[-1]:.3g}"),
}


def _verdict(answers: list, reference) -> str:
    shown = "never" if reference is None else repr(reference)
    return f"same ({shown})" if all(answer == reference for answer in answers) else "differs"


def compare_hardware(data: Dataset | str = "moons", *, kernels: Sequence[str] = KERNEL_PATHS, timeout_s: float = 120,
                     **train_args) -> HardwareComparison:  # fmt: skip
    """Train the same settings with different arithmetic, each in a fresh Python process, and keep every run.

    One process per CPU kernel path in `kernels` that this CPU can run (`ATEN_CPU_CAPABILITY`
    set before torch starts, since torch picks its kernels once, when it loads), a float64 run
    on the plain kernels, and a run on the GPU when there is one. `train_args` go to `train`.
    Every process is stopped after `timeout_s` seconds, or at once when another one fails.

    >>> comparison = compare_hardware("moons", epochs=5)
    >>> comparison.agreement(loss=0.5)                       # one row per kind of arithmetic: same, or differs
    >>> epochviz.plots.loss_differences(comparison.runs)     # the last digits, step by step
    >>> comparison.kernels                                   # what torch really ran in each process

    What to notice: the runs see the same samples in the same order, and still their losses
    differ in the last digits; a long or chaotic training can grow that into a different run.
    """
    for name in CHOSEN_HERE:
        if name in train_args:
            raise ValueError(f"compare_hardware chooses {name} itself (or cannot pass it to another process); "
                             f"do not pass {name}.")  # fmt: skip
    if isinstance(kernels, (str, bytes)) or not isinstance(kernels, Sequence) or not kernels:
        raise TypeError(f"kernels must be a list of kernel paths such as {KERNEL_PATHS}; got {kernels!r}.")
    for path in kernels:
        checks.choice("each of kernels", path, KERNEL_PATHS)
    if "default" not in kernels:
        raise ValueError(
            f"kernels must include 'default', the reference every other run is compared to; got {kernels!r}."
        )
    timeout_s = checks.number("timeout_s", timeout_s, low=10, high=3600)  # each process needs seconds to load torch
    data = as_dataset(data)
    TrainConfig(**{name: value for name, value in train_args.items() if name != "split"})  # refused here, not there

    supported = cpu_kernel_paths()
    # one process per kernel path, as torch picks its kernels once, when it loads; float64 shares the plain one's
    processes = {path: [(_kernel_label(path), "cpu", "float32")] for path in kernels if path in supported}
    processes["default"].append((FLOAT64, "cpu", "float64"))
    skipped = {_kernel_label(path): f"this CPU cannot run {path} kernels (its best are {supported[-1]})"
               for path in kernels if path not in supported}  # fmt: skip
    if torch.cuda.is_available():
        processes["cuda"] = [(f"GPU · {torch.cuda.get_device_name()}", "cuda", "float32")]
    else:
        skipped["GPU"] = "no CUDA GPU here"
    runs, used = _train_in_processes(data, processes, train_args, timeout_s)
    return HardwareComparison(runs=runs, kernels=used, skipped=skipped)


def _kernel_label(path: str) -> str:
    return f"CPU · {path if path == 'default' else path.upper()} kernels"


@functools.cache
def cpu_kernel_paths() -> tuple[str, ...]:
    """The kernel paths this CPU can run, plainest first: every path up to the one torch picks by itself.

    Asked of a fresh process with `ATEN_CPU_CAPABILITY` unset: this process may have been started
    with it forced (to "default", say), and forcing a path the CPU lacks would crash torch.
    """
    environment = {name: value for name, value in os.environ.items() if name != "ATEN_CPU_CAPABILITY"}
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    best = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True,
                          timeout=120).stdout.strip().lower()  # fmt: skip
    return KERNEL_PATHS[: KERNEL_PATHS.index(best) + 1] if best in KERNEL_PATHS else ("default",)


_CHILD = "import sys; from epochviz.hardware import _train_here; _train_here(sys.argv[1], sys.argv[2])"


def _train_in_processes(data: Dataset, processes: dict[str, list[tuple[str, str, str]]], train_args: dict,
                        timeout_s: float) -> tuple[dict[str, Run], dict[str, str]]:  # fmt: skip
    """Start one Python process per kernel path ("cuda": torch's own choice), all at once, each importing this same
    epochviz and training its (label, device, precision) jobs; stop them all if one fails or takes too long.
    Returns the runs by label, in `processes`' order, and the kernel path each process reported."""
    package_root = str(Path(__file__).resolve().parent.parent)
    environment = {name: value for name, value in os.environ.items() if name != "ATEN_CPU_CAPABILITY"}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    started = {}
    with tempfile.TemporaryDirectory(prefix="epochviz-hardware-") as folder:
        try:
            for path, jobs in processes.items():
                job, result = os.path.join(folder, f"{path}-job.pt"), os.path.join(folder, f"{path}-result.pt")
                torch.save({"data": data, "train_args": train_args, "jobs": jobs}, job)
                forced = {} if path == "cuda" else {"ATEN_CPU_CAPABILITY": path}
                started[path] = subprocess.Popen([sys.executable, "-c", _CHILD, job, result],
                                                 env={**environment, **forced}, stdout=subprocess.PIPE,
                                                 stderr=subprocess.PIPE, text=True)  # fmt: skip
            runs, used, deadline = {}, {}, time.monotonic() + timeout_s
            for path, process in started.items():
                _, errors = process.communicate(timeout=max(deadline - time.monotonic(), 0))
                if process.returncode != 0:
                    raise RuntimeError(f"the {path} runs failed in their own process:\n{errors[-2000:]}")
                saved = torch.load(os.path.join(folder, f"{path}-result.pt"), weights_only=False)  # our own file
                runs.update(saved["runs"])
                used.update(dict.fromkeys(saved["runs"], saved["kernel"]))
            return runs, used
        except subprocess.TimeoutExpired as error:
            raise TimeoutError(f"a run took longer than timeout_s={timeout_s:g} seconds; all were stopped.") from error
        finally:
            for process in started.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()


def _train_here(job: str, result: str) -> None:
    """In a child process: train each job in the file `job`; save the runs, and the kernels torch used, to `result`.

    A one-epoch run first loads what torch loads on first use, so the clock of the runs kept
    measures training, not imports."""
    settings = torch.load(job, weights_only=False)  # written by the parent process, in its own folder
    runs = {}
    for label, device, precision in settings["jobs"]:
        train(settings["data"], **{**settings["train_args"], "epochs": 1, "device": device, "precision": precision})
        run = train(settings["data"], **settings["train_args"], device=device, precision=precision)
        record = run.first(run.completed_epochs)  # the whole record, without the loop's state: that stays here
        record.cannot_resume_because = "it trained in another process (compare_hardware); train it again to go on"
        runs[label] = record
    kernel = "CUDA" if settings["jobs"][0][1] == "cuda" else torch.backends.cpu.get_cpu_capability()
    torch.save({"runs": runs, "kernel": kernel}, result)
