"""Reset policies: one home, and every part of epochviz carries out and draws each one."""

import numpy as np
import pytest
import torch
from torch import nn

import epochviz as ev
from epochviz.batched import train_many
from epochviz.models import fresh_weights, mlp
from epochviz.plots.style import OTHER_COLOURS, series_colours
from epochviz.policies import POLICIES, RESETS, WEIGHTS
from epochviz.widgets import controls

MOONS = ev.moons(n=120)


def test_every_policy_has_everything_the_package_looks_up():
    colours = [policy.colour for policy in POLICIES.values()]
    assert len(set(colours)) == len(colours) and not set(colours) & set(OTHER_COLOURS)
    assert len({policy.dash for policy in POLICIES.values()}) == len(POLICIES)
    assert len({policy.label for policy in POLICIES.values()}) == len(POLICIES)
    for name, policy in POLICIES.items():
        assert policy.name == name and policy.weights in WEIGHTS and policy.tooltip
        assert series_colours([name]) == [policy.colour]
    buttons = controls.reset_buttons()
    assert [value for _, value in buttons.options] == list(RESETS)
    assert list(buttons.tooltips) == [policy.tooltip for policy in POLICIES.values()]


@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_train_many_carries_out_every_policy_as_train_does(reset, optimizer):
    lr = 0.01 if optimizer == "adam" else 0.1
    (batched,) = train_many(MOONS, [{"reset": reset}], epochs=3, batch_size=16, optimizer=optimizer, lr=lr)
    alone = ev.train(MOONS, reset=reset, epochs=3, batch_size=16, optimizer=optimizer, lr=lr)
    # batched products add in another order: float32 rounding only (see test_batched.py)
    np.testing.assert_allclose(batched.steps.loss, alone.steps.loss, rtol=1e-5)
    for epoch in (1, 2, 3):
        np.testing.assert_allclose(batched.params(epoch, "start"), alone.params(epoch, "start"), rtol=1e-5, atol=1e-6)


def test_each_policy_starts_an_epoch_where_it_says():
    runs = {reset: ev.train(MOONS, reset=reset, epochs=4, batch_size=16) for reset in RESETS}
    for reset, run in runs.items():
        starts = [run.params(epoch, "start") for epoch in (2, 3, 4)]
        ends = [run.params(epoch, "end") for epoch in (1, 2, 3)]
        weights = POLICIES[reset].weights
        continued = [np.array_equal(start, end) for start, end in zip(starts, ends, strict=True)]
        assert all(continued) == (weights == "continue") and any(continued) == (weights == "continue")
        back_at_first = [np.array_equal(start, run.params(1, "start")) for start in starts]
        assert all(back_at_first) == (weights == "initial") and any(back_at_first) == (weights == "initial")


def test_reinit_draws_new_weights_every_epoch_from_the_seed_alone():
    run = ev.train(MOONS, reset="reinit", epochs=4, batch_size=16, seed=3)
    starts = [run.params(epoch, "start") for epoch in (1, 2, 3, 4)]
    assert len({start.tobytes() for start in starts}) == 4  # a new start every epoch
    again = ev.train(MOONS, reset="reinit", epochs=4, batch_size=16, seed=3)
    np.testing.assert_array_equal(again.params(4, "start"), starts[3])  # and the same ones on every call
    # each start is a brand-new model's, of the same kind: the spread of its weights is an initial one
    first_layer = [start[:64].std() for start in starts]
    np.testing.assert_allclose(first_layer, first_layer[0], rtol=0.35)


def test_reinit_resumes_to_the_same_run():
    whole = ev.train(MOONS, reset="reinit", epochs=4, batch_size=16)
    halves = ev.resume(ev.train(MOONS, reset="reinit", epochs=2, batch_size=16), epochs=4)
    np.testing.assert_array_equal(halves.steps.loss, whole.steps.loss)


def test_fresh_weights_are_what_a_new_model_of_that_seed_holds():
    for seed in (0, 7, 2**40):
        expected = mlp(2, 2, seed=seed).state_dict()
        fresh = fresh_weights(mlp(2, 2, seed=1), seed)
        assert fresh.keys() == expected.keys()
        for name in expected:
            torch.testing.assert_close(fresh[name], expected[name], rtol=0, atol=0)


def test_reinit_works_for_your_own_module_too():
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(nn.Linear(2, 8), nn.LayerNorm(8), nn.Linear(8, 2))

        def forward(self, x):
            return self.layers(x)

    module = Tiny()
    held = {name: value.clone() for name, value in module.state_dict().items()}
    run = ev.train(MOONS, model=module, reset="reinit", epochs=3, batch_size=16)
    assert not np.array_equal(run.params(2, "start"), run.params(1, "end"))
    assert not np.array_equal(run.params(2, "start"), run.params(3, "start"))
    for name, value in module.state_dict().items():  # the module you hold is never changed
        torch.testing.assert_close(value, held[name], rtol=0, atol=0)
