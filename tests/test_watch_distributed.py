"""`Watcher` in a torch.distributed job: each rank watches itself, and a DistributedSampler without
`set_epoch(epoch)` is found on every rank (issue 23, item 5).

Two processes train one DistributedDataParallel model over gloo on 127.0.0.1. Each runs the loop twice
under its own Watcher, once calling `sampler.set_epoch(epoch)` and once forgetting it, and writes what
it found to a file the test reads.
"""

import json
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from epochviz.watching import Watcher

RANKS = 2
EPOCHS = 3
BATCH_SIZE = 8
SAMPLES = 64  # 32 a rank: 4 steps per epoch


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rank_main(rank: int, port: int, folder: str) -> None:
    """One rank: the learner's loop, watched, with and without set_epoch; its findings go to folder/rank.json."""
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=RANKS)
    try:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(SAMPLES, 2, generator=generator)
        data = TensorDataset(x, (x[:, 0] * x[:, 1] > 0).long())
        results = {}
        for set_epoch in (True, False):
            torch.manual_seed(0)  # the same initial weights on every rank
            model = DistributedDataParallel(nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2)))
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
            sampler = DistributedSampler(data, shuffle=True, seed=0)
            loader = DataLoader(data, batch_size=BATCH_SIZE, sampler=sampler)
            with Watcher() as w:
                for epoch in range(EPOCHS):
                    if set_epoch:
                        sampler.set_epoch(epoch)
                    for x, y in loader:
                        optimizer.zero_grad()
                        F.cross_entropy(model(x), y).backward()
                        optimizer.step()
            results[f"set_epoch={set_epoch}"] = {
                "findings": [[f.check, f.epoch, f.message] for f in w.findings],
                "steps": w.run.epochs.steps.tolist(),
            }
        with open(os.path.join(folder, f"{rank}.json"), "w") as file:
            json.dump(results, file)
    finally:
        dist.destroy_process_group()


def test_each_rank_finds_a_distributed_sampler_without_set_epoch(tmp_path):
    context = mp.get_context("spawn")
    port = _free_port()
    ranks = [context.Process(target=_rank_main, args=(rank, port, str(tmp_path))) for rank in range(RANKS)]
    try:
        for process in ranks:
            process.start()
        for process in ranks:
            process.join(timeout=120)
        assert [process.exitcode for process in ranks] == [0] * RANKS
    finally:
        for process in ranks:
            if process.is_alive():  # a rank that hangs (a port taken, a deadlock) is stopped, by its own pid
                process.kill()
                process.join()
    for rank in range(RANKS):
        results = json.loads((tmp_path / f"{rank}.json").read_text())
        assert results["set_epoch=True"] == {"findings": [], "steps": [4] * EPOCHS}
        without = results["set_epoch=False"]
        assert without["steps"] == [4] * EPOCHS
        assert [(check, epoch) for check, epoch, _ in without["findings"]] == [("same_order", 2)]
        assert "Fix: call sampler.set_epoch(epoch) at the start of every epoch" in without["findings"][0][2]
