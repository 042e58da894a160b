"""The package as a whole: its public API, its layers, and its style."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import epochviz as ev
from epochviz.data import TASKS
from epochviz.models import MODELS
from epochviz.objectives import OPTIMIZERS

PACKAGE = Path(ev.__file__).parent
ROOT = PACKAGE.parent

# lower layers never import higher ones: data → models → train (+ siblings) → plots → widgets.
# A subpackage's modules share its layer and may import each other.
LAYERS = {
    "checks": 0, "policies": 0, "data": 1, "models": 2, "objectives": 2, "threads": 2,
    "config": 3, "run": 3, "train": 3, "memory": 3, "checkpoint": 3, "crossval": 3, "hardware": 3, "windows": 3,
    "batched": 3, "summary": 3, "step_memory": 3, "epoch_edges": 3, "resuming": 3, "parallel": 3, "schedules": 2,
    "loop_checks": 0, "loop_record": 2, "watching": 3, "handwritten": 3, "watched": 4,
    "plots": 4, "reported": 4, "axes": 4, "style": 4, "curves": 4, "landscape": 4, "orders": 4,
    "memory_use": 4, "folds": 4, "epoch_windows": 4, "boundary": 4,
    "jumps": 3, "gallery": 4,
    "widgets": 5, "offline": 5, "boundary_panel": 5, "worker": 5, "base": 5, "controls": 5, "explorer": 5, "predict": 5,
    "presets": 5, "memory_explorer": 5, "crossval_explorer": 5, "landscape_explorer": 5, "front_end": 5,
    "watch": 5, "loop_switchboard": 5,
}  # fmt: skip


def test_the_public_api_is_importable_from_the_top():
    for name in ev.__all__:
        assert getattr(ev, name) is not None, name


def test_a_figure_and_the_numbers_it_draws_have_different_names():
    """`ev.sliding_windows(run)` is a table, `ev.plots.sliding_epochs(windows)` its figure: one name, one thing."""
    from epochviz import plots, widgets

    assert not set(ev.__all__) & set(plots.__all__)
    assert not set(ev.__all__) & set(widgets.__all__)


def _listings(names: set[str]) -> list[str]:
    """Where epochviz/ writes all of `names` out in one literal (dict keys, a tuple or a set): a file per literal."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            items = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", [])
            strings = {item.value for item in items if isinstance(item, ast.Constant)}
            if isinstance(node, (ast.Dict, ast.Tuple, ast.Set)) and names <= strings:
                found.append(path.relative_to(PACKAGE).as_posix())
    return found


@pytest.mark.parametrize(
    ("names", "homes"),
    [
        (set(OPTIMIZERS), ["objectives.py"]),  # OPTIMIZER_LABELS; OPTIMIZERS is derived from it
        (set(MODELS), ["models.py"]),  # BUILT_IN_MODELS; MODELS is derived from it
        (set(TASKS), ["data.py", "plots/style.py"]),  # the tasks themselves, and LOSS_TITLES
    ],
    ids=["optimizers", "models", "tasks"],
)
def test_each_list_of_names_is_written_out_in_one_place(names, homes):
    """Labels, builders and titles are looked up in one home, never listed again beside it."""
    assert _listings(names) == homes


def _modules() -> dict[str, Path]:
    """Every module by its stem; a subpackage's `__init__.py` goes by the subpackage's name."""
    paths = [path for path in PACKAGE.rglob("*.py") if path != PACKAGE / "__init__.py"]
    names = [path.parent.name if path.stem == "__init__" else path.stem for path in paths]
    assert len(set(names)) == len(names), f"module stems must be unique, the layers go by them: {sorted(names)}"
    return dict(zip(names, paths, strict=True))


def _imports(module: Path) -> set[str]:
    """Stems of the epochviz modules `module` imports: `.x`, `..x`, `from . import x` or `epochviz.x`."""
    package = module.parent.relative_to(PACKAGE).parts  # () in epochviz/, ("plots",) in epochviz/plots/
    found = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name.split(".")[1:] for alias in node.names if alias.name.split(".")[0] == "epochviz"]
        elif isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] == "epochviz"):
            base = list(package[: len(package) + 1 - node.level]) if node.level else []
            parts = (node.module or "").split(".")[0 if node.level else 1 :]
            target = base + [part for part in parts if part]
            targets = []
            for alias in node.names:
                # `from .plots import style` imports a module; `from .run import Run` a name inside one
                submodule = [*target, alias.name]
                targets.append(submodule if _is_module(submodule) else target)
        else:
            continue
        found |= {target[-1] for target in targets if target}
    return found


def _is_module(parts: list[str]) -> bool:
    path = PACKAGE.joinpath(*parts)
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def test_imports_resolve_relative_to_their_subpackage():
    plots = PACKAGE / "plots"
    assert _imports(plots / "curves.py") >= {"checks", "run", "axes", "style"}
    assert "plots" not in _imports(plots / "curves.py")
    assert _imports(plots / "__init__.py") >= {"curves", "style"}


def test_layers_only_import_downwards():
    modules = _modules()
    assert set(modules) <= set(LAYERS), f"give new modules a layer: {set(modules) - set(LAYERS)}"
    for name, path in modules.items():
        for imported in _imports(path):
            assert LAYERS[imported] <= LAYERS[name], f"{name} (layer {LAYERS[name]}) imports {imported}"


def test_figures_read_records_not_the_code_that_trains_or_measures():
    """A figure draws what was recorded (a Run, a Footprint), so it works without the code that produced it."""
    producers = {"train", "batched", "memory", "checkpoint", "hardware"}
    for path in (PACKAGE / "plots").glob("*.py"):
        assert not _imports(path) & producers, f"plots/{path.name} imports {_imports(path) & producers}"


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
