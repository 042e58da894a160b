"""`Watcher` (what `ev.watch()` runs) on a zoo of learners' own loops, each written as a learner writes it.

Every bug of issue 23 has a loop here that makes it, and every correct loop that a careless check would
flag has one too. Each loop must give exactly the findings listed for it: the same checks, starting at
the same epoch, and messages that name that epoch and the fix. Then: bad input (nested watching, a loop
that raises, …) never leaves a hook behind; watching changes no number the loop computes; the record
holds the very losses `.backward()` was called on.
"""

import contextlib
import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset, TensorDataset
from watched_loops import (
    BATCH_SIZE,
    DATA,
    EPOCHS,
    SAMPLES,
    dropout_net,
    global_hooks,
    momentum,
    one_torch_thread,  # noqa: F401  (an autouse fixture: pytest finds it by its name here)
    xor,
)

from epochviz.loop_checks import CHECKS
from epochviz.watching import Watcher

VALIDATION = xor(32, seed=1)


def batch_norm_net() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


def plain_net() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))


def adam(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=0.01)


def plain_sgd(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.1)


def shuffled(dataset=DATA) -> DataLoader:
    return DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True)


def fit_epoch(model, optimizer, loader, *, zero_grad: bool = True) -> None:
    """One epoch of the learner's loop: for each batch, forward, loss, backward, step."""
    for x, y in loader:
        if zero_grad:
            optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()


def validate(model, dataset=VALIDATION) -> float:
    model.eval()
    with torch.no_grad():
        return sum(F.cross_entropy(model(x), y).item() for x, y in DataLoader(dataset, batch_size=BATCH_SIZE))


# --- the zoo: buggy loops ---------------------------------------------------------------------------------


def model_built_inside_the_epoch_loop(w):
    loader = shuffled()
    for _ in range(EPOCHS):
        model = dropout_net()
        optimizer = momentum(model)
        fit_epoch(model, optimizer, loader)


def model_and_loader_built_inside_the_epoch_loop(w):
    for _ in range(EPOCHS):
        model = dropout_net()
        fit_epoch(model, plain_sgd(model), shuffled())


def initial_weights_loaded_every_epoch(w):
    model = dropout_net()
    optimizer = momentum(model)
    initial = copy.deepcopy(model.state_dict())
    loader = shuffled()
    for _ in range(EPOCHS):
        model.load_state_dict(initial)
        fit_epoch(model, optimizer, loader)


def optimizer_rebuilt_every_epoch(make_optimizer):
    def loop(w):
        model = dropout_net()
        loader = shuffled()
        for _ in range(EPOCHS):
            fit_epoch(model, make_optimizer(model), loader)

    return loop


def optimizer_state_cleared_every_epoch(make_optimizer):
    def loop(w):
        model = dropout_net()
        optimizer = make_optimizer(model)
        loader = shuffled()
        for _ in range(EPOCHS):
            optimizer.state.clear()
            fit_epoch(model, optimizer, loader)

    return loop


def zero_grad_never_called(w):
    model = dropout_net()
    optimizer = momentum(model)
    loader = shuffled()
    for _ in range(EPOCHS):
        fit_epoch(model, optimizer, loader, zero_grad=False)


def loader_without_shuffling(w):
    model = dropout_net()
    optimizer = momentum(model)
    loader = DataLoader(DATA, batch_size=BATCH_SIZE, shuffle=False)
    for _ in range(EPOCHS):
        fit_epoch(model, optimizer, loader)


def distributed_sampler(*, shuffle: bool, set_epoch: bool):
    def loop(w):
        model = dropout_net()
        optimizer = momentum(model)
        sampler = DistributedSampler(DATA, num_replicas=1, rank=0, shuffle=shuffle, seed=0)
        loader = DataLoader(DATA, batch_size=BATCH_SIZE, sampler=sampler)
        for epoch in range(EPOCHS):
            if set_epoch:
                sampler.set_epoch(epoch)
            fit_epoch(model, optimizer, loader)

    return loop


