"""`Watcher` around PyTorch Lightning's `Trainer.fit` (issue 23, item 5): Lightning's own loop, with its
validation passes, sanity check and optimizer closures, is watched like a hand-written one."""

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from epochviz.watching import Watcher

EPOCHS = 3
BATCH_SIZE = 16
pytestmark = [  # Lightning's advice for real jobs, and its own use of a torch API that newer torch deprecates
    pytest.mark.filterwarnings("ignore:.*does not have many workers"),
    pytest.mark.filterwarnings(r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated"),
]


def _xor(samples: int, seed: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, 2, generator=generator)
    return TensorDataset(x, (x[:, 0] * x[:, 1] > 0).long())


class TinyClassifier(L.LightningModule):
    def __init__(self, shuffle: bool = True):
        super().__init__()
        self.shuffle = shuffle
        self.net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 2))
        self.losses = []  # what training_step returned, for Lightning to call .backward() on

    def training_step(self, batch, batch_index):
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        self.losses.append(loss.item())
        return loss

    def validation_step(self, batch, batch_index):
        x, y = batch
        return F.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.01)

    def train_dataloader(self):
        return DataLoader(_xor(64, seed=0), batch_size=BATCH_SIZE, shuffle=self.shuffle)

    def val_dataloader(self):
        return DataLoader(_xor(32, seed=1), batch_size=BATCH_SIZE)


def fit(model: TinyClassifier) -> Watcher:
    torch.manual_seed(0)
    trainer = L.Trainer(
        max_epochs=EPOCHS,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        enable_checkpointing=False,
    )
    with Watcher() as w:
        trainer.fit(model)
    return w


def test_trainer_fit_is_watched_epoch_by_epoch_with_no_finding():
    model = TinyClassifier()
    w = fit(model)
    steps_per_epoch = len(model.train_dataloader())
    assert [(f.check, f.epoch) for f in w.findings] == []
    assert w.run.epochs.epoch.tolist() == [1, 2, 3]
    assert w.run.epochs.steps.tolist() == [steps_per_epoch] * EPOCHS
    assert w.run.epochs.complete.all()
    assert w.run.steps.loss.tolist() == model.losses


def test_a_lightning_module_whose_train_loader_does_not_shuffle_gives_same_order():
    w = fit(TinyClassifier(shuffle=False))
    assert [(f.check, f.epoch) for f in w.findings] == [("same_order", 2)]
    assert "Fix: DataLoader(..., shuffle=True)" in w.findings[0].message
