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
import sys
import time
from pathlib import Path

import nbformat
import torch
from nbclient import NotebookClient

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


def fingerprint() -> str:
    """A hash of everything that decides the notebooks' outputs: the package's code and the pinned versions."""
    digest = hashlib.sha256()
    for path in [*sorted((ROOT / "epochviz").rglob("*.py")), ROOT / "constraints.txt"]:
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def run_cells(notebook: nbformat.NotebookNode, folder: Path) -> None:
    """Run every cell of `notebook` in place, in a fresh kernel working in `folder`; keep no widget state."""
    NotebookClient(notebook, timeout=300, kernel_name="python3", store_widget_state=False,
                   resources={"metadata": {"path": str(folder)}}).execute()  # fmt: skip


def execute(path: Path) -> float:
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    run_cells(notebook, path.parent)
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
    for path in targets:
        print(f"{path.name:45s} {execute(path):6.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