def gan(*, zero_discriminator_grads: bool):
    """The DCGAN tutorial's loop: the generator's backward pass adds to the discriminator's used gradients too."""

    def loop(w):
        generator = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        discriminator = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
        generator_optimizer, discriminator_optimizer = adam(generator), adam(discriminator)
        real_label, fake_label = torch.ones(BATCH_SIZE, 1), torch.zeros(BATCH_SIZE, 1)
        loader = shuffled()
        for _ in range(EPOCHS):
            for real, _ in loader:
                fake = generator(torch.randn(BATCH_SIZE, 4))
                # the discriminator learns to tell real from fake
                if zero_discriminator_grads:
                    discriminator_optimizer.zero_grad()
                real_loss = F.binary_cross_entropy_with_logits(discriminator(real), real_label)
                fake_loss = F.binary_cross_entropy_with_logits(discriminator(fake.detach()), fake_label)
                (real_loss + fake_loss).backward()
                discriminator_optimizer.step()
                # the generator learns to fool it
                generator_optimizer.zero_grad()
                F.binary_cross_entropy_with_logits(discriminator(fake), real_label).backward()
                generator_optimizer.step()

    return loop


def gradients_handled(how: str):
    def loop(w):
        model = dropout_net()
        optimizer = momentum(model)
        loader = shuffled()
        for _ in range(EPOCHS):
            for x, y in loader:
                if how == "model.zero_grad()":
                    model.zero_grad()
                elif how == "zero_grad(set_to_none=False)":
                    optimizer.zero_grad(set_to_none=False)
                F.cross_entropy(model(x), y).backward()
                nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
                optimizer.step()

    return loop


def validation_then_no_train_mode(make_model):
    def loop(w):
        model = make_model()
        optimizer = momentum(model)
        loader = shuffled()
        for _ in range(EPOCHS):
            fit_epoch(model, optimizer, loader)  # the bug: no model.train() before it
            validate(model)

    return loop


# --- the zoo: correct loops --------------------------------------------------------------------------------


def plain_loop(w):
    model = dropout_net()
    optimizer = momentum(model)
    loader = shuffled()
    for _ in range(EPOCHS):
        fit_epoch(model, optimizer, loader)


def gradient_accumulation(w):
    model = dropout_net()
    optimizer = adam(model)
    loader = DataLoader(DATA, batch_size=BATCH_SIZE // 2, shuffle=True)
    for _ in range(EPOCHS):
        for batch, (x, y) in enumerate(loader, start=1):
            (F.cross_entropy(model(x), y) / 2).backward()
            if batch % 2 == 0:  # two batches of 8 make one step of 16
                optimizer.step()
                optimizer.zero_grad()


def cross_validation(fold_data: str, folds: int = 4, epochs: int = 2):
    def loop(w):
        fold_of = torch.arange(SAMPLES) % folds
        for fold in range(folds):
            train_rows, val_rows = (fold_of != fold).nonzero().squeeze(1), (fold_of == fold).nonzero().squeeze(1)
            if fold_data == "Subset":
                train_data, val_data = Subset(DATA, train_rows.tolist()), Subset(DATA, val_rows.tolist())
            else:
                train_data, val_data = (
                    TensorDataset(*(t[rows] for t in DATA.tensors)) for rows in (train_rows, val_rows)
                )
            model = batch_norm_net()
            optimizer = adam(model)
            loader = shuffled(train_data)
            for _ in range(epochs):
                model.train()
                fit_epoch(model, optimizer, loader)
                validate(model, val_data)

    return loop


def resumed_into_new_objects_every_epoch(w):
    model = dropout_net()
    optimizer = adam(model)
    for _ in range(EPOCHS):
        fit_epoch(model, optimizer, shuffled())
        checkpoint = copy.deepcopy({"model": model.state_dict(), "optimizer": optimizer.state_dict()})
        model = dropout_net()  # as a new Python session would: new objects, the saved values
        model.load_state_dict(checkpoint["model"])
        optimizer = adam(model)
        optimizer.load_state_dict(checkpoint["optimizer"])


def frozen_first_layer(mode: str):
    def loop(w):
        model = dropout_net()
        model[0].requires_grad_(mode != "from epoch 2")
        if mode == "left out of the optimizer":
            optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1, momentum=0.9)
        else:
            optimizer = momentum(model)
        loader = shuffled()
        for epoch in range(EPOCHS):
            if mode == "from epoch 2" and epoch == 1:  # fine-tuning: train everything, then freeze the first layer
                model[0].requires_grad_(False)
            fit_epoch(model, optimizer, loader)

    return loop


