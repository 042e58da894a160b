"""epochviz benchmarks: `make bench`, or `python benchmarks/run.py [--quick] [--only NAME ...]`.

The machines we run on are shared and noisy, so every figure that matters is a ratio of two
things measured side by side in the same process: each repeat times every contender once, in
an order that rotates from repeat to repeat, after one warm-up call of each that is thrown
away. Tables give the median of the per-repeat ratios; absolute times (medians) are there for
scale only. A full run of all sections writes benchmarks/results.md; `--quick` is a smoke run that prints.

Each section is a function registered with `@section(name)` that takes `quick` and returns
Markdown. To add one (the explorer, the notebooks), write such a function below the others.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime
import json
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import epochviz as ev
from epochviz.batched import train_many
from epochviz.policies import RESETS

RESULTS = Path(__file__).with_name("results.md")
THREADS = 1  # one torch thread: the loops compared are Python-bound, and a second core only adds noise
SECTIONS: dict[str, Callable[[bool], str]] = {}


def section(name: str) -> Callable:
    """Register a benchmark section: a function (quick: bool) -> Markdown, run in registration order."""

    def register(function: Callable[[bool], str]) -> Callable[[bool], str]:
        SECTIONS[name] = function
        return function

    return register


def side_by_side(contenders: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each contender per repeat: one discarded warm-up each, then interleaved, rotating repeats."""
    for run in contenders.values():
        run()
    names, seconds = list(contenders), {name: [] for name in contenders}
    for repeat in range(repeats):
        for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
            started = time.perf_counter()
            contenders[name]()
            seconds[name].append(time.perf_counter() - started)
    return seconds


def ratio(seconds: dict[str, list[float]], slower: str, faster: str) -> float:
    """Median over repeats of slower/faster, each pair timed in the same repeat."""
    return statistics.median(a / b for a, b in zip(seconds[slower], seconds[faster], strict=True))


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows])


def verdict(met: bool) -> str:
    return "met" if met else "**missed**"


# --- 1. loop overhead ------------------------------------------------------------------------------------------


