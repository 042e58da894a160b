"""Execute the teaching notebooks in place, so their saved outputs are what a reader sees first.

    python tools/execute_notebooks.py [notebooks/NN_name.ipynb ...]   (default: all of notebooks/)

Widget state is not stored (it would add ~5 MB of JavaScript per figure), and where a live
widget also offers an HTML fallback (explorers, predictions), only the fallback is kept: a
saved notebook then shows "an explorer appears here when this notebook runs" instead of
"Error displaying widget: model not found". nbval ignores widget views either way.
Each notebook also records what produced its outputs (`metadata.epochviz`): a fingerprint of the
package's source and of `constraints.txt`, and the CPU kernel path torch ran. A test compares the
fingerprint with the code under test, so outputs left stale by a change fail loudly, by name, instead
of passing by luck on one CPU and failing on the next. Prints each notebook's execution time.
"""

from __future__ import annotations

import hashlib
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import torch
from jupyter_client import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
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


def execute(path: Path) -> float:
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    run_or_say_why(notebook, path)
    seconds = time.perf_counter() - started
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