def warm_restarts(w):
    model = dropout_net()
    optimizer = momentum(model)
    schedule = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=SAMPLES // BATCH_SIZE)
    loader = shuffled()
    for _ in range(EPOCHS):
        for x, y in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
            schedule.step()  # back to the full learning rate at every epoch's start


def validation_then_train_mode(w):
    model = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 2))
    optimizer = momentum(model)
    loader = shuffled()
    for _ in range(EPOCHS):
        model.train()
        fit_epoch(model, optimizer, loader)
        validate(model)


def persistent_workers(w):
    model = dropout_net()
    optimizer = momentum(model)
    loader = DataLoader(DATA, batch_size=BATCH_SIZE, shuffle=True, num_workers=2, persistent_workers=True)
    for _ in range(EPOCHS):
        fit_epoch(model, optimizer, loader)


def weights_constrained_after_every_step(constrain: Callable[[nn.Linear], None]):
    def loop(w):
        model = plain_net()
        optimizer = momentum(model)
        loader = shuffled()
        for _ in range(EPOCHS):
            for x, y in loader:
                optimizer.zero_grad()
                F.cross_entropy(model(x), y).backward()
                optimizer.step()
                with torch.no_grad():
                    constrain(model[0])

    return loop


PRUNED = torch.rand(8, 2, generator=torch.Generator().manual_seed(0)) < 0.5
CONSTRAINTS = {
    "clipped weights (WGAN)": lambda layer: layer.weight.clamp_(-0.05, 0.05),
    "max-norm": lambda layer: layer.weight.renorm_(2, 0, 0.1),
    "pruned weights": lambda layer: layer.weight.masked_fill_(PRUNED, 0.0),
}


def no_data_loader(mark_epochs: bool, new_model_each_epoch: bool = False):
    def loop(w):
        model = dropout_net()
        optimizer = momentum(model)
        x, y = DATA.tensors
        for _ in range(EPOCHS):
            if new_model_each_epoch:
                model = dropout_net()
                optimizer = momentum(model)
            for rows in torch.randperm(SAMPLES).split(BATCH_SIZE):
                optimizer.zero_grad()
                F.cross_entropy(model(x[rows]), y[rows]).backward()
                optimizer.step()
            if mark_epochs:
                w.epoch()

    return loop


@dataclass
class Case:
    loop: Callable[[Watcher], None]
    findings: dict[tuple[str, int | None], tuple[str, ...]] = field(default_factory=dict)  # → words its message holds
    runs: int = 1
    epochs: int = EPOCHS  # per run
    steps: int = SAMPLES // BATCH_SIZE  # per epoch


