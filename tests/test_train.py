"""The training loop does what the learner is told it does."""

import importlib
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import epochviz as ev

SMALL = {"epochs": 4, "seed": 3}


def test_never_reset_continues_exactly_where_the_last_epoch_ended():
    run = ev.train("moons", reset="never", **SMALL)
    for epoch in range(1, run.completed_epochs):
        np.testing.assert_array_equal(run.params(epoch + 1, "start"), run.params(epoch, "end"))
    assert not np.array_equal(run.params(2, "start"), run.params(1, "start")), "weights did not move"


def test_weights_reset_restores_the_same_initial_weights_every_epoch():
    run = ev.train("moons", reset="weights", **SMALL)
    for epoch in range(2, run.completed_epochs + 1):
        np.testing.assert_array_equal(run.params(epoch, "start"), run.params(1, "start"))
    assert not np.array_equal(run.params(1, "end"), run.params(1, "start"))


def test_weights_reset_without_shuffling_repeats_epoch_one_step_for_step():
    run = ev.train("moons", reset="weights", shuffle=False, **SMALL)
    losses = run.steps.pivot(index="batch", columns="epoch", values="loss")
    for epoch in losses.columns[1:]:
        np.testing.assert_array_equal(losses[epoch], losses[1])


def test_optimizer_reset_is_invisible_to_plain_sgd_but_not_to_momentum_or_adam():
    plain = [ev.train("moons", optimizer="sgd", reset=reset, **SMALL) for reset in ("never", "optimizer")]
    np.testing.assert_array_equal(plain[0].steps.loss, plain[1].steps.loss)
    np.testing.assert_array_equal(plain[0].params(4, "end"), plain[1].params(4, "end"))
    for optimizer in ("momentum", "adam"):
        lr = 0.01 if optimizer == "adam" else 0.1
        runs = [ev.train("moons", optimizer=optimizer, lr=lr, reset=r, **SMALL) for r in ("never", "optimizer")]
        np.testing.assert_array_equal(runs[0].params(1, "end"), runs[1].params(1, "end"))  # same first epoch
        assert not np.allclose(runs[0].steps.loss, runs[1].steps.loss)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 120), batch_size=st.integers(1, 150), drop_last=st.booleans(), val=st.sampled_from([0, 0.25]))
def test_steps_per_epoch_follow_the_batch_size_and_samples_per_epoch_do_not(n, batch_size, drop_last, val):
    data = ev.moons(n=n, seed=1)
    n_train = n - (max(1, round(n * val)) if val else 0)
    if drop_last and batch_size > n_train:
        with pytest.raises(ValueError, match="drop_last"):
            ev.train(data, epochs=2, batch_size=batch_size, drop_last=drop_last, val_fraction=val)
        return
    run = ev.train(data, epochs=2, batch_size=batch_size, drop_last=drop_last, val_fraction=val)
    expected_steps = n_train // batch_size if drop_last else math.ceil(n_train / batch_size)
    assert len(run.train_indices) == n_train
    assert list(run.epochs.steps) == [expected_steps] * 2 == [run.steps_per_epoch] * 2
    per_epoch = run.steps.groupby("epoch").batch_size.sum()
    if not drop_last:
        assert list(per_epoch) == [n_train, n_train]
        assert list(run.epochs.samples_seen) == [n_train, 2 * n_train]
    if batch_size >= n_train:
        assert list(run.steps.batch_size) == [n_train] * 2  # one full-batch step per epoch


def test_every_epoch_is_a_complete_pass_in_a_fresh_order():
    shuffled = ev.train("moons", epochs=3, seed=5)
    n = len(shuffled.train_indices)
    orders = [shuffled.sample_order(epoch) for epoch in (1, 2, 3)]
    for order in orders:
        np.testing.assert_array_equal(np.sort(order), np.arange(n))
    assert not np.array_equal(orders[0], orders[1])
    fixed = ev.train("moons", epochs=2, shuffle=False)
    np.testing.assert_array_equal(fixed.sample_order(2), np.arange(len(fixed.train_indices)))


def test_all_rows_train_in_their_own_order_without_validation():
    run = ev.train("moons", epochs=1, val_fraction=0)
    np.testing.assert_array_equal(run.train_indices, np.arange(len(run.data)))
    assert len(run.val_indices) == 0 and math.isnan(run.epochs.val_loss.iloc[0])


def test_the_same_arguments_give_the_same_losses_and_a_short_run_is_a_prefix_of_a_long_one():
    first, again = ev.train("moons", epochs=5), ev.train("moons", epochs=5)
    np.testing.assert_array_equal(first.steps.loss, again.steps.loss)
    short = ev.train("moons", epochs=2)
    head = first.steps[first.steps.epoch <= 2]
    np.testing.assert_array_equal(short.steps.loss, head.loss)
    np.testing.assert_array_equal(short.params(2, "end"), first.params(2, "end"))
    view = first.first(2)
    np.testing.assert_array_equal(view.steps.loss, short.steps.loss)
    np.testing.assert_array_equal(ev.models.flat_parameters(view.model), short.params(2, "end"))


