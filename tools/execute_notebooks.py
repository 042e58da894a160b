"""Execute the teaching notebooks in place, so their saved outputs are what a reader sees first.

    python tools/execute_notebooks.py [notebooks/NN_name.ipynb ...]   (default: all of notebooks/)

Widget state is not stored (it would add ~5 MB of JavaScript per figure), and where a live
widget also offers an HTML fallback (explorers, predictions), only the fallback is kept: a
saved notebook then shows "an explorer appears here when this notebook runs" instead of
"Error displaying widget: model not found". nbval ignores widget views either way.
Every Plotly figure also gets a static PNG beside its JSON, and every live widget holding figures (an
explorer) a PNG of its first figure as the notebook drew it, in an output of its own below the widget's
note: GitHub, nbviewer, VS Code's preview and nbconvert's HTML draw no Plotly JSON (tools/figure_images.py).
Without a Chromium the figures get no image, and a warning says so.
Each notebook also records what produced its outputs (`metadata.epochviz`): a fingerprint of the
package's source and of `constraints.txt`, and the CPU kernel path torch ran. A test compares the
fingerprint with the code under test, so outputs left stale by a change fail loudly, by name, instead
of passing by luck on one CPU and failing on the next. Prints each notebook's execution time.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import torch
from figure_images import PNG, NoBrowser, pngs  # tools/ is on the path here
from jupyter_client import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PLOTLY = "application/vnd.plotly.v1+json"
ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


def fingerprint() -> str:
    """A hash of everything that decides the notebooks' outputs: the package's code and the pinned versions."""
    digest = hashlib.sha256()
    for path in [*sorted((ROOT / "epochviz").rglob("*.py")), ROOT / "constraints.txt"]:
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


CELL_TIMEOUT_S = 1800  # per cell: a slow or busy machine gets a slower build, not a broken one (CI allows 90 min)


def run_cells(notebook: nbformat.NotebookNode, folder: Path) -> None:
    """Run every cell of `notebook` in place, in a fresh kernel working in `folder`; keep no widget state.

    The kernel talks over local sockets (IPC), not TCP: nothing listens on the network, and the kernel
    has no reason to warn that it is "running over TCP without encryption".
    """
    with tempfile.TemporaryDirectory(prefix="epochviz-kernel-") as sockets:
        kernel = KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(sockets) / "kernel"))
        try:
            NotebookClient(notebook, km=kernel, timeout=CELL_TIMEOUT_S, store_widget_state=False,
                           resources={"metadata": {"path": str(folder)}}).execute()  # fmt: skip
        finally:
            if kernel.has_kernel:
                kernel.shutdown_kernel(now=True)


class NotebookFailed(RuntimeError):
    """A notebook that did not run to its end, named, with the error of the cell that stopped it."""


def run_or_say_why(notebook: nbformat.NotebookNode, path: Path) -> None:
    """`run_cells` for the notebook at `path`; if a cell fails or times out, NotebookFailed names the notebook."""
    try:
        run_cells(notebook, path.parent)
    except CellTimeoutError:
        raise NotebookFailed(f"{path.name}: a cell ran longer than {CELL_TIMEOUT_S} s") from None
    except CellExecutionError as error:
        plain = re.sub(r"\x1b\[[0-9;]*m", "", str(error))  # the traceback's terminal colours
        last = next((line for line in reversed(plain.strip().splitlines()) if line.strip()), "an error")
        raise NotebookFailed(f"{path.name}: a cell failed: {last}") from None


# run last in the kernel: every live widget holding Plotly FigureWidgets → those figures as JSON. It first
# waits for the explorers' background trainings, so that a snapshot shows a finished figure.
SNAPSHOT_CELL = """\
import gc as _gc, json as _json, threading as _threading, warnings as _warnings
import plotly.graph_objects as _go, plotly.io as _pio
from ipywidgets.widgets.widget import _instances as _widgets
from epochviz.widgets.explorer import RunExplorer as _RunExplorer
from epochviz.widgets.offline import offline_explorer as _offline