RESET = "create the model (and its optimizer) once"
OPTIMIZER_ONCE = "create the optimizer once"
TRAIN_MODE = "call model.train() at the start of every epoch"
ZOO = {
    # bugs
    "model built inside the epoch loop": Case(
        model_built_inside_the_epoch_loop, {("weights_reset", 2): ("new values", "'0.weight'", RESET)}
    ),
    "model and DataLoader built inside the epoch loop": Case(
        model_and_loader_built_inside_the_epoch_loop, {("weights_reset", 2): ("new values", RESET)}
    ),
    "initial weights loaded every epoch": Case(
        initial_weights_loaded_every_epoch, {("weights_reset", 2): ("back at their initial values", RESET)}
    ),
    "momentum SGD rebuilt every epoch": Case(
        optimizer_rebuilt_every_epoch(momentum), {("optimizer_reset", 2): ("SGD", "momentum_buffer", OPTIMIZER_ONCE)}
    ),
    "Adam rebuilt every epoch": Case(
        optimizer_rebuilt_every_epoch(adam), {("optimizer_reset", 2): ("Adam", "exp_avg", OPTIMIZER_ONCE)}
    ),
    "momentum SGD's state cleared every epoch": Case(
        optimizer_state_cleared_every_epoch(momentum), {("optimizer_reset", 2): ("momentum_buffer", OPTIMIZER_ONCE)}
    ),
    "Adam's state cleared every epoch": Case(
        optimizer_state_cleared_every_epoch(adam), {("optimizer_reset", 2): ("exp_avg_sq", OPTIMIZER_ONCE)}
    ),
    "zero_grad never called": Case(zero_grad_never_called, {("grads_not_zeroed", 1): ("optimizer.zero_grad()",)}),
    "zero_grad never called, gradients clipped": Case(
        gradients_handled("never zeroed"), {("grads_not_zeroed", 1): ("optimizer.zero_grad()",)}
    ),
    "GAN whose discriminator's gradients are never zeroed": Case(
        gan(zero_discriminator_grads=False), {("grads_not_zeroed", 1): ("optimizer.zero_grad()",)}, steps=8
    ),
    "no DataLoader, epochs not marked, model built inside the epoch loop": Case(
        no_data_loader(mark_epochs=False, new_model_each_epoch=True),
        {("weights_reset", 1): ("at new values", RESET), ("no_epochs_seen", None): ("w.epoch()",)},
        epochs=1,
        steps=12,
    ),
    "DataLoader without shuffling": Case(
        loader_without_shuffling, {("same_order", 2): ("Fix: DataLoader(..., shuffle=True)",)}
    ),
    "DistributedSampler without set_epoch": Case(
        distributed_sampler(shuffle=True, set_epoch=False), {("same_order", 2): ("Fix: call sampler.set_epoch(epoch)",)}
    ),
    "DistributedSampler(shuffle=False)": Case(
        distributed_sampler(shuffle=False, set_epoch=True),
        {("same_order", 2): ("DistributedSampler(..., shuffle=True)", "sampler.set_epoch(epoch)")},
    ),
    "validation in eval mode, never model.train(), dropout": Case(
        validation_then_no_train_mode(dropout_net), {("eval_mode_training", 2): ("eval mode", TRAIN_MODE)}
    ),
    "validation in eval mode, never model.train(), BatchNorm": Case(
        validation_then_no_train_mode(batch_norm_net), {("eval_mode_training", 2): ("eval mode", TRAIN_MODE)}
    ),
    # correct loops, and loops that look like a bug and are none
    "plain loop": Case(plain_loop),
    "plain SGD rebuilt every epoch (it keeps no state)": Case(optimizer_rebuilt_every_epoch(plain_sgd)),
    "validation in eval mode, never model.train(), no dropout or BatchNorm": Case(
        validation_then_no_train_mode(plain_net)
    ),
    "gradient accumulation": Case(gradient_accumulation, {("gradient_accumulation", None): ("2 backward passes",)}),
    "cross-validation on Subsets": Case(cross_validation("Subset"), runs=4, epochs=2, steps=3),
    "cross-validation on TensorDatasets": Case(cross_validation("TensorDataset"), runs=4, epochs=2, steps=3),
    "resumed into new objects every epoch": Case(resumed_into_new_objects_every_epoch),
    "frozen layer left out of the optimizer": Case(frozen_first_layer("left out of the optimizer")),
    "frozen layer inside the optimizer": Case(frozen_first_layer("inside the optimizer")),
    "layer frozen from epoch 2 on": Case(frozen_first_layer("from epoch 2")),
    "warm restarts": Case(warm_restarts),
    "gradients zeroed by model.zero_grad(), clipped": Case(gradients_handled("model.zero_grad()")),
    "gradients zeroed in place, clipped": Case(gradients_handled("zero_grad(set_to_none=False)")),
    "GAN (the generator's loss adds to the discriminator's gradients)": Case(
        gan(zero_discriminator_grads=True), steps=8
    ),
    **{name: Case(weights_constrained_after_every_step(constrain)) for name, constrain in CONSTRAINTS.items()},
    "validation in eval mode, then model.train()": Case(validation_then_train_mode),
    "DistributedSampler with set_epoch": Case(distributed_sampler(shuffle=True, set_epoch=True)),
    "persistent DataLoader workers": Case(persistent_workers),
    "no DataLoader, epochs marked with w.epoch()": Case(no_data_loader(mark_epochs=True)),
    "no DataLoader, epochs not marked": Case(
        no_data_loader(mark_epochs=False), {("no_epochs_seen", None): ("w.epoch()",)}, epochs=1, steps=12
    ),
}