def hand_loop(x: torch.Tensor, y: torch.Tensor, batch_size: int, epochs: int) -> None:
    """The minimal PyTorch loop: randperm, index slicing, forward, loss, backward, step. Records nothing."""
    model = ev.mlp(2, 2, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(epochs):
        for batch in torch.randperm(len(x)).split(batch_size):
            loss = F.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def data_loader_loop(x: torch.Tensor, y: torch.Tensor, batch_size: int, epochs: int) -> None:
    """The same loop fed by torch's DataLoader over a TensorDataset, as most tutorials write it."""
    model = ev.mlp(2, 2, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
    for _ in range(epochs):
        for features, targets in loader:
            loss = F.cross_entropy(model(features), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


@section("loop")
def loop_overhead(quick: bool) -> str:
    steps_wanted, repeats = (128, 2) if quick else (512, 7)
    # the targets' setting (1 024 samples), then batch 256 again with 40 steps per epoch instead of 4
    cases = [(1024, 8), (1024, 32), (1024, 256), (10_240, 256)]
    rows, targets = [], []
    for samples, batch_size in cases:
        data = ev.moons(n=samples)
        steps_per_epoch = -(-len(data) // batch_size)
        epochs = max(1, steps_wanted // steps_per_epoch)
        steps = epochs * steps_per_epoch
        seconds = side_by_side(
            {
                "epochviz": lambda d=data, b=batch_size, e=epochs: ev.train(d, batch_size=b, epochs=e, lr=0.1,
                                                                            val_fraction=0, device="cpu"),
                "hand": lambda d=data, b=batch_size, e=epochs: hand_loop(d.x, d.y, b, e),
                "DataLoader": lambda d=data, b=batch_size, e=epochs: data_loader_loop(d.x, d.y, b, e),
            },
            repeats,
        )  # fmt: skip
        per_step = {name: statistics.median(values) / steps * 1e6 for name, values in seconds.items()}
        over_hand, loader_over = ratio(seconds, "epochviz", "hand"), ratio(seconds, "DataLoader", "epochviz")
        rows.append([f"{samples:,}", batch_size, steps_per_epoch, epochs,
                     *(f"{per_step[n]:.0f}" for n in ("epochviz", "hand", "DataLoader")),
                     f"{over_hand:.2f}×", f"{loader_over:.2f}×"])  # fmt: skip
        if samples != 1024:
            continue
        targets.append(
            [f"batch {batch_size}: epochviz ≤ 1.10× hand loop", f"{over_hand:.2f}×", verdict(over_hand <= 1.10)]
        )
        if batch_size in (32, 256):
            wanted = 1.5 if batch_size == 32 else 3.0
            targets.append([f"batch {batch_size}: DataLoader ≥ {wanted}× epochviz", f"{loader_over:.2f}×",
                            verdict(loader_over >= wanted)])  # fmt: skip
    return "\n\n".join([
        f"moons (val_fraction=0), `ev.mlp(2, 2, seed=0)`, SGD lr 0.1, {THREADS} torch thread; each contender "
        f"builds its model, then trains {steps_wanted} steps' worth of epochs. Median of {repeats} interleaved "
        "repeats after a warm-up. The targets are set on 1 024 samples; the last row repeats batch 256 on "
        "10 240 samples.",
        table(["samples", "batch", "steps per epoch", "epochs", "epochviz µs/step", "hand µs/step",
               "DataLoader µs/step", "epochviz / hand", "DataLoader / epochviz"], rows),
        table(["target", "measured", ""], targets),
        "What epochviz pays beyond the hand loop is the record of every epoch: its weights at the end (its "
        "start is the previous end unless a reset moved the weights), its accuracy, its losses copied to the "
        "host once. At batch 256 on 1 024 samples an epoch is 4 steps, so that cost is shared by 4 steps; with "
        "40 steps per epoch (last row) it all but vanishes. Where the time goes: `python benchmarks/run.py "
        "--profile 256` (cProfile of one `train` call).",
    ])  # fmt: skip


# --- 2. batched multi-run ----------------------------------------------------------------------------------------


@section("batched")
def batched(quick: bool) -> str:
    data = ev.moons()
    epochs, repeats = (5, 2) if quick else (20, 5)
    cases = {
        len(RESETS): [{"reset": reset} for reset in RESETS],
        8: [{"seed": seed} for seed in range(8)],
    }
    rows, targets = [], []
    for models, variants in cases.items():
        seconds = side_by_side(
            {
                "train_many": lambda v=variants: train_many(data, v, epochs=epochs, device="cpu"),
                "sequential": lambda v=variants: [ev.train(data, epochs=epochs, device="cpu", **one) for one in v],
            },
            repeats,
        )
        speedup = ratio(seconds, "sequential", "train_many")
        what = ", ".join(sorted({key for variant in variants for key in variant}))
        milliseconds = [f"{statistics.median(seconds[name]) * 1e3:.0f}" for name in ("train_many", "sequential")]
        rows.append([models, what, *milliseconds, f"{speedup:.2f}×"])
        if models == 8:
            targets.append(
                ["K = 8: train_many ≥ 6× faster than K train calls", f"{speedup:.2f}×", verdict(speedup >= 6)]
            )
    return "\n\n".join([
        f"moons (400 samples), default MLP and settings, {epochs} epochs; K models in one `train_many` call vs "
        f"K `train` calls one after the other. Median of {repeats} interleaved repeats after a warm-up.",
        table(["K", "differing in", "train_many ms", "K × train ms", "speedup"], rows),
        table(["target", "measured", ""], targets),
        "Designs measured for `train_many` (a scratch script: K = 8 seeds, 20 epochs, the training steps alone "
        "without recording, interleaved medians): autograd on stacked weights (`torch.func.stack_module_state`, "
        "one `baddbmm` per layer) with torch's optimizer over the stacks, 6.4–7.3× K `train` calls (the chosen "
        "design); the same with one optimizer state per model (foreach over K × 6 tensors) 6.2× with SGD but "
        "2.9× with Adam; the models' own parameters stacked with `torch.stack` at every step 3.8×; "
        "`vmap(functional_call)` with autograd 3.1×; `vmap(grad(...))` 2.3×. The hand-written backward pass this "
        "replaced measured 5.1–6.8× in this section, interleaved on the same machine with the chosen design "
        "(4.4–5.4×): autograd's backward and torch.optim's per-step bookkeeping cost more than six hand-written "
        "matrix products. Models that differ in optimizer, learning rate or whether their reset clears the "
        "optimizer need one optimizer each (K = 4 resets: two), hence the lower speedup there.",
    ])  # fmt: skip


# --- 3. scale: time and memory as the data and the epochs grow ---------------------------------------------------


SCALE_SETTINGS = {"batch_size": 256, "device": "cpu"}  # plus epochs; validation on the default 20 %


def memory_of(samples: int, epochs: int) -> dict:
    """Record size and memory of one `train` call, measured in this (fresh, child) process."""
    data = ev.moons(n=samples)
    ev.train(data, **SCALE_SETTINGS, epochs=1)  # first-call imports and caches are not the run's memory
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    run = ev.train(data, **SCALE_SETTINGS, epochs=epochs)
    python_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    weights = 2 * run.completed_epochs * run.params(1, "start").nbytes  # at the start and end of every epoch
    return {
        "steps": len(run.steps),
        "steps_table": int(run.steps.memory_usage(deep=True).sum()),
        "per_epoch": int(run.epochs.memory_usage(deep=True).sum() + weights),
        "python_peak": python_peak,
        "rss_growth_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before,
        "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,  # Linux reports KiB
    }


def memory_in_child(samples: int, epochs: int) -> dict:
    """`memory_of` in a fresh process, so that its maximum resident memory belongs to this run alone."""
    command = [sys.executable, __file__, "--memory-of", json.dumps([samples, epochs])]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


@section("scale")
def scale(quick: bool) -> str:
    sizes = [(1_000, 3), (10_000, 3), (100_000, 3), (10_000, 12), (10_000, 48)]
    if quick:
        sizes = [(1_000, 3), (10_000, 3), (1_000, 12)]
    repeats = 2 if quick else 3
    datasets = {samples: ev.moons(n=samples) for samples, _ in sizes}
    seconds = side_by_side({size: lambda n=size[0], e=size[1]: ev.train(datasets[n], **SCALE_SETTINGS, epochs=e)
                            for size in sizes}, repeats)  # fmt: skip
    memory = {size: memory_in_child(*size) for size in sizes}
    rows = []
    for size in sizes:
        kept, (samples, epochs) = memory[size], size
        per_step = [t / kept["steps"] for t in seconds[size]]
        relative = statistics.median(
            mine / (first / memory[sizes[0]]["steps"]) for mine, first in zip(per_step, seconds[sizes[0]], strict=True)
        )
        rows.append([f"{samples:,}", epochs, f"{kept['steps']:,}", f"{statistics.median(per_step) * 1e6:.0f}",
                     f"{relative:.2f}×", f"{kept['steps_table'] / kept['steps']:.0f}",
                     f"{kept['per_epoch'] / epochs:,.0f}", f"{(kept['steps_table'] + kept['per_epoch']) / 1024:,.0f}",
                     f"{samples * epochs * 8 / 1024:,.0f}", f"{kept['python_peak'] / 1024:,.0f}",
                     f"{kept['rss_kib'] / 1024:.0f}", f"{kept['rss_growth_kib'] / 1024:.1f}"])  # fmt: skip
    return "\n\n".join([
        f"moons, batch 256, default MLP, validation on 20 %. Times: all rows interleaved in one process, "
        f"median of {repeats} repeats after a warm-up. The *record* is what the Run keeps: its steps table, "
        "and per epoch a row of the epochs table plus the weights at its start and end. Memory is measured in "
        "a fresh process per row, after a warm-up call: *Python peak* is tracemalloc's peak during `train` "
        "(NumPy and Python objects; torch tensors are not traced); *max RSS* is the process's peak resident "
        "memory (torch itself included), *RSS growth* how far this run raised it above the 1-epoch warm-up.",
        table(["samples", "epochs", "steps", "µs/step", "µs/step vs first row", "record B/step", "record B/epoch",
               "record KiB", "per-sample record KiB", "Python peak KiB", "max RSS MiB", "RSS growth MiB"], rows),
        "What to read: the record's bytes per step and per epoch stay flat as the samples and the epochs "
        "grow, so the record is O(steps + epochs), never O(samples × epochs): compare *per-sample record*, "
        "what keeping one float64 per sample per epoch would take. Beyond the record itself, memory during "
        "training grows with the samples (the data, each epoch's order, the validation pass), not the epochs.",
    ])  # fmt: skip


# --- 4. the explorer, Python side ----------------------------------------------------------------------------------


@section("explorer")
def explorer_latency(quick: bool) -> str:
    from epochviz.widgets import explorer

    repeats = 5 if quick else 15
    widget = explorer("moons", epochs=20)
    epochs, seed = widget.controls["epochs"], widget.controls["seed"]
    view, retrain = [], []
    for repeat in range(repeats):
        started = time.perf_counter()
        epochs.value = 10 if repeat % 2 == 0 else 20  # a run already trained: only the view changes
        view.append(time.perf_counter() - started)
        started = time.perf_counter()
        seed.value += 1  # never trained before: a real training of 20 epochs, drawn as it grows
        widget.wait()
        retrain.append(time.perf_counter() - started)
        epochs.value = 20
        widget.wait()
    rows = [
        ["view change (epochs 20 ↔ 10, from the cache)", f"{statistics.median(view) * 1e3:.1f}", "no"],
        ["retrain (new seed: 20 epochs of moons, batch 32)", f"{statistics.median(retrain) * 1e3:.0f}", "yes"],
    ]
    return "\n\n".join([
        f"`ev.explorer('moons', epochs=20)` driven from Python, median of {repeats} changes: the time from setting "
        "a control to the figure widget holding the new traces (no browser; see benchmarks/browser.md for the "
        f"round trip in Chromium). Torch threads: {torch.get_num_threads()}.",
        table(["change", "ms (Python side)", "trains?"], rows),
    ])  # fmt: skip


# --- 5. the notebooks ------------------------------------------------------------------------------------------------


@section("notebooks")
def notebooks(quick: bool) -> str:
    root = Path(__file__).resolve().parent.parent
    command = [sys.executable, "-m", "pytest", "notebooks", "--nbval", "--nbval-current-env", "-q",
               "--nbval-sanitize-with", "tests/nbval-sanitize.cfg", "-p", "no:cacheprovider"]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(command, cwd=root, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    closing = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "(no output)"
    return "\n\n".join([
        "The whole strict nbval run over notebooks/ (every notebook executed top to bottom in a fresh kernel), "
        "in a child process, once.",
        table(["notebooks", "wall time s", "pytest says"], [[len(list((root / "notebooks").glob("*.ipynb"))),
                                                              f"{seconds:.0f}", closing]]),
    ])  # fmt: skip


# --- 6. ev.watch(): a learner's own loop, watched ------------------------------------------------------------------


def digits_cnn() -> torch.nn.Module:
    """A small CNN for the 8×8 digits: what a learner's first convolutional loop trains."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Unflatten(1, (1, 8, 8)), torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 10),
    )  # fmt: skip


def learner_loop(make_model: Callable[[], torch.nn.Module], data, epochs: int, watched: bool) -> None:
    """An ordinary loop (model once, DataLoader, zero_grad, backward, step), under ev.watch() or not."""
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loader = DataLoader(TensorDataset(data.x, data.y), batch_size=32, shuffle=True)
    with ev.watch(live=False, quiet=True) if watched else contextlib.nullcontext():
        for _ in range(epochs):
            for features, targets in loader:
                optimizer.zero_grad()
                F.cross_entropy(model(features), targets).backward()
                optimizer.step()


@section("watch")
def watch_overhead(quick: bool) -> str:
    repeats = 2 if quick else 7
    cases = {
        "tiny MLP on moons (1 024 samples)": (lambda: ev.mlp(2, 2, seed=0), ev.moons(n=1024), 2 if quick else 8),
        "small CNN on digits (1 797 samples)": (digits_cnn, ev.digits(), 1 if quick else 4),
    }
    rows, targets = [], []
    for name, (make_model, data, epochs) in cases.items():
        seconds = side_by_side(
            {
                "watched": lambda m=make_model, d=data, e=epochs: learner_loop(m, d, e, watched=True),
                "plain": lambda m=make_model, d=data, e=epochs: learner_loop(m, d, e, watched=False),
            },
            repeats,
        )
        steps = epochs * -(-len(data) // 32)
        per_step = {label: statistics.median(values) / steps * 1e6 for label, values in seconds.items()}
        over = ratio(seconds, "watched", "plain")
        rows.append([name, epochs, steps, f"{per_step['plain']:.0f}", f"{per_step['watched']:.0f}", f"{over:.2f}×"])
        targets.append([f"{name}: watched ≤ 1.10× plain", f"{over:.2f}×", verdict(over <= 1.10)])
    return "\n\n".join([
        f"The same learner's loop (DataLoader, batch 32, SGD with momentum, {THREADS} torch thread) with and "
        f"without `ev.watch(live=False)`. Median of {repeats} interleaved repeats after a warm-up.",
        table(["loop", "epochs", "steps", "plain µs/step", "watched µs/step", "watched / plain"], rows),
        table(["target", "measured", ""], targets),
        "What watching pays per step: the hooks of every module call (two Python calls each), a copy of the "
        "weights and a look at the optimizer's state after each step, and the loss kept. The live figure "
        "(`live=True`) adds a redraw at most every 0.1 s.",
    ])  # fmt: skip


# --- the report ----------------------------------------------------------------------------------------------------


def machine(quick: bool) -> str:
    cpu = "unknown"
    if Path("/proc/cpuinfo").exists():
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]  # fmt: skip
        cpu = names[0] if names else cpu
    return "\n".join([
        f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- CPU: {cpu}, {os.cpu_count()} cores; torch threads used: {torch.get_num_threads()}",
        f"- torch {torch.__version__}, Python {platform.python_version()}, epochviz {ev.__version__}",
        f"- mode: {'quick (smoke run)' if quick else 'full'}",
    ])  # fmt: skip


def profile(batch_size: int) -> None:
    """Print where one `train` call spends its time (cProfile, by own time), for the loop-overhead setting."""
    data = ev.moons(n=1024)
    epochs = max(1, 512 // -(-len(data) // batch_size))
    ev.train(data, batch_size=batch_size, epochs=epochs, val_fraction=0, device="cpu")
    profiler = cProfile.Profile()
    profiler.runcall(ev.train, data, batch_size=batch_size, epochs=epochs, val_fraction=0, device="cpu")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="a fast smoke run: fewer repeats, smaller sizes; prints only"
    )
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), help="run only these sections")
    parser.add_argument(
        "--output", type=Path, help=f"write the report here (default: {RESULTS} after a full run of all sections)"
    )
    parser.add_argument("--profile", type=int, metavar="BATCH_SIZE", help="print a cProfile of train and exit")
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)  # a child process of the scale section
    arguments = parser.parse_args()
    torch.set_num_threads(THREADS)
    if arguments.memory_of:
        print(json.dumps(memory_of(*json.loads(arguments.memory_of))))
        return
    if arguments.profile:
        profile(arguments.profile)
        return
    parts = ["# epochviz benchmarks", machine(arguments.quick)]
    for name in arguments.only or SECTIONS:
        started = time.perf_counter()
        body = SECTIONS[name](arguments.quick)
        parts.append(f"## {name}\n\n{body}\n\n_(section took {time.perf_counter() - started:.0f} s)_")
        print(parts[-1], "\n", flush=True)
    output = arguments.output or (None if arguments.quick or arguments.only else RESULTS)
    if output is not None:
        output.write_text("\n\n".join(parts) + "\n")
        print(f"written to {output}")


if __name__ == "__main__":
    main()
