"""The committed notebooks: their saved outputs come from the code under test.

nbval re-runs every notebook and compares its outputs with the saved ones, but only on the CPU
it runs on. Outputs saved by an older version of the package can still match there by luck and
then fail on a machine whose CPU runs other kernels, long after the change that made them stale.
`make notebooks` stamps each notebook with a fingerprint of the code that produced it; this test
names every notebook whose stamp no longer matches.
"""

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from execute_notebooks import NOTEBOOKS, fingerprint  # noqa: E402  (tools/ is scripts, not a package)

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
