"""Explorers for single ideas, each a few controls and one figure, built on the same pieces as the main one."""

from __future__ import annotations

import ipywidgets as widgets
import plotly.graph_objects as go

from .. import checks, plots
from ..crossval import CrossValidation, cross_validate
from ..data import Dataset, digits, load
from ..memory import (
    Footprint,
    OutOfMemoryError,
    check_accumulate,
    check_fits,
    footprint,
    max_batch_size,
    micro_batch_size,
)
from ..run import Run
from ..train import train
from . import controls as make
from .base import Explorer, Request
from .explorer import RunExplorer


def reset_explorer(data: str | Dataset = "moons", **defaults) -> RunExplorer:
    """Every reset policy side by side: which one keeps improving across epochs?"""
    return RunExplorer(data, compare=True, show=("epochs", "lr", "optimizer", "shuffle", "x"),
                       buttons=("more", "restart"), **defaults)  # fmt: skip


def batch_size_explorer(data: str | Dataset = "moons", **defaults) -> RunExplorer:
    """Change the batch size: the steps per epoch change, the samples per epoch do not.

    Earlier batch sizes stay on the figure as ghosts; with the x axis in samples, every
    curve's epochs end at the same places.
    """
    return RunExplorer(data, **{"x": "samples", **defaults}, show=("batch_size", "epochs", "x"),
                       buttons=("clear",))  # fmt: skip


