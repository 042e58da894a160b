"""Batch size against a device's memory: what a step holds, what fits, and gradient accumulation as the way out."""

from __future__ import annotations

import ipywidgets as widgets
import plotly.graph_objects as go

from .. import checks, plots
from ..data import dataset
from ..memory import check_accumulate, footprint, largest_fitting, micro_batch_size, out_of_memory
from ..step_memory import Footprint
from . import controls as make
from .base import Explorer, Request, weakly


class MemoryExplorer(Explorer):
    """Batch size against a simulated device's memory, with gradient accumulation as the way out."""

    SIZES = tuple(2**k for k in range(4, 17))  # the batch sizes the slider offers
    BUDGET_EXPONENTS = (-2, 2)  # the memory slider spans 10^-2 … 10^2 MB
    MAX_ACCUMULATE = 64  # micro-batches the slider offers, never more than the batch has samples
    BARS = 7  # powers of two drawn around the largest batch that fits: about half fit, half do not
    MEASURED = tuple(2**k for k in range(17))  # batch sizes a bar may show, measured once per optimizer

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
        self.data = dataset(data)
        # observed before the explorer's own observers, so a smaller batch lowers accumulate before anything draws
        controls["batch_size"].observe(weakly(self._limit_accumulate), names="value")
        super().__init__(controls, height=440)
        self.draw_now()

    def request(self) -> Request:
        values = {name: control.value for name, control in self.controls.items()}
        return Request(key=values["optimizer"], values=values)

    def _limit_accumulate(self, change: dict) -> None:
        """Offer only what `train` accepts: at most one micro-batch per sample (the slider lowers its value to fit)."""
        self.controls["accumulate"].max = min(self.MAX_ACCUMULATE, change["new"])

    def covers(self, result: dict[int, Footprint], request: Request) -> bool:
        return self._micro_batch(request) in result

    def compute(self, request: Request, cached: dict[int, Footprint] | None, partial) -> dict[int, Footprint]:
        """Footprints by batch size: every size a bar may show, then each micro-batch the controls ask for."""
        optimizer = request.values["optimizer"]
        if cached is None:
            measured = {size: footprint("mlp", self.data, size, optimizer) for size in self.MEASURED}
        else:
            measured = dict(cached)  # a copy: the cached dict may be on screen while this one grows
        micro = self._micro_batch(request)
        if micro not in measured:
            measured[micro] = footprint("mlp", self.data, micro, optimizer)
        return measured

    def render(self, request: Request, result: dict[int, Footprint]) -> go.Figure:
        values = request.values
        largest = largest_fitting(result[1], result[2], values["budget_mb"])
        top = len(self.MEASURED) - 1  # the largest measured size is 2**top
        middle = min(max(largest.bit_length() - 1, self.BARS // 2), top - self.BARS // 2)
        sizes = {2**k for k in range(middle - self.BARS // 2, middle + self.BARS // 2 + 1)}
        sizes |= {values["batch_size"], self._micro_batch(request)}  # the batch, and what is in memory at once
        return plots.memory_bars([result[size] for size in sorted(sizes)], budget_mb=values["budget_mb"])

    def describe(self, request: Request, result: dict[int, Footprint]) -> tuple[str, str]:
        values = request.values
        micro = self._micro_batch(request)
        if result[micro].total_mb > values["budget_mb"]:
            largest = largest_fitting(result[1], result[2], values["budget_mb"])
            return "<b>out of memory</b>", str(out_of_memory(result[micro], values["batch_size"],
                                                              values["budget_mb"], largest))  # fmt: skip
        pieces = f"{values['accumulate']} micro-batches of ≤ {micro}" if values["accumulate"] > 1 else "the whole batch"
        return (f"fits: {pieces} at a time · the epoch is unchanged: every sample once, one step per "
                f"{values['batch_size']} samples"), ""  # fmt: skip

    def announce(self, request: Request) -> tuple[str, str]:
        return "<i>measuring…</i>", ""

    @staticmethod
    def _micro_batch(request: Request) -> int:
        return micro_batch_size(request.values["batch_size"], request.values["accumulate"])
