"""A learner's own training loop, as tutorials write it, with the classic mistakes one switch away.

`handwritten_loop` is plain PyTorch: a model, an optimizer, a DataLoader, and for every epoch
`model.train()`, the batches, then a validation pass in `model.eval()`. Each entry of `MISTAKES`
turns one line of it into a mistake learners really make, so `ev.watch()` can be seen finding it
(notebook 12). Read it top to bottom: the mistakes are the `if` lines.
"""

from __future__ import annotations

from collections.abc import Collection

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from . import checks
from .data import Dataset, as_dataset, split_rows

MISTAKES = {  # name → what the learner's loop does by mistake (the switchboard's checkbox)
    "model_inside_loop": "build the model (and its optimizer) inside the epoch loop",
    "optimizer_inside_loop": "build the optimizer inside the epoch loop",
    "no_zero_grad": "forget optimizer.zero_grad()",
    "no_shuffle": "no shuffling (shuffle=False)",
    "no_train_mode": "forget model.train() after validating",
}


def handwritten_loop(data: Dataset | str = "moons", *, mistakes: Collection[str] = (), epochs: int = 10,
                     batch_size: int = 32, lr: float = 0.05, seed: int = 0) -> nn.Module:  # fmt: skip
    """Train a small network the way a learner writes it by hand; `mistakes` (keys of MISTAKES) break it.

    It seeds torch's global generator with `seed` first, as a learner's script does, so the same
    arguments give the same numbers. Returns the trained model.

    >>> import epochviz as ev
    >>> with ev.watch() as w:  # doctest: +SKIP
    ...     handwritten_loop("moons", mistakes=["no_zero_grad"])
    >>> [f.check for f in w.findings]  # doctest: +SKIP
    ['grads_not_zeroed']

    What to notice: nothing in this loop knows it is watched; each mistake changes one line.
    """
    unknown = set(mistakes) - set(MISTAKES)
    if isinstance(mistakes, str) or unknown:
        raise ValueError(f"mistakes must be a list of {', '.join(map(repr, MISTAKES))}; got {mistakes!r}.")
    epochs = checks.whole("epochs", epochs, minimum=1, maximum=checks.MAX_EPOCHS)
    batch_size = checks.whole("batch_size", batch_size, minimum=1)
    lr = checks.number("lr", lr, low=0, low_open=True)
    torch.manual_seed(checks.seed(seed))
    data = as_dataset(data)
    if data.task != "classification":
        raise ValueError(f"handwritten_loop trains a classifier; {data.name!r} is a regression dataset.")
    train_rows, val_rows = split_rows(data, val_fraction=0.2, seed=seed)
    train_split, val_split = data.subset(train_rows), data.subset(val_rows)
    train_data = TensorDataset(train_split.x, train_split.y)
    loader = DataLoader(train_data, batch_size=batch_size, shuffle="no_shuffle" not in mistakes)

    def new_model() -> nn.Module:  # dropout: training and evaluation really differ
        return nn.Sequential(nn.Linear(data.features, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, data.outputs))

    model = new_model()  # initialise once, before the epoch loop
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for _ in range(epochs):
        if "model_inside_loop" in mistakes:
            model = new_model()
            optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        if "optimizer_inside_loop" in mistakes:
            optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        if "no_train_mode" not in mistakes:
            model.train()  # dropout on: validation below turned it off
        # train: one pass over the training data
        for x, y in loader:
            if "no_zero_grad" not in mistakes:
                optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        # validate: dropout off, no gradients
        model.eval()
        with torch.no_grad():
            F.cross_entropy(model(val_split.x), val_split.y)
    return model
