"""What every explorer shares: controls → a cached computation → a figure updated in place.

An explorer turns the controls' values into a `Request`: a `key` naming what must be
computed (a training run, say) and the values that only change how it is shown. Results are
cached by key, so a change that only affects the view (fewer epochs, another x axis) redraws
at once. Anything else is computed on a background worker, and its partial results are drawn
as they come. Errors are shown inside the widget, never only in the log console
(ipywidgets#1971), and the widget stays usable.

The last setting always wins. The explorer remembers the request the controls asked for last
(`_wanted`); every draw, partial or final, from the cache or from the worker, and every error
message is for that request or is dropped, and a computation for any other key stops at its
next partial result. So no result that arrives late, from work begun for an earlier setting,
can overwrite what the controls say now.
"""

from __future__ import annotations

import html
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from . import front_end
from .worker import LatestWins

CACHE_SIZE = 32  # results kept per explorer (a few MB at most for these small runs)
DRAW_EVERY_S = 0.1  # while computing, redraw at most this often: the browser must not be flooded
PLACEHOLDER = (  # what a saved notebook or a static page shows where the live explorer would be
    '<div style="border:1px dashed #0072B2;padding:8px 12px;color:#0072B2;font-size:15px">'
    "▶ <b>{name}</b>: an interactive explorer appears here when this notebook runs "
    "(JupyterLab, or Voilà with <code>make present</code>).</div>"
)
# Explorers shown with `display(explorer(...))` and kept by nothing else stay alive (their sliders keep working) while
# they are among this many shown last; older ones are freed like any explorer nothing refers to.
SHOWN_KEPT = 8
_shown: deque = deque(maxlen=SHOWN_KEPT)


@dataclass(frozen=True)
class Request:
    key: Hashable  # what must be computed; equal keys share one cached result
    values: dict  # every control's value (the key's ingredients and the view's)


class Superseded(Exception):
    """Raised inside a computation that a newer request has made pointless."""