def watched(loop: Callable[[Watcher], None], seed: int = 0) -> Watcher:
    torch.manual_seed(seed)
    with Watcher() as w:
        loop(w)
    return w


def found(w: Watcher) -> set[tuple[str, int | None]]:
    return {(f.check, f.epoch) for f in w.findings}


@pytest.mark.parametrize("case", ZOO.values(), ids=ZOO.keys())
def test_each_loop_gives_exactly_its_findings_and_is_counted_in_its_epochs(case):
    w = watched(case.loop)
    assert found(w) == set(case.findings)
    for f in w.findings:
        assert f.severity == CHECKS[f.check].severity
        assert f.run == 1
        when = "In this loop" if f.epoch is None else rf"In epochs? {f.epoch}\b"
        assert re.match(when, f.message), f.message
        for words in case.findings[(f.check, f.epoch)]:
            assert words in f.message
        if f.severity != "note":  # a bug or a warning says how to fix it, and it happens at every epoch from then on
            assert "Fix: " in f.message
            assert f.epochs == tuple(range(f.epoch, case.epochs + 1))
    epochs = w.run.epochs
    assert epochs.run.tolist() == [run for run in range(1, case.runs + 1) for _ in range(case.epochs)]
    assert epochs.epoch.tolist() == list(range(1, case.epochs + 1)) * case.runs
    assert epochs.steps.tolist() == [case.steps] * (case.runs * case.epochs)


def test_the_zoo_makes_every_bug_and_warning_the_watcher_knows():
    made = {check for case in ZOO.values() for check, _ in case.findings}
    assert {name for name, check in CHECKS.items() if check.severity != "note"} <= made


@pytest.mark.parametrize("other_data", [True, False], ids=["other data: a new run", "the same data: a reset"])
def test_the_same_seeded_model_built_again_is_a_new_run_on_other_data_and_a_reset_on_the_same(other_data):
    def seeded_folds(w):
        for fold in range(2):
            torch.manual_seed(0)  # both folds start from the very same weights
            model = dropout_net()
            optimizer = momentum(model)
            loader = shuffled(Subset(DATA, list(range(fold if other_data else 0, SAMPLES, 2))))
            for _ in range(2):
                fit_epoch(model, optimizer, loader)

    w = watched(seeded_folds)
    if other_data:
        assert found(w) == set()
        assert w.run.epochs.run.tolist() == [1, 1, 2, 2]
    else:
        assert found(w) == {("weights_reset", 3)}
        assert "back at their initial values" in w.findings[0].message
        assert w.run.epochs.epoch.tolist() == [1, 2, 3, 4]


# --- the record ----------------------------------------------------------------------------------------------


def test_the_record_holds_one_row_per_step_with_the_loss_backward_was_called_on():
    losses = []

    def loop(w):
        model = dropout_net()
        optimizer = momentum(model)
        loader = DataLoader(DATA, batch_size=24, shuffle=True)  # 24, 24 and a last batch of 16
        for _ in range(EPOCHS):
            for x, y in loader:
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                optimizer.step()
                losses.append(loss.item())

    w = watched(loop)
    steps, epochs = w.run.steps, w.run.epochs
    assert steps.step.tolist() == list(range(1, 3 * EPOCHS + 1))
    assert steps.epoch.tolist() == [epoch for epoch in range(1, EPOCHS + 1) for _ in range(3)]
    assert steps.batch.tolist() == [1, 2, 3] * EPOCHS
    assert (steps.backward_passes == 1).all()
    np.testing.assert_array_equal(steps.loss.to_numpy(), losses)
    np.testing.assert_allclose(epochs.train_loss, np.reshape(losses, (EPOCHS, 3)).mean(axis=1), rtol=1e-12, atol=0)
    assert epochs.batches.tolist() == [3] * EPOCHS and epochs.complete.all()
    assert epochs.first_step.tolist() == [1, 4, 7] and epochs.last_step.tolist() == [3, 6, 9]


