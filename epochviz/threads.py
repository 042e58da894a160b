"""How many CPU threads torch may use: one setting, for training and for predicting from a record alike.

On these tiny models a second thread gains little, and on a busy machine it can make each
step ten times slower; the thread count can also change the last digits of a sum.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Let torch use `count` CPU threads inside the block (None: as it is), then restore its setting."""
    before = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
