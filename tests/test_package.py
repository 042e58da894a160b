"""The package as a whole: its public API, its layers, and its style."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import epochviz as ev

PACKAGE = Path(ev.__file__).parent
ROOT = PACKAGE.parent

# lower layers never import higher ones: data → models → train (+ siblings) → plots → widgets
LAYERS = {
    "checks": 0, "data": 1, "models": 2, "objectives": 2,
    "config": 3, "run": 3, "train": 3, "memory": 3, "checkpoint": 3, "crossval": 3, "hardware": 3, "windows": 3,
}  # fmt: skip


def test_the_public_api_is_importable_from_the_top():
    for name in ev.__all__:
        assert getattr(ev, name) is not None, name


def _imports(module: Path) -> set[str]:
    tree = ast.parse(module.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found.add((node.module or "").split(".")[0])
    return found - {""}


def test_layers_only_import_downwards():
    modules = {path.stem: path for path in PACKAGE.rglob("*.py") if path.stem != "__init__"}
    assert set(modules) <= set(LAYERS), f"give new modules a layer: {set(modules) - set(LAYERS)}"
    for name, path in modules.items():
        for imported in _imports(path):
            assert LAYERS[imported] <= LAYERS[name], f"{name} (layer {LAYERS[name]}) imports {imported}"


def test_training_needs_no_plotting_library():
    code = "import sys, epochviz; epochviz.train('moons', epochs=1); print('plotly' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.skipif(shutil.which("ruff") is None and not (Path(sys.executable).parent / "ruff").exists(),
                    reason="ruff is not installed")  # fmt: skip
@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff_is_clean(command):
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run(
        [str(ruff if ruff.exists() else "ruff"), *command, "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
