"""Learning-rate schedules counted in epochs: torch's own schedulers, stepped after every optimizer step."""

import numpy as np
import pytest
import torch

import epochviz as ev
from epochviz.schedules import SCHEDULES, learning_rates


def test_warm_restarts_glide_down_within_each_epoch_and_jump_back_at_its_edge():
    rates = learning_rates("warm_restarts", 0.4, steps_per_epoch=10, steps=30).reshape(3, 10)
    assert (rates[:, 0] == 0.4).all(), "every epoch starts again at the full learning rate"
    assert (np.diff(rates, axis=1) < 0).all() and rates[:, -1].max() < 0.01
    np.testing.assert_allclose(learning_rates("halve_each_epoch", 0.4, 10, 30)[::10], [0.4, 0.2, 0.1])
    assert (learning_rates("constant", 0.4, 10, 30) == 0.4).all()


def test_train_steps_the_schedule_as_a_plain_torch_loop_would():
    run = ev.train("moons", epochs=2, lr=0.5, lr_schedule="warm_restarts", shuffle=False)
    data = run.data.subset(run.train_indices)
    model = ev.mlp(2, 2, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    schedule = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=run.steps_per_epoch)
    losses = []
    for _ in range(2):
        for batch in torch.arange(len(data)).split(32):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(data.x[batch]), data.y[batch])
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
    np.testing.assert_allclose(run.steps.loss, losses, rtol=1e-6)
    assert not np.allclose(run.steps.loss, ev.train("moons", epochs=2, lr=0.5, shuffle=False).steps.loss)


@pytest.mark.parametrize("schedule", [name for name in SCHEDULES if name != "constant"])
@pytest.mark.parametrize("reset", ["never", "optimizer"])
def test_a_resumed_run_follows_its_schedule_exactly(tmp_path, schedule, reset):
    settings = {"epochs": 4, "lr": 0.3, "lr_schedule": schedule, "reset": reset, "optimizer": "momentum"}
    whole = ev.train("moons", **settings)
    in_memory = ev.resume(ev.train("moons", **{**settings, "epochs": 2}), epochs=4)
    path = tmp_path / "run.pt"
    ev.train("moons", **{**settings, "epochs": 2}, checkpoint=path)
    from_file = ev.resume(path, epochs=4)
    for resumed in (in_memory, from_file):
        np.testing.assert_array_equal(resumed.steps.loss, whole.steps.loss)
        np.testing.assert_array_equal(resumed.params(4, "end"), whole.params(4, "end"))


def test_the_schedule_is_checked_and_train_many_refuses_one():
    with pytest.raises(ValueError, match="lr_schedule"):
        ev.train("moons", epochs=1, lr_schedule="cosine-ish")
    with pytest.raises(ValueError, match="lr_schedule"):
        ev.train_many("moons", [{}], epochs=1, lr_schedule="warm_restarts")
