"""epochviz: see what happens to a neural network across epochs.

>>> import epochviz as ev
>>> run = ev.train("moons", epochs=5, reset="never")
>>> run.epochs                      # one row per epoch: losses, accuracy, samples seen
>>> run.params(2, "start")          # the weights epoch 2 started from (= where epoch 1 ended)
>>> with ev.watch() as w: ...       # your own loop: does it reset anything between epochs? (w.findings)
"""

from .batched import train_many
from .checkpoint import CheckpointError, SaveError
from .config import TrainConfig
from .crossval import CrossValidation, cross_validate
from .data import Dataset, circles, dataset, digits, from_arrays, k_folds, line, moons, spirals, train_validation_split
from .epoch_edges import losses_at_epoch_edges
from .handwritten import MISTAKES, handwritten_loop
from .hardware import compare_hardware
from .loop_checks import Finding
from .memory import OutOfMemoryError, footprint, max_batch_size
from .models import linear, mlp
from .parallel import train_parallel
from .policies import POLICIES, RESETS, ResetPolicy
from .resuming import ResumeComparison, stop_and_resume
from .run import Run
from .step_memory import Footprint
from .summary import best_epochs, summarize
from .train import resume, train
from .windows import sliding_windows

__all__ = [
    "MISTAKES", "POLICIES", "RESETS", "CheckpointError", "CrossValidation", "Dataset", "Finding", "Footprint",
    "OutOfMemoryError", "ResetPolicy", "ResumeComparison", "Run", "SaveError", "TrainConfig", "best_epochs", "circles",
    "compare_hardware", "cross_validate", "dataset", "digits", "footprint", "from_arrays", "handwritten_loop",
    "k_folds", "line", "linear", "losses_at_epoch_edges", "max_batch_size", "mlp", "moons", "resume",
    "sliding_windows", "spirals", "stop_and_resume", "summarize", "train", "train_many", "train_parallel",
    "train_validation_split",
]  # fmt: skip
__version__ = "0.1.0"

_LAZY = {"plots": "epochviz.plots", "widgets": "epochviz.widgets", "jumps": "epochviz.jumps"}


def __getattr__(name: str):
    """`ev.plots`, `ev.widgets`, `ev.jumps`, `ev.explorer` and `ev.watch` load Plotly and ipywidgets only when
    first used, so training alone never imports them."""
    import importlib

    if name in _LAZY:
        return importlib.import_module(_LAZY[name])
    if name == "explorer":
        return importlib.import_module("epochviz.widgets").explorer
    if name == "watch":
        return importlib.import_module("epochviz.widgets.watch").watch
    raise AttributeError(f"module 'epochviz' has no attribute {name!r}")
