"""The record of how much device memory a training run holds at its peak: plain numbers, by what holds them.

`memory.footprint` measures a step and returns a `Footprint`; figures such as
`plots.memory_bars` draw one. Living here, apart from the measuring, a figure can read the
record without importing the code that builds models and runs forward passes.
"""

from __future__ import annotations

from dataclasses import dataclass

MB = 2**20
PARTS = ("params", "grads", "optimizer_state", "activations", "data")  # what a run holds on the device during a step


@dataclass(frozen=True)
class Footprint:
    """Bytes on the device while one optimizer step runs, by what holds them.

    >>> fp = footprint("mlp", moons_data, batch_size=32)     # doctest: +SKIP
    >>> fp.activations                                       # grows with batch_size
    >>> fp.data                                              # the samples: there for the whole run

    Not counted: the loop's own records (a copy of the initial weights, and a few numbers per
    training sample: the epoch's order and outputs); the validation pass, which runs every
    validation sample through the model at once, without gradients (with small batches and many
    validation samples it can need more than a step); and what a real GPU adds on top: its CUDA
    context (a few hundred MB), library workspaces, and the allocator's cache and fragmentation.
    """

    batch_size: int
    optimizer: str
    params: int  # the weights themselves, and buffers such as batch norm's running averages
    grads: int  # one gradient per weight
    optimizer_state: int  # momentum / Adam's running averages (none for plain SGD)
    activations: int  # what the forward pass keeps for the backward pass: grows with the batch
    data: int  # the training and validation samples, which epochviz puts on the device once for the whole run

    @property
    def total(self) -> int:
        return sum(getattr(self, part) for part in PARTS)

    @property
    def total_mb(self) -> float:
        return self.total / MB

    def __str__(self) -> str:
        parts = (f"{name.replace('_', ' ')} {getattr(self, name) / MB:.3g} MB" for name in PARTS)
        return f"{' + '.join(parts)} = {self.total_mb:.3g} MB"
