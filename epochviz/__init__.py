"""epochviz: see what happens to a neural network across epochs.

>>> import epochviz as ev
>>> run = ev.train("moons", epochs=5, reset="never")
>>> run.epochs                      # one row per epoch: losses, accuracy, samples seen
>>> run.params(2, "start")          # the weights epoch 2 started from (= where epoch 1 ended)
"""

from .config import TrainConfig
from .data import Dataset, circles, digits, from_arrays, k_folds, line, load, moons, spirals, train_validation_split
from .models import linear, mlp
from .run import Run
from .train import train

__all__ = [
    "Dataset", "Run", "TrainConfig", "circles", "digits", "from_arrays", "k_folds", "line",
    "linear", "load", "mlp", "moons", "spirals", "train", "train_validation_split",
]  # fmt: skip
__version__ = "0.1.0"
