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

A notebook is saved only if it prints the same on every CPU kernel path this machine can run
(`ATEN_CPU_CAPABILITY`: default, avx2, avx512): it runs again on each other path, and if a cell's
text differs (as nbval compares it), the notebook is not written and the cell and both texts are named.
A number printed on a rounding edge (0.45 on one path, 0.44 on another) is caught here, when it is
saved, instead of failing nbval on the next machine.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import torch
from figure_images import PNG, NoBrowser, pngs  # tools/ is on the path here
from jupyter_client import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError
from nbval.plugin import get_sanitize_patterns

from epochviz.hardware import cpu_kernel_paths

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PLOTLY = "application/vnd.plotly.v1+json"
ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
# what nbval does not compare here (conftest.py): figures' floats and pixels, and widgets' random ids
NOT_COMPARED = (PLOTLY, PNG, WIDGET_VIEW)
SANITIZE = get_sanitize_patterns((ROOT / "tests" / "nbval-sanitize.cfg").read_text())  # as `make test` runs nbval
# the kernel path torch picked in this process ("AVX512", …); the kernel that runs the notebook to save inherits it
KERNELS_HERE = torch.backends.cpu.get_cpu_capability()


def fingerprint() -> str:
    """A hash of everything that decides the notebooks' outputs: the package's code and the pinned versions."""
    digest = hashlib.sha256()
    for path in [*sorted((ROOT / "epochviz").rglob("*.py")), ROOT / "constraints.txt"]:
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


CELL_TIMEOUT_S = 1800  # per cell: a slow or busy machine gets a slower build, not a broken one (CI allows 90 min)


def run_cells(notebook: nbformat.NotebookNode, folder: Path, kernel_path: str | None = None) -> None:
    """Run every cell of `notebook` in place, in a fresh kernel working in `folder`; keep no widget state.

    With a `kernel_path` ("default", "avx2", "avx512"), the kernel starts with ATEN_CPU_CAPABILITY set to
    it, so its torch runs those kernels; without one, torch picks its own, as in a learner's notebook.
    The kernel talks over local sockets (IPC), not TCP: nothing listens on the network, and the kernel
    has no reason to warn that it is "running over TCP without encryption".
    """
    environment = {**os.environ, **({} if kernel_path is None else {"ATEN_CPU_CAPABILITY": kernel_path})}
    with tempfile.TemporaryDirectory(prefix="epochviz-kernel-") as sockets:
        kernel = KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(sockets) / "kernel"))
        try:
            NotebookClient(notebook, km=kernel, timeout=CELL_TIMEOUT_S, store_widget_state=False,
                           resources={"metadata": {"path": str(folder)}}).execute(env=environment)  # fmt: skip
        finally:
            if kernel.has_kernel:
                kernel.shutdown_kernel(now=True)


class NotebookFailed(RuntimeError):
    """A notebook that did not run to its end, named, with the error of the cell that stopped it."""


def run_or_say_why(notebook: nbformat.NotebookNode, path: Path, kernel_path: str | None = None) -> None:
    """`run_cells` for the notebook at `path`; if a cell fails or times out, NotebookFailed names the notebook
    (and the kernel path, when one was forced)."""
    name = path.name if kernel_path is None else f"{path.name} (ATEN_CPU_CAPABILITY={kernel_path})"
    try:
        run_cells(notebook, path.parent, kernel_path)
    except CellTimeoutError:
        raise NotebookFailed(f"{name}: a cell ran longer than {CELL_TIMEOUT_S} s") from None
    except CellExecutionError as error:
        plain = re.sub(r"\x1b\[[0-9;]*m", "", str(error))  # the traceback's terminal colours
        last = next((line for line in reversed(plain.strip().splitlines()) if line.strip()), "an error")
        raise NotebookFailed(f"{name}: a cell failed: {last}") from None


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


def on_other_kernel_paths(notebook: nbformat.NotebookNode, path: Path) -> dict[str, nbformat.NotebookNode]:
    """`notebook` (not yet run) run again on every other kernel path this CPU has: kernel path → executed copy.

    The copies run side by side where there are cores for them; the run that is saved has run before,
    alone, so that the seconds its figures show were not shared with these.
    """
    others = [kernel_path for kernel_path in cpu_kernel_paths() if kernel_path != KERNELS_HERE.lower()]
    copies = {kernel_path: copy.deepcopy(notebook) for kernel_path in others}
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        runs = [pool.submit(run_or_say_why, copied, path, kernel_path) for kernel_path, copied in copies.items()]
        for run in runs:
            run.result()  # a cell that fails on one path only fails here, naming the path
    return copies