def test_an_accumulated_step_records_the_mean_of_the_losses_that_fed_it():
    losses = []

    def loop(w):
        model = dropout_net()
        optimizer = adam(model)
        for _ in range(EPOCHS):
            for batch, (x, y) in enumerate(DataLoader(DATA, batch_size=8, shuffle=True), start=1):
                loss = F.cross_entropy(model(x), y) / 2
                loss.backward()
                losses.append(loss.item())
                if batch % 2 == 0:
                    optimizer.step()
                    optimizer.zero_grad()

    steps = watched(loop).run.steps
    assert (steps.backward_passes == 2).all() and steps.batch.tolist() == [2, 4, 6, 8] * EPOCHS
    np.testing.assert_allclose(steps.loss, np.reshape(losses, (-1, 2)).mean(axis=1), rtol=1e-6)


@pytest.mark.parametrize("make_optimizer", [momentum, adam], ids=["momentum", "Adam"])
def test_watching_changes_no_number_the_loop_computes(make_optimizer):
    """With dropout and shuffling, every weight, every loss and the random generator's state end up the same."""

    def train(watch: bool):
        torch.manual_seed(0)
        model = dropout_net()
        optimizer = make_optimizer(model)
        loader = shuffled()
        losses = []
        with Watcher() if watch else contextlib.nullcontext():
            for _ in range(EPOCHS):
                model.train()
                for x, y in loader:
                    optimizer.zero_grad()
                    loss = F.cross_entropy(model(x), y)
                    loss.backward()
                    optimizer.step()
                    losses.append(loss.item())
                validate(model)
        return list(model.parameters()), losses, torch.get_rng_state()

    plain, watched_ = train(watch=False), train(watch=True)
    assert all(torch.equal(p, q) for p, q in zip(plain[0], watched_[0], strict=True))
    assert plain[1] == watched_[1]
    assert torch.equal(plain[2], watched_[2])


def test_the_summary_says_what_was_found_in_words():
    assert "Nothing was reset" in watched(plain_loop).summary()
    buggy = watched(ZOO["model built inside the epoch loop"].loop)
    summary = buggy.summary()
    assert summary.startswith(f"Watched {EPOCHS} epochs, {EPOCHS * 4} optimizer steps. Found 1 problem:")
    assert buggy.findings[0].message in summary


def test_on_update_sees_the_finished_record_last():
    seen = []
    torch.manual_seed(0)
    with Watcher(on_update=lambda w: seen.append(len(w.run.steps))) as w:
        plain_loop(w)
    assert seen[-1] == EPOCHS * 4 and seen == sorted(seen)


# --- bad input: a clear message or a note, never a crash inside the loop, and no hook left behind ----------------


def test_a_nested_watch_is_refused_at_the_inner_with_and_the_outer_one_watches_on():
    before = global_hooks()
    torch.manual_seed(0)
    model = dropout_net()
    optimizer = momentum(model)
    with Watcher() as outer:
        assert global_hooks() != before
        with pytest.raises(RuntimeError, match=r"already watching.*Remove the inner one"), Watcher():
            pytest.fail("the inner block ran")
        for _ in range(2):
            fit_epoch(model, optimizer, shuffled())
    assert global_hooks() == before
    assert found(outer) == set()
    assert outer.run.epochs.steps.tolist() == [4, 4]
    with Watcher() as again:  # the refusal left nothing behind that blocks the next watch
        fit_epoch(model, optimizer, shuffled())
    assert len(again.run.steps) == 4


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_a_loop_that_raises_leaves_no_hook_behind(error):
    before = global_hooks()
    torch.manual_seed(0)
    model = dropout_net()
    optimizer = momentum(model)
    with pytest.raises(error, match="the learner's own"), Watcher() as w:
        fit_epoch(model, optimizer, shuffled())
        for x, y in shuffled():
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            raise error("the learner's own error, between backward and step")
    assert global_hooks() == before
    assert w.run.steps.step.tolist() == [1, 2, 3, 4]
    assert found(w) == set()
    with Watcher() as again:
        fit_epoch(model, optimizer, shuffled())
    assert len(again.run.steps) == 4


