"""The gallery of jumping loss curves: each cause's run really shows its jump, measured, not drawn."""

import numpy as np
import pytest

import epochviz as ev
from epochviz import jumps
from epochviz.plots.gallery import jump_curve
from epochviz.plots.reported import running_average
from epochviz.schedules import learning_rates


@pytest.fixture(scope="module")
def gallery():
    return {jump.cause.name: jump for jump in jumps.gallery().values()}


def test_every_cause_has_one_builder_and_one_place_in_the_quiz():
    assert set(jumps.BUILDERS) == set(jumps.CAUSES) == set(jumps.MYSTERY_ORDER)
    assert len(jumps.MYSTERY_ORDER) == len(jumps.CAUSES)
    assert list(jumps.MYSTERY_ORDER) != list(jumps.CAUSES), "the quiz must not list the curves in the table's order"
    assert all(cause.curve in jumps.CURVES for cause in jumps.CAUSES.values())


def test_reset_weights_starts_every_epoch_at_epoch_one_s_loss(gallery):
    edges = gallery["reset"].edges
    assert (edges.train_loss_at_start == edges.train_loss_at_start.iloc[0]).all()
    assert (edges.train_loss_at_end < edges.train_loss_at_start - 0.1).all()  # each epoch learns, then loses it


def test_sorted_data_without_shuffling_jumps_where_the_second_class_begins(gallery):
    run = gallery["sorted"].run
    switch = jumps.class_switch(run)
    steps = run.steps.query("epoch > 1")
    before = steps.query("batch == @switch - 1").loss.to_numpy()
    after = steps.query("batch == @switch + 1").loss.to_numpy()
    assert (after > before).all()
    labels = run.data.y[run.train_indices].numpy()
    assert labels[(switch - 1) * run.config.batch_size - 1] == labels[0] != labels[switch * run.config.batch_size]


def test_the_progress_bar_drops_at_the_edges_while_the_batch_loss_does_not(gallery):
    run = gallery["progress_bar"].run
    printed, losses = (
        running_average(run).reshape(jumps.EPOCHS, -1),
        run.steps.loss.to_numpy().reshape(jumps.EPOCHS, -1),
    )
    printed_drop = printed[:-1, -1] - printed[1:, 2]  # from an epoch's end to three batches into the next
    batch_change = losses[1:, :3].mean(axis=1) - losses[:-1, -3:].mean(axis=1)
    assert (printed_drop > 0).sum() >= len(printed_drop) - 1  # at nearly every edge, not on average alone
    assert printed_drop.mean() > 2 * abs(batch_change.mean())


def test_warm_restarts_put_the_learning_rate_back_at_every_epoch_start_and_the_loss_rises(gallery):
    run = gallery["warm_restarts"].run
    rates = learning_rates("warm_restarts", run.config.lr, run.steps_per_epoch, run.total_steps)
    starts = rates[:: run.steps_per_epoch]
    assert np.allclose(starts, run.config.lr) and (rates[run.steps_per_epoch - 1 :: run.steps_per_epoch] < 0.01).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_warm_restart_rise_holds_for_other_seeds_and_not_without_the_schedule(seed):
    restarted = jumps.BUILDERS["warm_restarts"](seed).run
    settings = {key: getattr(restarted.config, key) for key in ("model", "epochs", "batch_size", "lr", "seed")}
    constant = ev.train(restarted.data, **settings)
    assert jumps.restart_rise(restarted) > 1.15 > jumps.restart_rise(constant) + 0.1


def test_dropout_batches_sit_above_the_evaluation_at_each_epoch_end(gallery):
    jump = gallery["dropout"]
    last_batches = jump.run.steps.groupby("epoch").loss.apply(lambda losses: losses.tail(3).mean()).to_numpy()
    assert last_batches.mean() > jump.edges.train_loss_at_end.mean() + 0.03
    x, y = jump_curve(jump)
    at_ends = np.flatnonzero(np.isin(y, jump.edges.train_loss_at_end.to_numpy()))
    assert np.allclose(x[at_ends], np.arange(1, jumps.EPOCHS + 1))  # each evaluation sits at its epoch's end


def test_the_dropout_module_does_not_move_your_random_numbers():
    import torch

    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    jumps.dropout_mlp(0)
    assert torch.equal(torch.rand(3), expected)


def test_the_gallery_hides_causes_until_revealed(gallery):
    numbered = jumps.gallery()
    hidden = ev.plots.jump_gallery(numbered)
    titles = [note.text for note in hidden.layout.annotations]
    assert titles == [f"curve {n}" for n in numbered]
    shown = [note.text for note in ev.plots.jump_gallery(numbered, reveal=True).layout.annotations]
    assert all(jump.cause.name.replace("_", " ") in text for jump, text in zip(numbered.values(), shown, strict=True))


def test_lr_beside_loss_draws_the_rate_each_step_trained_with(gallery):
    run = gallery["warm_restarts"].run
    figure = ev.plots.lr_beside_loss(run)
    assert np.allclose(figure.data[1].y, learning_rates("warm_restarts", 0.7, run.steps_per_epoch, run.total_steps))


def test_gallery_checks_its_seed():
    with pytest.raises((ValueError, TypeError), match="seed"):
        jumps.gallery(seed=-1)
