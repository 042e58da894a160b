"""The record of how much memory one training step holds: plain numbers, by what holds them.

`memory.footprint` measures a step and returns a `Footprint`; figures such as
`plots.memory_bars` draw one. Living here, apart from the measuring, a figure can read the
record without importing the code that builds models and runs forward passes.
"""

from __future__ import annotations

from dataclasses import dataclass

MB = 2**20
PARTS = ("params", "grads", "optimizer_state", "activations")  # what a training step holds in memory


@dataclass(frozen=True)
class Footprint:
    """Bytes one optimizer step holds at once, by what holds them.

    >>> fp = footprint("mlp", moons_data, batch_size=32)     # doctest: +SKIP
    >>> fp.activations                                       # grows with batch_size
    """

    batch_size: int
    optimizer: str
    params: int  # the weights themselves
    grads: int  # one gradient per weight
    optimizer_state: int  # momentum / Adam's running averages (none for plain SGD)
    activations: int  # what the forward pass keeps for the backward pass: grows with the batch

    @property
    def total(self) -> int:
        return self.params + self.grads + self.optimizer_state + self.activations

    @property
    def total_mb(self) -> float:
        return self.total / MB

    def __str__(self) -> str:
        parts = (f"{name.replace('_', ' ')} {getattr(self, name) / MB:.3g} MB" for name in PARTS)
        return f"{' + '.join(parts)} = {self.total_mb:.3g} MB"