class Explorer:
    """Base of every explorer. Subclasses say how to compute, whether a result covers a request, and how to draw.

    Public: `controls` (name → widget), `figure` (the FigureWidget), `status`, `message`,
    `wait()` (block until nothing is computing), `close()`; displaying an explorer shows it all.

    Its callbacks hold it weakly: an explorer nothing refers to any more (a cell run again rebinds
    its name) is freed, its widgets closed, rather than kept by the widgets' own registry.
    """

    def __init__(self, controls: dict[str, widgets.Widget], *, height: int = 480, width: int | None = 860) -> None:
        self.controls = controls
        front_end.prepare()
        self.figure = go.FigureWidget(layout={"height": height, "width": width})
        self.status = widgets.HTML()
        self.status.add_class("epochviz-status")  # stable hooks for styling and for the browser tests
        self.message = widgets.HTML()
        self.progress = widgets.IntProgress(value=0, min=0, max=1, layout=widgets.Layout(width="12em"))
        self._cache: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.RLock()  # the cache, `_wanted` and the figure are shared with the worker
        self._wanted: Request | None = None  # what the controls asked for last: the only request drawn
        self._adjusting = False  # True while `adjust` moves other controls as part of one change
        self._last_draw = 0.0
        self._closed = False
        self._worker = LatestWins(weakly(self._work), on_error=weakly(self._show_error))
        for control in controls.values():
            control.observe(weakly(self._changed), names="value")
        # every widget this explorer made: closed by close(), or once the explorer is freed
        self._widgets: list = [*controls.values(), self.figure, self.status, self.message, self.progress]
        self._free = weakref.finalize(self, _close_all, self._widgets)
        self._free.atexit = False  # a kernel shutting down closes its comms itself

    # --- for subclasses ------------------------------------------------------------------------

    def request(self) -> Request:
        """The request the controls ask for now."""
        values = {name: control.value for name, control in self.controls.items()}
        return Request(key=tuple(sorted(values.items())), values=values)

    def compute(self, request: Request, cached: Any, partial: callable) -> Any:
        """Compute the result for `request` (extending `cached`, a result for the same key, if useful).

        Call `partial(result_so_far)` to have it drawn while you work; it raises Superseded when
        a newer request makes this one pointless.
        """
        raise NotImplementedError

    def covers(self, result: Any, request: Request) -> bool:
        """Whether `result` (cached for request.key) is enough to draw `request` without computing."""
        return True

    def adjust(self, change: dict) -> None:
        """Bring other controls in line with `change` before it is drawn (a new dataset, new batch sizes).

        What this changes is part of the same change: it triggers no refresh of its own, and an
        error it raises is shown in the widget.
        """

    def before_draw(self, request: Request, result: Any) -> None:
        """Called before every draw, partial ones included (keep track of what is on screen here)."""

    def render(self, request: Request, result: Any) -> go.Figure:
        raise NotImplementedError

    def draw_beside(self, request: Request, result: Any) -> None:
        """Called after every draw of `figure`: an explorer with a second figure redraws it here."""

    def figures(self) -> tuple[go.FigureWidget, ...]:
        """Every FigureWidget the explorer draws in (`figure`, and any drawn by `draw_beside`)."""
        return (self.figure,)

    def describe(self, request: Request, result: Any) -> tuple[str, str]:
        """The status line and the message (empty when all is well) for a drawn result."""
        return "", ""

    def announce(self, request: Request) -> tuple[str, str]:
        """The status line and the message (a warning, or empty) while `request` is being computed."""
        return "<i>training…</i>", ""

    def layout(self) -> widgets.Widget:
        """The whole explorer as one widget; subclasses arrange their controls (and show `progress` if they fill it)."""
        return widgets.VBox([*self.controls.values(), self.status, self.message, self.figure])

    def own(self, *parts: widgets.Widget) -> None:
        """Have `close()` close these widgets too (a subclass's buttons, a second figure)."""
        self._widgets.extend(parts)

    # --- driving it ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop computing, drop the cached results and close every widget and figure of this explorer.

        >>> explorer = ev.explorer("moons"); explorer.close()   # doctest: +SKIP

        What to notice: a notebook frees an explorer once nothing refers to it; `close()` frees
        it at once (a running training stops at its next epoch) and removes it from the page.
        """
        with self._lock:
            self._closed = True
            self._wanted = None  # a computation still running stops at its next partial result
            self._cache.clear()
        if self in _shown:
            _shown.remove(self)
        self._free()

    def refresh(self) -> None:
        """Draw what the controls ask for: from the cache at once, else after computing it.

        A cached result supersedes whatever the worker is computing for another setting.
        """
        self._check_open()
        request = self.request()
        with self._lock:
            self._wanted = request
            cached = self._covering(request)
            if cached is not None:
                self._draw(request, cached)
                return
            self.status.value, message = self.announce(request)
            if message:
                self.message.value = _box(message, "#fff4e5", "#E69F00", "epochviz-note")
        self._worker.submit(request)

    def draw_now(self) -> None:
        """Compute (if needed) and draw on this thread: explorers start this way, so a notebook cell
        that creates one ends with its figure complete."""
        self._check_open()
        request = self.request()
        with self._lock:
            self._wanted = request
            result = self._covering(request)
        try:
            if result is None:
                result = self.compute(request, self._cache.get(request.key), lambda partial: None)
                self._remember(request.key, result)
            self._draw(request, result)
        except Exception as error:  # an explorer that starts with an impossible setting still appears, and says so
            self._show_error(error)

    def wait(self, timeout: float | None = 120) -> None:
        """Return once no computation is pending (tests and notebooks use this)."""
        if not self._worker.wait(timeout):
            raise TimeoutError(f"the explorer was still computing after {timeout} s")

    def forget(self, key: Hashable) -> None:
        """Drop a cached result, so the next request for it computes again from the start."""
        with self._lock:
            self._cache.pop(key, None)

    def _repr_mimebundle_(self, **kwargs) -> dict:
        """The live widget, plus a short text and an HTML note for places that cannot run it."""
        with self._lock:
            for figure in self.figures():
                _keep_for_new_views(figure)
        whole = self.layout()
        whole.add_class("epochviz-explorer")
        self.own(whole)  # its boxes close with the explorer
        _shown.append(self)
        bundle = front_end.view_bundle(whole, **kwargs)
        bundle["text/plain"] = f"{type(self).__name__}: run this notebook to play with it."
        bundle["text/html"] = PLACEHOLDER.format(name=html.escape(type(self).__name__))
        return bundle

    # --- internals -----------------------------------------------------------------------------

    def _changed(self, change: dict) -> None:
        if self._closed:  # a control of a closed explorer: nothing is drawn any more
            return
        if self._adjusting:  # a control `adjust` moves: the change that made it move refreshes once for both
            return
        try:
            self._adjusting = True
            try:
                self.adjust(change)
            finally:
                self._adjusting = False
            self.message.value = ""
            self.refresh()
        except Exception as error:  # a callback's exception would otherwise vanish into the log console
            self._show_error(error)

    def _work(self, request: Request) -> None:
        """Compute `request`, unless the cache (filled meanwhile) or a newer setting makes it pointless."""
        with self._lock:
            if request != self._wanted:  # a cached result answered a later change before this one started
                return
            cached = self._covering(request)
            if cached is not None:  # an earlier job for the same key finished while this one waited
                self._draw(request, cached)
                return
            earlier = self._cache.get(request.key)

        def partial(result: Any) -> None:
            wanted = self._wanted
            if wanted is None or wanted.key != request.key:
                raise Superseded
            if time.perf_counter() - self._last_draw >= DRAW_EVERY_S:
                self._draw(wanted, result, final=False)  # drawn as the controls say now (epochs, x axis)

        try:
            result = self.compute(request, earlier, partial)
        except Superseded:
            return
        except Exception as error:
            self._show_error(error, request)
            return
        self._remember(request.key, result)
        self._draw(request, result)  # when the controls have moved on, the request they want now draws instead

    def _covering(self, request: Request) -> Any:
        """The cached result that covers `request` (marked as recently used), or None."""
        cached = self._cache.get(request.key)
        if cached is None or not self.covers(cached, request):
            return None
        self._cache.move_to_end(request.key)
        return cached

    def _remember(self, key: Hashable, result: Any) -> None:
        with self._lock:
            if self._closed:
                return
            self._cache[key] = result
            self._cache.move_to_end(key)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)

    def _draw(self, request: Request, result: Any, *, final: bool = True) -> None:
        """Draw `result` for `request`, unless the controls have asked for something else since."""
        with self._lock:
            if request != self._wanted:
                return
            self._check_open()
            self.before_draw(request, result)
            sync_figure(self.figure, self.render(request, result))
            self.draw_beside(request, result)
            self._last_draw = time.perf_counter()
            if final:
                for figure in self.figures():
                    _keep_for_new_views(figure)
                self.status.value, message = self.describe(request, result)
                if message:
                    self.message.value = _box(message, "#fff4e5", "#E69F00", "epochviz-note")

    def _show_error(self, error: Exception, request: Request | None = None) -> None:
        """Show `error` in the widget; one raised for `request` only if the controls still ask for it."""
        with self._lock:
            if self._closed or (request is not None and request != self._wanted):
                return
            self.status.value = ""
            self.message.value = _box(f"<b>{type(error).__name__}</b>: {html.escape(str(error))}", "#fdecea",
                                      "#D55E00", "epochviz-error")  # fmt: skip

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"this {type(self).__name__} was closed (close()); create a new one to explore again.")
        if closed := [figure for figure in self.figures() if figure.comm is None]:
            which = "its figure was" if closed[0] is self.figure else "one of its figures was"
            raise RuntimeError(f"this {type(self).__name__} cannot draw: {which} closed. Call close() and create a "
                               f"new explorer.")  # fmt: skip


def weakly(method: Callable) -> Callable:
    """`method` (bound to an object) as a callback that does not keep the object alive; once it is freed, a no-op."""
    ref = weakref.WeakMethod(method)

    def call(*args, **kwargs):
        bound = ref()
        return None if bound is None else bound(*args, **kwargs)

    return call


def _close_all(parts: list[widgets.Widget]) -> None:
    """Close `parts` and every widget inside them (children, layout, style), so the widget registry lets them go."""
    while parts:
        part = parts.pop()
        parts.extend(getattr(part, "children", ()))
        # a widget's layout and style are widgets of their own (a FigureWidget's layout is plotly's, not one)
        parts.extend(inner for inner in (getattr(part, "layout", None), getattr(part, "style", None))
                     if isinstance(inner, widgets.Widget))  # fmt: skip
        part.close()


def sync_figure(widget: go.FigureWidget, figure: go.Figure) -> None:
    """Make `widget` show `figure`, changing its traces in place when their kinds still match.

    What reaches the widget holds plain lists, never NumPy arrays. Plotly's browser side answers
    a figure it was sent as typed arrays with "deltas" in which an array that it redrew differently
    comes back as a dict of its changed elements, and its Python side then tests that array's
    truth (`if not value` in `BaseFigureWidget._remove_overlapping_props`): a ValueError ("the
    truth value of an array … is ambiguous") that only the log console shows. Lists avoid it
    (plotly/plotly.py#4160 reports the error without a cause).
    """
    fresh = [{k: v for k, v in plain(trace.to_plotly_json()).items() if k != "uid"} for trace in figure.data]
    same_shape = len(widget.data) == len(fresh) and all(
        set(old.to_plotly_json()) - {"uid"} == set(new) for old, new in zip(widget.data, fresh, strict=True)
    )
    with widget.batch_update():
        if same_shape:
            for old, new in zip(widget.data, fresh, strict=True):
                old.update(new, overwrite=True)
        else:
            widget.data = []
            widget.add_traces(fresh)
        size = {"height": widget.layout.height, "width": widget.layout.width}
        widget.layout = go.Layout(plain(figure.layout.to_plotly_json())).update(size, overwrite=True)


def plain(value: Any) -> Any:
    """`value` with every NumPy array (at any depth of dicts and lists) turned into a list."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def _keep_for_new_views(figure: go.FigureWidget) -> None:
    """Make a view created from now on (a page reloaded, Voilà connecting late) start from the figure as it is.

    Plotly gives a new view of a FigureWidget the state recorded when the figure itself was last
    displayed. Inside an explorer's layout it never is, so without this a new view would start
    from the empty figure the explorer began with, and miss every trace drawn since.
    """
    figure._repr_mimebundle_()


def _box(content: str, background: str, border: str, css_class: str) -> str:
    return (
        f'<div class="{css_class}" style="background:{background};border-left:4px solid {border};padding:6px 10px;'
        f'margin:4px 0;font-size:15px;max-width:60em">{content}</div>'
    )
