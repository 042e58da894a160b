"""Batch size against a device's memory: what a step holds, what fits, and gradient accumulation as the way out."""

from __future__ import annotations

import ipywidgets as widgets
import plotly.graph_objects as go

from .. import checks, plots
from ..data import load
from ..memory import (
    OutOfMemoryError,
    check_accumulate,
    check_fits,
    footprint,
    max_batch_size,
    micro_batch_size,
)
from ..step_memory import Footprint
from . import controls as make
from .base import Explorer, Request


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