class MemoryExplorer(Explorer):
    """Batch size against a simulated device's memory, with gradient accumulation as the way out."""

    SIZES = tuple(2**k for k in range(4, 17))  # the batch sizes the slider offers
    BUDGET_EXPONENTS = (-2, 2)  # the memory slider spans 10^-2 … 10^2 MB
    MAX_ACCUMULATE = 64  # micro-batches the slider offers, never more than the batch has samples
    BARS = 7  # powers of two drawn around the largest batch that fits: about half fit, half do not

    def __init__(self, data: str = "digits", *, batch_size: int = 4096, budget_mb: float = 1.0, accumulate: int = 1,
                 optimizer: str = "sgd") -> None:  # fmt: skip
        if checks.whole("batch_size", batch_size, minimum=1) not in self.SIZES:
            raise ValueError(f"batch_size must be a power of two from {self.SIZES[0]} to {self.SIZES[-1]:,}; "
                             f"got {batch_size!r}.")  # fmt: skip
        check_accumulate(batch_size, accumulate)
        low, high = self.BUDGET_EXPONENTS
        controls = {
            "batch_size": widgets.SelectionSlider(options=list(self.SIZES), value=batch_size, description="batch size",
                                                  continuous_update=False),
            "budget_mb": widgets.FloatLogSlider(value=make.in_log_range("budget_mb", budget_mb, low, high), base=10,
                                                min=low, max=high, step=0.125, description="device memory (MB)",
                                                readout_format=".3g", style={"description_width": "initial"},
                                                continuous_update=False),
            "accumulate": make.whole_slider("accumulate", accumulate, 1, min(self.MAX_ACCUMULATE, batch_size),
                                            description="accumulate",
                                            tooltip="split each batch into this many micro-batches"),
            "optimizer": make.optimizer_dropdown(optimizer),
        }  # fmt: skip
        self.data = load(data)
        # observed before the explorer's own observers, so a smaller batch lowers accumulate before anything draws
        controls["batch_size"].observe(self._limit_accumulate, names="value")
        super().__init__(controls, height=440)
        self.draw_now()

    def request(self) -> Request:
        values = {name: control.value for name, control in self.controls.items()}
        return Request(key=values["optimizer"], values=values)

    def _limit_accumulate(self, change: dict) -> None:
        """Offer only what `train` accepts: at most one micro-batch per sample (the slider lowers its value to fit)."""
        self.controls["accumulate"].max = min(self.MAX_ACCUMULATE, change["new"])

    def compute(self, request: Request, cached, partial) -> dict[int, Footprint]:
        optimizer = request.values["optimizer"]
        return {2**k: footprint("mlp", self.data, 2**k, optimizer) for k in range(17)}

    def render(self, request: Request, result: dict[int, Footprint]) -> go.Figure:
        values = request.values
        largest = max_batch_size("mlp", self.data, values["budget_mb"], values["optimizer"])
        middle = min(max(largest.bit_length() - 1, self.BARS // 2), 16 - self.BARS // 2)
        sizes = {2**k for k in range(middle - self.BARS // 2, middle + self.BARS // 2 + 1)}
        micro = micro_batch_size(values["batch_size"], values["accumulate"])  # what is in memory at once
        sizes |= {values["batch_size"], micro}
        shown = [result.get(size) or footprint("mlp", self.data, size, values["optimizer"]) for size in sorted(sizes)]
        return plots.memory_bars(shown, budget_mb=values["budget_mb"])

    def describe(self, request: Request, result) -> tuple[str, str]:
        values = request.values
        try:
            check_fits("mlp", self.data, values["batch_size"], values["accumulate"], values["optimizer"],
                       values["budget_mb"])  # fmt: skip
        except OutOfMemoryError as error:
            return "<b>out of memory</b>", str(error)
        micro = micro_batch_size(values["batch_size"], values["accumulate"])
        pieces = f"{values['accumulate']} micro-batches of ≤ {micro}" if values["accumulate"] > 1 else "the whole batch"
        return (f"fits: {pieces} at a time · the epoch is unchanged: every sample once, one step per "
                f"{values['batch_size']} samples"), ""  # fmt: skip


class CrossValidationExplorer(Explorer):
    """Reset between folds or not: how honest are the validation scores?"""

    K = (2, 10)  # the folds slider's range
    EPOCHS = (2, 60)  # the epochs slider's range

    def __init__(self, *, k: int = 5, epochs: int = 20, n: int = 300) -> None:
        self.data = digits(n=n)
        controls = {
            "k": make.whole_slider("k", k, *self.K, description="folds (k)"),
            "epochs": make.whole_slider("epochs", epochs, *self.EPOCHS, description="epochs"),
        }
        super().__init__(controls, height=460)
        self.draw_now()

    def compute(self, request: Request, cached, partial) -> dict[str, CrossValidation]:
        settings = {"k": request.values["k"], "epochs": request.values["epochs"], "batch_size": 16, "lr": 0.2}
        return {
            "reset per fold": cross_validate(self.data, reset_between_folds=True, **settings),
            "no reset (leaks)": cross_validate(self.data, reset_between_folds=False, **settings),
        }

    def render(self, request: Request, result: dict[str, CrossValidation]) -> go.Figure:
        return plots.cross_validation(result)

    def describe(self, request: Request, result: dict[str, CrossValidation]) -> tuple[str, str]:
        parts = [
            f"{label}: validation {cv.folds.val_loss.mean():.3f} vs test {cv.folds.test_loss.mean():.3f}"
            for label, cv in result.items()
        ]
        return " · ".join(parts), ""


class LandscapeExplorer(Explorer):
    """Follow training across the loss surface of a two-parameter model; the epochs slider walks the path."""

    MAX_EPOCHS = 30

    def __init__(self, *, epochs: int = 10, lr: float = 0.1, batch_size: int = 16, reset: str = "never") -> None:
        self.data = load("line")
        controls = {
            "epochs": make.epochs_slider(epochs, maximum=self.MAX_EPOCHS, limit=self.MAX_EPOCHS),
            "lr": make.learning_rate_slider(lr),
            "batch_size": make.batch_size_slider(len(self.data), batch_size),
            "reset": make.reset_buttons(reset),
        }
        super().__init__(controls, height=560, width=760)
        self.draw_now()

    def request(self) -> Request:
        values = {name: control.value for name, control in self.controls.items()}
        return Request(key=(values["lr"], values["batch_size"], values["reset"]), values=values)

    def compute(self, request: Request, cached, partial) -> Run:
        values = request.values
        return train(self.data, model="linear", epochs=self.MAX_EPOCHS, lr=values["lr"],
                     batch_size=values["batch_size"], reset=values["reset"], val_fraction=0, track_weights=True,
                     on_epoch=partial)  # fmt: skip

    def covers(self, result: Run, request: Request) -> bool:
        return result.completed_epochs >= request.values["epochs"] or result.diverged

    def render(self, request: Request, result: Run) -> go.Figure:
        return plots.loss_landscape(result.first(request.values["epochs"]))

    def describe(self, request: Request, result: Run) -> tuple[str, str]:
        shown = result.first(request.values["epochs"])
        if shown.diverged:
            return "", f"Diverged in epoch {shown.diverged_at[0]}: the steps overshoot the valley and grow."
        loss = shown.epochs.train_loss.iloc[-1]
        return f"after {shown.completed_epochs} epochs: training loss {loss:.3f}", ""