for _thread in _threading.enumerate():
    if _thread.name == "epochviz-worker":
        _thread.join()

def _figures(widget):
    if isinstance(widget, _go.FigureWidget):
        return [widget]
    return [figure for child in getattr(widget, "children", ()) for figure in _figures(child)]

with _warnings.catch_warnings():  # looking at every object touches deprecated ones (torch.distributed.reduce_op)
    _warnings.simplefilter("ignore")
    _explorers = {id(e.figure): e for e in _gc.get_objects() if isinstance(e, _RunExplorer)} if %(offline)s else {}
_found = {}
for _id, _widget in list(_widgets.items()):
    if _shown := _figures(_widget):
        _main = [_explorers[id(f)] for f in _shown if id(f) in _explorers]
        _found[_id] = {"figures": [_pio.to_json(f, validate=False) for f in _shown],
                       "offline": _offline(_main[0], element_id="epochviz-" + _id) if _main else None}
print(_json.dumps(_found))
"""


def run_with_snapshots(notebook: nbformat.NotebookNode, path: Path, *, offline: bool = False) -> dict[str, dict]:
    """`run_or_say_why`, then for every live widget, by model id: its figures ("figures") and, with `offline`,
    the main explorer's precomputed version for a page with no kernel ("offline": HTML, else None)."""
    notebook.cells.append(nbformat.v4.new_code_cell(SNAPSHOT_CELL % {"offline": offline}))
    run_or_say_why(notebook, path)
    probe = notebook.cells.pop()
    printed = "".join(output["text"] for output in probe.outputs if output.get("name") == "stdout")
    found = json.loads(printed)
    for widget in found.values():
        widget["figures"] = [json.loads(figure) for figure in widget["figures"]]
    return found


def add_static_images(notebook: nbformat.NotebookNode, snapshots: dict[str, dict], name: str) -> None:
    """Give each Plotly figure a PNG beside its JSON, and each widget in `snapshots` a PNG of its first figure.

    A widget's image is an output of its own, below the widget's: where a widget cannot run, its output
    shows its HTML note and nothing else of it (HTML outranks PNG everywhere). Without a Chromium, a
    warning names the notebook and the figures stay as they are.
    """
    found = []  # (cell, output, figure): the output that gets the image, or after which it goes
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if PLOTLY in data:
                found.append((cell, output, data[PLOTLY]))
            elif WIDGET_VIEW in data and (shown := snapshots.get(data[WIDGET_VIEW]["model_id"], {}).get("figures")):
                found.append((cell, output, shown[0]))
    try:
        images = pngs([figure for _, _, figure in found])
    except NoBrowser as why:
        print(f"warning: {name}: its {len(found)} figures got no static image ({why})", file=sys.stderr)
        return
    for (cell, output, _), image in zip(found, images, strict=True):
        if PLOTLY in output.data:
            output.data[PNG] = image
        else:
            snapshot = nbformat.v4.new_output("display_data", data={PNG: image})
            cell.outputs.insert(cell.outputs.index(output) + 1, snapshot)


def execute(path: Path) -> float:
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    snapshots = run_with_snapshots(notebook, path)
    seconds = time.perf_counter() - started
    add_static_images(notebook, snapshots, path.name)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data and "text/html" in data:
                del data[WIDGET_VIEW]
    notebook.metadata.pop("widgets", None)
    notebook.metadata["epochviz"] = {
        "fingerprint": fingerprint(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    nbformat.write(notebook, path)
    return seconds


def main(paths: list[str]) -> None:
    targets = [Path(p) for p in paths] or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    failed = []
    for path in targets:  # one failure does not stop the others; it is named at the end
        try:
            print(f"{path.name:45s} {execute(path):6.1f} s", flush=True)
        except NotebookFailed as error:
            print(f"{path.name:45s} FAILED ({error})", flush=True)
            failed.append(str(error))
    if failed:
        sys.exit("not executed:\n  " + "\n  ".join(failed))


if __name__ == "__main__":
    main(sys.argv[1:])
