"""The oracle for `ev.train`: the ten lines of plain PyTorch that notebook 02 shows.

Written out here as a learner would copy them (a model created once, before the epoch loop;
then for each batch: forward, loss, backward, step), they must give `ev.train`'s losses and
weights to the last bit. Moving the model's creation inside the epoch loop, the classic bug,
must give exactly what the reset policy that models it gives.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import epochviz as ev
from epochviz.data import epoch_seed
from epochviz.threads import torch_threads

DATA = ev.moons(n=150, seed=3)
SEED = 4


def plain_loop(run, *, epochs, batch_size, lr, momentum, new_model_each_epoch=None):
    """The notebook's loop. `new_model_each_epoch(epoch)`, if given, is the bug: a seed to re-create the model from."""
    train_split = run.data.subset(run.train_indices)
    model = ev.mlp(2, 2, seed=SEED)  # initialise once, before the epoch loop
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    step_losses, epoch_losses = [], []
    for epoch in range(1, epochs + 1):
        if new_model_each_epoch is not None:
            model = ev.mlp(2, 2, seed=new_model_each_epoch(epoch))
            optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
        losses, sizes = [], []
        for batch in torch.as_tensor(run.sample_order(epoch)).split(batch_size):
            loss = F.cross_entropy(model(train_split.x[batch]), train_split.y[batch])  # forward, loss
            optimizer.zero_grad()
            loss.backward()  # backward
            optimizer.step()  # step
            losses.append(loss.item())
            sizes.append(len(batch))
        step_losses += losses
        epoch_losses.append(np.dot(losses, sizes) / sum(sizes))  # the mean over samples, as ev.train records it
    return (
        np.array(step_losses),
        np.array(epoch_losses),
        torch.cat([p.detach().reshape(-1) for p in model.parameters()]),
    )


def _both(reset, *, batch_size, optimizer, new_model_each_epoch=None, epochs=4, lr=0.1):
    run = ev.train(DATA, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, reset=reset, seed=SEED)
    momentum = ev.objectives.MOMENTUM if optimizer == "momentum" else 0.0
    with torch_threads(1):  # the thread count ev.train used, so every sum adds up in the same order
        plain = plain_loop(run, epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum,
                           new_model_each_epoch=new_model_each_epoch)  # fmt: skip
    return run, plain


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
@pytest.mark.parametrize("batch_size", [30, 32], ids=["equal batches", "a smaller last batch"])
def test_the_plain_loop_is_ev_train(batch_size, optimizer):
    run, (step_losses, epoch_losses, end_weights) = _both("never", batch_size=batch_size, optimizer=optimizer)
    np.testing.assert_array_equal(step_losses, run.steps.loss.to_numpy())
    np.testing.assert_allclose(epoch_losses, run.epochs.train_loss.to_numpy(), rtol=1e-12, atol=0)
    np.testing.assert_array_equal(end_weights.numpy(), run.params(run.completed_epochs, "end"))


def test_re_creating_the_same_seeded_model_inside_the_loop_is_reset_weights():
    run, (step_losses, epoch_losses, _) = _both(
        "weights", batch_size=32, optimizer="momentum", new_model_each_epoch=lambda epoch: SEED
    )
    np.testing.assert_array_equal(step_losses, run.steps.loss.to_numpy())
    np.testing.assert_allclose(epoch_losses, run.epochs.train_loss.to_numpy(), rtol=1e-12, atol=0)
    never = ev.train(DATA, epochs=4, batch_size=32, optimizer="momentum", seed=SEED)
    assert epoch_losses[-1] > never.epochs.train_loss.iloc[-1] + 0.05  # the bug loses what the epochs learned


def test_re_creating_an_unseeded_model_inside_the_loop_is_reinit():
    """A model class drawing new random weights every time it is built: a new start every epoch."""
    new_seed = lambda epoch: SEED if epoch == 1 else epoch_seed(SEED, epoch)  # noqa: E731  (what reinit draws from)
    run, (step_losses, _, _) = _both("reinit", batch_size=32, optimizer="sgd", new_model_each_epoch=new_seed)
    np.testing.assert_array_equal(step_losses, run.steps.loss.to_numpy())


def _training_loss(model, run):
    rows = run.data.subset(run.train_indices)
    with torch.no_grad():
        return float(F.cross_entropy(model(rows.x), rows.y))


@pytest.mark.parametrize("reset", ["never", "weights"])
def test_losses_at_epoch_edges_measure_the_training_split_with_each_epochs_weights(reset):
    run = ev.train(DATA, epochs=3, reset=reset, seed=SEED)
    edges = ev.losses_at_epoch_edges(run)
    assert edges.epoch.tolist() == [1, 2, 3]
    assert edges.train_loss_at_start[0] == pytest.approx(_training_loss(ev.mlp(2, 2, seed=SEED), run), rel=1e-6)
    assert edges.train_loss_at_end.iloc[-1] == pytest.approx(_training_loss(run.model, run), rel=1e-6)
    np.testing.assert_array_equal(edges.train_loss, run.epochs.train_loss)
    np.testing.assert_array_equal(edges.val_loss, run.epochs.val_loss)
    starts, ends = edges.train_loss_at_start.to_numpy(), edges.train_loss_at_end.to_numpy()
    if reset == "never":  # each epoch starts where the last one ended
        np.testing.assert_array_equal(starts[1:], ends[:-1])
    else:  # each epoch starts from the same untrained weights
        np.testing.assert_array_equal(starts, starts[0])


def test_an_early_epochs_average_lags_behind_its_end_weights():
    """Why a validation loss can sit below the training loss: the epoch's average was taken while it learned."""
    edges = ev.losses_at_epoch_edges(ev.train(DATA, epochs=1, seed=SEED))
    assert edges.train_loss_at_start[0] > edges.train_loss[0] > edges.train_loss_at_end[0]


def test_losses_at_epoch_edges_refuses_what_is_not_a_run_with_a_model():
    with pytest.raises(TypeError, match="run must be a Run"):
        ev.losses_at_epoch_edges(ev.summarize(ev.train(DATA, epochs=1)))
    run = ev.train(DATA, epochs=1)
    run.model = None
    with pytest.raises(ValueError, match="run holds no model"):
        ev.losses_at_epoch_edges(run)