def printed(cell: nbformat.NotebookNode) -> str:
    """A cell's outputs as nbval compares them: streams, errors and every MIME type but NOT_COMPARED, in order,
    sanitized by nbval's rules (seconds, memory addresses), so two runs differ here only where nbval would fail."""
    texts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            texts.append(output.text)
        elif output.output_type == "error":
            texts.append(f"{output.ename}: {output.evalue}")
        for mime, value in output.get("data", {}).items():
            if mime not in NOT_COMPARED:
                texts.append(value if isinstance(value, str) else json.dumps(value, sort_keys=True))
    text = "\n".join(texts)
    for regex, replace in SANITIZE:
        text = re.sub(regex, replace, text)
    return text


SHOWN_LINES = 8  # of each difference: enough for a table's changed row and its HTML twin


def disagreements(runs: dict[str, nbformat.NotebookNode]) -> list[str]:
    """Each code cell whose printed outputs differ between runs of one notebook (kernel path → executed notebook,
    the one to save first): its index and first line, the two kernel paths, and the lines that differ, e.g.
    "cell 23 `ten_epochs = …` prints differently with ATEN_CPU_CAPABILITY=avx512 (-) and =avx2 (+)" above
    "-2  mlp_batchnorm … 0.45" and "+2  mlp_batchnorm … 0.44". Each other run is compared with the saved one:
    where all agree with it, all agree with each other.
    """
    (mine, saved), *others = runs.items()
    found = []
    for index, cell in enumerate(saved.cells):
        if cell.cell_type != "code":
            continue
        for theirs, other in others:
            if (ours := printed(cell)) != (their_text := printed(other.cells[index])):
                first_line = cell.source.strip().splitlines()[0]
                diff = list(difflib.unified_diff(ours.splitlines(), their_text.splitlines(), n=0, lineterm=""))
                changed = [line for line in diff[2:] if not line.startswith("@@")][:SHOWN_LINES]
                found.append(f"cell {index} `{first_line}` prints differently with ATEN_CPU_CAPABILITY={mine} (-) "
                             f"and ={theirs} (+):\n" + "\n".join(f"      {line}" for line in changed))  # fmt: skip
                break  # one pair of paths per cell says enough
    return found


class PathsDisagree(RuntimeError):
    """A notebook that printed differently on two kernel paths of this CPU: saved, it would fail nbval on a
    machine whose torch picks the other path. Not saved; the message names each such cell."""


def execute(path: Path) -> float:
    notebook = nbformat.read(path, as_version=4)
    not_yet_run = copy.deepcopy(notebook)
    started = time.perf_counter()
    snapshots = run_with_snapshots(notebook, path)
    seconds = time.perf_counter() - started
    if found := disagreements({KERNELS_HERE.lower(): notebook, **on_other_kernel_paths(not_yet_run, path)}):
        raise PathsDisagree(f"{path.name}: not saved, it printed differently on two of this CPU's kernel paths "
                            "(nbval would fail on one of them):\n    " + "\n    ".join(found))  # fmt: skip
    add_static_images(notebook, snapshots, path.name)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data and "text/html" in data:
                del data[WIDGET_VIEW]
    notebook.metadata.pop("widgets", None)
    notebook.metadata["epochviz"] = {"fingerprint": fingerprint(), "cpu_capability": KERNELS_HERE}
    nbformat.write(notebook, path)
    return seconds


def main(paths: list[str]) -> None:
    targets = [Path(p) for p in paths] or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    failed = []
    for path in targets:  # one failure does not stop the others; it is named at the end
        try:
            print(f"{path.name:45s} {execute(path):6.1f} s", flush=True)
        except (NotebookFailed, PathsDisagree) as error:
            print(f"{path.name:45s} FAILED ({error})", flush=True)
            failed.append(str(error))
    if failed:
        sys.exit("not saved:\n  " + "\n  ".join(failed))


if __name__ == "__main__":
    main(sys.argv[1:])