class FailsOnce(nn.Module):
    """A layer whose first call raises, deep inside the model: a bad batch the loop skips."""

    def __init__(self):
        super().__init__()
        self.failed = False

    def forward(self, x):
        if not self.failed:
            self.failed = True
            raise RuntimeError("a bad batch")
        return x


def test_an_error_the_loop_catches_inside_the_forward_pass_leaves_the_checks_working():
    def loop(w):
        model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Dropout(0.2), FailsOnce(), nn.Linear(8, 2))
        optimizer = momentum(model)
        loader = shuffled()
        for _ in range(EPOCHS):
            for x, y in loader:
                optimizer.zero_grad()
                try:
                    loss = F.cross_entropy(model(x), y)
                except RuntimeError:
                    continue
                loss.backward()
                optimizer.step()
            validate(model)  # and never model.train(): still found

    w = watched(loop)
    assert found(w) == {("eval_mode_training", 2)}
    assert w.run.epochs.steps.tolist() == [3, 4, 4]


def test_a_loop_without_an_optimizer_gets_a_note():
    torch.manual_seed(0)
    model = plain_net()
    with Watcher() as w:
        for _ in range(2):
            for x, y in shuffled():
                model.zero_grad()
                F.cross_entropy(model(x), y).backward()
                with torch.no_grad():
                    for parameter in model.parameters():
                        parameter -= 0.1 * parameter.grad
    assert found(w) == {("no_optimizer_step", None)}
    assert "8 backward passes ran and no optimizer stepped" in w.findings[0].message
    assert w.run.steps.empty and w.run.epochs.empty
    assert w.summary().startswith("Watched 0 epochs, 0 optimizer steps. No optimizer step was seen")


def test_backward_on_a_tensor_with_a_gradient_is_a_note_and_draws_its_mean():
    means = []

    def loop(w):
        model = dropout_net()
        optimizer = momentum(model)
        for _ in range(2):
            for x, y in shuffled():
                optimizer.zero_grad()
                losses = F.cross_entropy(model(x), y, reduction="none")
                losses.backward(gradient=torch.full_like(losses, 1 / len(losses)))
                optimizer.step()
                means.append(losses.detach().mean().item())

    w = watched(loop)
    assert found(w) == {("not_scalar_loss", 1)}
    assert f"a tensor of shape ({BATCH_SIZE},)" in w.findings[0].message
    np.testing.assert_array_equal(w.run.steps.loss.to_numpy(), means)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_a_model_in_another_dtype_is_watched_like_any_other(dtype):
    losses = []

    def loop(w):
        model = dropout_net().to(dtype)
        optimizer = momentum(model)
        loader = DataLoader(TensorDataset(DATA.tensors[0].to(dtype), DATA.tensors[1]), batch_size=16, shuffle=True)
        for _ in range(EPOCHS):
            for x, y in loader:
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                optimizer.step()
                losses.append(loss.item())

    w = watched(loop)
    assert found(w) == set()
    np.testing.assert_array_equal(w.run.steps.loss.to_numpy(), losses)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("rebuild_optimizer", [False, True])
def test_a_model_on_the_gpu_is_watched_like_any_other(rebuild_optimizer):
    def loop(w):
        model = dropout_net().cuda()
        optimizer = momentum(model)
        for _ in range(EPOCHS):
            if rebuild_optimizer:
                optimizer = momentum(model)
            for x, y in shuffled():
                optimizer.zero_grad()
                F.cross_entropy(model(x.cuda()), y.cuda()).backward()
                optimizer.step()

    w = watched(loop)
    assert found(w) == ({("optimizer_reset", 2)} if rebuild_optimizer else set())
    assert w.run.epochs.steps.tolist() == [4] * EPOCHS
