"""`ev.watch()`: your own PyTorch loop, drawn live, and told whether it resets anything between epochs.

    import epochviz as ev
    with ev.watch() as w:     # in a notebook, a live figure appears under the cell
        ...                   # your loop, unchanged
    w.findings                # what was found; [] for a correct loop
    w.run.epochs              # one row per epoch

The watching itself (hooks, checks, the record) is `epochviz.watching.Watcher`; this adds what a
learner sees: in a notebook (JupyterLab, Notebook 7, Voilà) a FigureWidget redrawn at most every
REDRAW_EVERY_S seconds while the loop runs, and everywhere a plain summary when the block ends.
"""

from __future__ import annotations

import plotly.graph_objects as go

from .. import checks
from ..plots.watched import watched_figure
from ..watching import Watcher
from . import front_end
from .base import _keep_for_new_views, sync_figure

HEIGHT = 420  # pixels: the live figure, fixed (a FigureWidget guesses wrong inside an output otherwise)
WIDTH = 860
LIVE_NOTE = (  # what a saved notebook shows where the live figure was (its static image follows it)
    '<div style="border:1px dashed #0072B2;padding:8px 12px;color:#0072B2;font-size:15px">'
    "▶ <b>ev.watch()</b>: the live figure of your loop appears here when this cell runs.</div>"
)


class watch(Watcher):  # lower case like torch.no_grad: it reads as what it does, `with ev.watch():`
    """Watch your own training loop: draw its loss live and say whether it resets anything between epochs.

    `live`: draw a live figure (default: yes inside a Jupyter kernel, no elsewhere). `quiet`: do not print
    the summary when the block ends. `ev.watch.CHECKS` lists every check with a one-line explanation.

    >>> import epochviz as ev
    >>> with ev.watch() as w:  # doctest: +SKIP
    ...     for epoch in range(5):
    ...         for x, y in loader:
    ...             optimizer.zero_grad()
    ...             loss_fn(model(x), y).backward()
    ...             optimizer.step()
    >>> w.findings  # doctest: +SKIP
    []

    What to notice: nothing in the loop changed. Epochs are passes over your DataLoader; the weights
    each step starts from are compared with where the step before left them, so a model built (or
    its initial weights loaded) inside the epoch loop is found at the first epoch it happens.
    """

    def __init__(self, *, live: bool | None = None, quiet: bool = False) -> None:
        live = _in_kernel() if live is None else checks.flag("live", live)
        self.quiet = checks.flag("quiet", quiet)
        self.live_figure = go.FigureWidget(layout={"height": HEIGHT, "width": WIDTH}) if live else None
        super().__init__(on_update=self._redraw if live else None)

    def __enter__(self) -> watch:
        super().__enter__()
        if self.live_figure is not None:
            from IPython.display import display

            self._redraw(self)
            display(_LiveView(self.live_figure))
        return self

    def __exit__(self, *error) -> None:
        super().__exit__(*error)
        if self.live_figure is not None:
            _keep_for_new_views(self.live_figure)
        if not self.quiet:
            print(self.summary())

    def figure(self, title: str | None = None) -> go.Figure:
        """A static copy of the figure: what the live one shows, to save or show again."""
        return watched_figure(self.run, self.findings, title=title)

    def _redraw(self, watcher: Watcher) -> None:
        sync_figure(self.live_figure, watched_figure(self.run, self.findings, title=verdict_title(watcher)))


def verdict_title(watcher: Watcher) -> str:
    """A figure's title that says what was found so far, in a few words."""
    serious = [f.check for f in watcher.findings if f.severity != "note"]
    if serious:
        return "found: " + ", ".join(dict.fromkeys(serious))
    return "nothing reset so far" if watcher.step_count else "waiting for the first optimizer step…"


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


class _LiveView:
    """The live figure in a notebook's output, with a note in its place where no kernel draws it."""

    def __init__(self, figure: go.FigureWidget) -> None:
        self.figure = figure

    def _repr_mimebundle_(self, **kwargs) -> dict:
        front_end.prepare()
        bundle = front_end.view_bundle(self.figure, **kwargs)
        bundle["text/plain"] = "ev.watch(): the live figure of your loop; run the cell to draw it."
        bundle["text/html"] = LIVE_NOTE
        return bundle
