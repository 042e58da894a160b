"""Training as a path across the loss surface of a two-parameter model, walked epoch by epoch."""

from __future__ import annotations

import plotly.graph_objects as go

from .. import plots
from ..data import dataset
from ..run import Run
from ..train import train
from . import controls as make
from .base import Explorer, Request


class LandscapeExplorer(Explorer):
    """Follow training across the loss surface of a two-parameter model; the epochs slider walks the path."""

    MAX_EPOCHS = 30

    def __init__(self, *, epochs: int = 10, lr: float = 0.1, batch_size: int = 16, reset: str = "never") -> None:
        self.data = dataset("line")
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
