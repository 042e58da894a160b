"""A learner's own loop with the classic mistakes one checkbox away, run under `ev.watch()`.

Tick a mistake and the loop of `epochviz.handwritten` trains again with it, watched: the curve
shows what the mistake does to training, and the findings say what `ev.watch()` saw and how to
fix it. Unticked, it is an ordinary correct loop and nothing is found.
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import plotly.graph_objects as go
import torch

from .. import checks
from ..data import Dataset, dataset
from ..handwritten import MISTAKES, handwritten_loop
from ..plots.watched import watched_figure
from ..watching import Watcher
from .base import Explorer, Request
from .watch import verdict_title


class LoopSwitchboard(Explorer):
    """A checkbox per mistake of `MISTAKES`; each setting trains `handwritten_loop` under a Watcher and draws it."""

    def __init__(self, data: Dataset | str = "moons", *, epochs: int = 10, mistakes: tuple[str, ...] = ()) -> None:
        unknown = set(mistakes) - set(MISTAKES)
        if isinstance(mistakes, str) or unknown:
            raise ValueError(f"mistakes must be a list of {', '.join(map(repr, MISTAKES))}; got {mistakes!r}.")
        self.data = dataset(data)
        self.epochs = checks.whole("epochs", epochs, minimum=1, maximum=100)
        controls = {
            name: widgets.Checkbox(value=name in mistakes, description=label, indent=False,
                                   layout=widgets.Layout(width="auto"))
            for name, label in MISTAKES.items()
        }  # fmt: skip
        super().__init__(controls, height=420)
        self.draw_now()

    def request(self) -> Request:
        values = {name: control.value for name, control in self.controls.items()}
        return Request(key=tuple(name for name, ticked in values.items() if ticked), values=values)

    def compute(self, request: Request, cached: Watcher | None, partial) -> Watcher:
        with torch.random.fork_rng(devices=[]), Watcher() as watcher:  # the loop seeds torch; the notebook's stays
            handwritten_loop(self.data, mistakes=request.key, epochs=self.epochs)
        return watcher

    def render(self, request: Request, result: Watcher) -> go.Figure:
        return watched_figure(result.run, result.findings, title=verdict_title(result))

    def describe(self, request: Request, result: Watcher) -> tuple[str, str]:
        first_line = html.escape(result.summary().splitlines()[0])
        serious = [found for found in result.findings if found.severity != "note"]
        listed = "".join(f"<li><b>{found.check}</b>: {html.escape(found.message)}</li>" for found in serious)
        return first_line, f"<ul style='margin:0;padding-left:1.2em'>{listed}</ul>" if listed else ""

    def announce(self, request: Request) -> tuple[str, str]:
        return "<i>training your loop, watched…</i>", ""

    def layout(self) -> widgets.Widget:
        boxes = widgets.VBox([widgets.HTML("<b>Mistakes in the loop:</b>"), *self.controls.values()],
                             layout=widgets.Layout(min_width="22em"))  # fmt: skip
        return widgets.VBox([widgets.HBox([boxes, self.figure]), self.status, self.message])


def loop_switchboard(data: Dataset | str = "moons", *, epochs: int = 10) -> LoopSwitchboard:
    """Tick a classic loop mistake and see what `ev.watch()` finds and what it does to the loss.

    >>> import epochviz as ev
    >>> ev.widgets.loop_switchboard()  # doctest: +SKIP
    """
    return LoopSwitchboard(data, epochs=epochs)
