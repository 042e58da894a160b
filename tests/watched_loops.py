"""What the tests of `ev.watch()` share: tiny data, models and optimizers, one torch thread, and a look at the hooks.

Not a test module (pytest collects `test_*.py` only): test_watch.py and test_watch_hostile.py import from it.
"""

import pytest
import torch
from torch import nn
from torch.nn.modules import module as torch_module
from torch.optim import optimizer as torch_optimizer
from torch.utils.data import DataLoader, TensorDataset

from epochviz.threads import torch_threads

EPOCHS = 3
BATCH_SIZE = 16
SAMPLES = 64  # 4 steps per epoch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models: a second thread only adds contention on a busy two-core machine, and nothing to the checks."""
    with torch_threads(1):
        yield


def xor(samples: int = SAMPLES, seed: int = 0) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, 2, generator=generator)
    return TensorDataset(x, (x[:, 0] * x[:, 1] > 0).long())


DATA = xor()


def dropout_net() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 2))


def momentum(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def global_hooks() -> tuple:
    """What watching installs: the sizes of torch's global hook tables, and the functions it wraps."""
    return (
        len(torch_optimizer._global_optimizer_pre_hooks),
        len(torch_optimizer._global_optimizer_post_hooks),
        len(torch_module._global_forward_pre_hooks),
        len(torch_module._global_forward_hooks),
        len(torch_module._global_forward_hooks_with_kwargs),
        len(torch_module._global_forward_hooks_always_called),
        torch.autograd.backward,
        DataLoader.__iter__,
        torch.amp.GradScaler.scale,
    )
