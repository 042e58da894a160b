"""A background worker where the latest request wins.

Sliders can fire many changes per second, and training takes a while. If every change ran in
the slider's callback, the kernel would queue a backlog of stale trainings and freeze every
other control until they all finished (ipywidgets#3468). Instead each callback only *submits*
a request; one worker thread runs the newest one, and a request replaced while it waits is
never run. Whether a request already *running* has been overtaken is the submitter's to say
(the explorer asks on every epoch), since only it knows which newer requests it can serve.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class LatestWins:
    """Run `work(request)` on a background thread, always for the newest request.

    The thread exits when nothing is pending, so an idle explorer holds no thread.
    """

    def __init__(self, work: Callable[[Any], None], *, on_error: Callable[[Exception], None] = print) -> None:
        self._work = work
        self._on_error = on_error  # the worker must survive a failing request: it reports and goes on
        self._lock = threading.Lock()
        self._pending: Any = None
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._parent = None

    def submit(self, request: Any) -> None:
        """Ask for `request` to be done; it replaces any request still waiting."""
        with self._lock:
            self._pending = request
            self._idle.clear()
            if self._thread is None:
                self._parent = _kernel_parent()
                self._thread = threading.Thread(target=self._loop, name="epochviz-worker", daemon=True)
                self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no request is waiting or running; False if `timeout` seconds passed first."""
        return self._idle.wait(timeout)

    @property
    def busy(self) -> bool:
        return not self._idle.is_set()

    def _loop(self) -> None:
        with _output_goes_to(self._parent):
            while True:
                with self._lock:
                    request, self._pending = self._pending, None
                    if request is None:
                        self._thread = None
                        self._idle.set()
                        return
                try:
                    self._work(request)
                except Exception as error:
                    self._on_error(error)


def _kernel_parent():
    """The message the kernel is answering now, so a worker's output is attributed to it."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return (shell, shell.get_parent()) if shell is not None and hasattr(shell, "get_parent") else None


@contextmanager
def _output_goes_to(parent) -> Iterator[None]:
    """In a Jupyter kernel, attribute this thread's messages to the cell that started it (ipywidgets#4020)."""
    if parent is None or not hasattr(parent[0], "set_thread_parent"):
        yield
        return
    shell, header = parent
    tokens = shell.set_thread_parent(header)
    try:
        yield
    finally:
        shell.reset_thread_parent(tokens)
