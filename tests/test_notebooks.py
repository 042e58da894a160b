"""The committed notebooks: their saved outputs come from the code under test.

nbval re-runs every notebook and compares its outputs with the saved ones, but only on the CPU
it runs on. Outputs saved by an older version of the package can still match there by luck and
then fail on a machine whose CPU runs other kernels, long after the change that made them stale.
`make notebooks` stamps each notebook with a fingerprint of the code that produced it; this test
names every notebook whose stamp no longer matches.

A saved figure must also show where no plotly.js runs (GitHub, nbviewer, VS Code's preview, nbconvert's
HTML): `make notebooks` stores a static PNG beside each figure's Plotly JSON.
"""

import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from execute_notebooks import NOTEBOOKS, PLOTLY, fingerprint  # noqa: E402  (tools/ is scripts, not a package)
from figure_images import PNG  # noqa: E402

PATHS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def test_every_lesson_is_checked():
    assert len(PATHS) >= 10


@pytest.mark.parametrize("path", PATHS, ids=[path.stem for path in PATHS])
def test_saved_outputs_come_from_this_code(path):
    stamp = nbformat.read(path, as_version=4).metadata.get("epochviz", {})
    assert stamp.get("fingerprint") == fingerprint(), (
        f"{path.name}'s saved outputs were produced by another version of epochviz or of constraints.txt "
        f"(stamp {stamp.get('fingerprint')!r}, code {fingerprint()!r}): run `make notebooks` and commit the result."
    )


@pytest.mark.parametrize("path", PATHS, ids=[path.stem for path in PATHS])
def test_every_saved_figure_shows_without_a_kernel(path):
    """Each Plotly figure carries a PNG, and `jupyter nbconvert --to html --no-input` shows it as an image."""
    notebook = nbformat.read(path, as_version=4)
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    figures = [output for output in outputs if PLOTLY in output.get("data", {})]
    bare = sum(PNG not in figure.data for figure in figures)
    assert bare == 0, (
        f"{path.name}: {bare} of its {len(figures)} figures have no static image, so GitHub and nbviewer show "
        "nothing there: run `make notebooks` (with a Chromium: `make browser`) and commit the result."
    )
    images = sum(PNG in output.get("data", {}) for output in outputs)  # the figures' and the explorers'
    page, _ = HTMLExporter(exclude_input=True).from_notebook_node(notebook)
    shown = len(re.findall(r'<img\b[^>]*\bsrc="data:image/png;base64,', page))
    assert shown == images >= len(figures), f"{path.name}: nbconvert's page shows {shown} of its {images} images"