def test_a_replay_in_plain_pytorch_gives_the_same_losses_and_weights():
    """The oracle: ten lines of ordinary PyTorch from the run's initial weights and sample order."""
    run = ev.train("moons", epochs=3, batch_size=16, lr=0.2, optimizer="momentum", seed=7)
    model = ev.mlp(2, 2, seed=7)
    torch.nn.utils.vector_to_parameters(torch.as_tensor(run.params(1, "start")), model.parameters())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    x, y = run.data.x[run.train_indices], run.data.y[run.train_indices]
    losses = []
    for epoch in (1, 2, 3):
        for batch in torch.as_tensor(run.sample_order(epoch)).split(16):
            loss = F.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    # the same operations in the same order, on the same kernel path: equal to float32 rounding (1e-6 leaves
    # a few ulps for the loop's different, equally valid way of gathering a batch)
    np.testing.assert_allclose(run.steps.loss, losses, rtol=1e-6)
    np.testing.assert_allclose(ev.models.flat_parameters(model), run.params(3, "end"), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(("name", "lr"), [("moons", 0.1), ("line", 0.03), ("digits", 0.1)])
def test_loss_keeps_falling_only_when_epochs_continue(name, lr):
    settings = {"epochs": 8, "lr": lr, "seed": 0}
    never = ev.train(name, reset="never", **settings).epochs.train_loss.to_numpy()
    reset = ev.train(name, reset="weights", **settings).epochs.train_loss.to_numpy()
    assert never[-1] < 0.7 * never[0]
    assert (np.diff(never)[1:] < 0.02 * never[0]).all(), f"loss rose between epochs: {never}"
    assert reset[-1] > 0.85 * reset[0], f"a reset run should not keep improving: {reset}"
    assert reset.min() > never[-1]


def test_a_diverging_learning_rate_ends_the_run_cleanly():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run = ev.train("moons", epochs=5, lr=1e6)
    assert run.diverged and run.diverged_at is not None
    epoch, step = run.diverged_at
    assert len(run.steps) == step - 1 and np.isfinite(run.steps.loss).all()
    assert run.completed_epochs == epoch - 1


def test_track_weights_keeps_the_weights_each_loss_was_measured_at():
    run = ev.train("line", model="linear", epochs=2, track_weights=True, reset="weights")
    weights = run.step_weights()
    assert weights.shape == (len(run.steps), 2)
    np.testing.assert_array_equal(weights[0], run.params(1, "start"))
    first_of_epoch_2 = run.steps.index[run.steps.epoch == 2][0]
    np.testing.assert_array_equal(weights[first_of_epoch_2], run.params(1, "start"))  # the reset


BAD_ARGUMENTS = [
    ({"epochs": 0}, ValueError, "epochs"),
    ({"epochs": 2.5}, TypeError, "epochs"),
    ({"batch_size": -1}, ValueError, "batch_size"),
    ({"lr": float("nan")}, ValueError, "lr"),
    ({"lr": 0}, ValueError, "lr"),
    ({"reset": "sometimes"}, ValueError, "reset"),
    ({"optimizer": "rmsprop2"}, ValueError, "optimizer"),
    ({"val_fraction": 1.5}, ValueError, "val_fraction"),
    ({"seed": -1}, ValueError, "seed"),
    ({"shuffle": "yes"}, TypeError, "shuffle"),
    ({"model": "transformer"}, ValueError, "model"),
    ({"device": "tpu"}, ValueError, "device"),
    ({"accumulate": 0}, ValueError, "accumulate"),
    ({"on_epoch": 3}, TypeError, "on_epoch"),
]


@pytest.mark.parametrize(("arguments", "error", "name"), BAD_ARGUMENTS)
def test_bad_arguments_are_refused_before_training_and_named(arguments, error, name, monkeypatch):
    monkeypatch.setattr(importlib.import_module("epochviz.train"), "_train_epochs", _must_not_train)
    with pytest.raises(error, match=name) as raised:
        ev.train("moons", **arguments)
    value = next(iter(arguments.values()))
    assert repr(value) in str(raised.value) or type(value).__name__ in str(raised.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_refused_by_name():
    with pytest.raises(ValueError, match=r"device='cuda'.*no CUDA"):
        ev.train("moons", device="cuda")


def test_bad_datasets_are_refused_by_name():
    x = torch.randn(10, 2)
    x[3, 1] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        ev.Dataset(x, torch.zeros(10, dtype=torch.int64), "classification", classes=("0", "1"))
    with pytest.raises(ValueError, match="one target per sample"):
        ev.Dataset(torch.randn(10, 2), torch.zeros(9, dtype=torch.int64), "classification", classes=("0", "1"))
    with pytest.raises(TypeError, match="data must be a Dataset"):
        ev.train(np.zeros((10, 2)))
    with pytest.raises(ValueError, match="data must be a Dataset or one of"):
        ev.train("mnist")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_trains_on_the_gpu_and_matches_the_cpu():
    seen = []
    gpu = ev.train("moons", device="cuda", epochs=3, on_epoch=lambda run: seen.append(run.model))
    assert next(gpu.model.parameters()).is_cuda and len(seen) == 3
    cpu = ev.train("moons", device="cpu", epochs=3)
    np.testing.assert_allclose(gpu.steps.loss, cpu.steps.loss, rtol=1e-4)


def _must_not_train(*args, **kwargs):
    raise AssertionError("training started before the arguments were checked")


def test_training_uses_the_threads_it_is_given_and_restores_torchs_setting():
    before = torch.get_num_threads()
    seen = []
    ev.train("moons", epochs=2, threads=1, on_epoch=lambda run: seen.append(torch.get_num_threads()))
    assert seen == [1, 1] and torch.get_num_threads() == before
    ev.train("moons", epochs=1, threads=None, on_epoch=lambda run: seen.append(torch.get_num_threads()))
    assert seen[-1] == before
