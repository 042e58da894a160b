"""Reset between folds or not, side by side: how honest are the validation scores of cross-validation?"""

from __future__ import annotations

import plotly.graph_objects as go

from .. import plots
from ..crossval import CrossValidation, cross_validate
from ..data import digits
from . import controls as make
from .base import Explorer, Request


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
