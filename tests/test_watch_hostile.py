"""`Watcher` on loops that learners really write and test_watch.py's zoo does not: loss modules, HuggingFace-style
models called with keyword arguments on dict batches, LBFGS, mixed precision with a GradScaler, two loaders in one
epoch, partial epochs, schedulers, optimizers of every kind, threads. Each must give exactly the findings listed, count
its epochs and steps right, record the loss the learner computed and leave no hook behind.
"""

import contextlib
import copy
import itertools
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, IterableDataset
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

from epochviz.watching import Watcher


def loader(shuffle: bool = True, **kwargs) -> DataLoader:
    return DataLoader(DATA, batch_size=BATCH_SIZE, shuffle=shuffle, **kwargs)


def watched(loop, seed: int = 0) -> Watcher:
    torch.manual_seed(seed)
    with Watcher() as w:
        loop(w)
    return w


def found(w: Watcher) -> set[tuple[str, int | None]]:
    return {(f.check, f.epoch) for f in w.findings}


def steps_per_epoch(w: Watcher) -> list[int]:
    return w.run.epochs.steps.tolist()


# --- the loss computed by a module: it must not be taken for the model ------------------------------------------


def loss_module_loop(*, shuffle: bool, train_mode: bool):
    def loop(w):
        model, criterion = dropout_net(), nn.CrossEntropyLoss()
        optimizer = momentum(model)
        batches = loader(shuffle)
        for _ in range(EPOCHS):
            if train_mode:
                model.train()
            for x, y in batches:
                optimizer.zero_grad()
                criterion(model(x), y).backward()  # the last module called before backward is the loss
                optimizer.step()
            model.eval()

    return loop


def test_a_loss_module_called_after_the_model_hides_neither_eval_mode_nor_the_same_order():
    """nn.CrossEntropyLoss() is a module too, called last: the model is the module with parameters to train."""
    w = watched(loss_module_loop(shuffle=False, train_mode=False))
    assert found(w) == {("eval_mode_training", 2), ("same_order", 2)}
    assert "Sequential was in eval mode" in next(f.message for f in w.findings if f.check == "eval_mode_training")


def test_a_loss_module_in_a_correct_loop_gives_nothing():
    w = watched(loss_module_loop(shuffle=True, train_mode=True))
    assert found(w) == set()
    assert steps_per_epoch(w) == [4] * EPOCHS


def test_a_model_rebuilt_every_epoch_names_its_layer_although_the_loss_is_a_module():
    def loop(w):
        criterion, batches = nn.CrossEntropyLoss(), loader()
        for _ in range(EPOCHS):
            model = dropout_net()
            optimizer = momentum(model)
            for x, y in batches:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                optimizer.step()

    w = watched(loop)
    assert found(w) == {("weights_reset", 2)}
    assert "'0.weight'" in w.findings[0].message


def test_a_frozen_teacher_in_eval_mode_called_with_grad_on_is_not_the_model_trained():
    """Distillation: the teacher (dropout, eval mode, frozen) runs outside no_grad after the student. No finding."""

    def loop(w):
        student, teacher = dropout_net(), dropout_net().eval().requires_grad_(False)
        optimizer = momentum(student)
        for _ in range(EPOCHS):
            for x, y in loader():
                optimizer.zero_grad()
                logits = student(x)
                soft = F.softmax(teacher(x), dim=1)
                (F.cross_entropy(logits, y) + F.cross_entropy(logits, soft)).backward()
                optimizer.step()

    assert found(watched(loop)) == set()


# --- HuggingFace style: dict batches, keyword arguments, outputs that hold the loss ---------------------------------


class TinyLanguageModel(nn.Module):
    """Called as HuggingFace models are, `model(**batch)`, and returning a dict with the loss in it."""

    def __init__(self):
        super().__init__()
        self.body = dropout_net()

    def forward(self, input_ids=None, labels=None):
        logits = self.body(input_ids)
        return {"loss": F.cross_entropy(logits, labels), "logits": logits}


def as_dict(samples) -> dict:
    inputs, labels = zip(*samples, strict=True)
    return {"input_ids": torch.stack(inputs), "labels": torch.stack(labels)}


@pytest.mark.parametrize("shuffle", [False, True], ids=["no shuffling", "shuffled"])
@pytest.mark.parametrize("call", ["model(**batch)", "model(batch['input_ids'], ...)"])
def test_a_model_called_with_keywords_on_dict_batches_is_checked_for_the_same_order(shuffle, call):
    def loop(w):
        model = TinyLanguageModel()
        optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
        batches = DataLoader(DATA, batch_size=BATCH_SIZE, shuffle=shuffle, collate_fn=as_dict)
        for _ in range(EPOCHS):
            for batch in batches:
                if call == "model(**batch)":
                    outputs = model(**batch)
                else:
                    outputs = model(batch["input_ids"], labels=batch["labels"])
                outputs["loss"].backward()
                optimizer.step()
                optimizer.zero_grad()

    w = watched(loop)
    assert found(w) == (set() if shuffle else {("same_order", 2)})
    assert steps_per_epoch(w) == [4] * EPOCHS


def test_a_model_given_the_whole_dict_batch_is_checked_for_the_same_order():
    class TakesDict(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = dropout_net()

        def forward(self, batch):
            return self.body(batch["input_ids"])

    def loop(w):
        model = TakesDict()
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        for _ in range(EPOCHS):
            for batch in DataLoader(DATA, batch_size=BATCH_SIZE, collate_fn=as_dict):
                optimizer.zero_grad()
                F.cross_entropy(model(batch), batch["labels"]).backward()
                optimizer.step()

    assert found(watched(loop)) == {("same_order", 2)}


# --- optimizers and schedulers of every kind ------------------------------------------------------------------------


def test_lbfgs_evaluating_its_closure_many_times_is_one_step_with_the_loss_step_returns():
    """LBFGS calls the closure (and backward) up to max_iter times inside one step(): not gradient accumulation."""
    returned = []

    def loop(w):
        model = dropout_net()
        optimizer = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=5)
        for _ in range(EPOCHS):
            for x, y in loader():

                def closure(x=x, y=y):
                    optimizer.zero_grad()
                    loss = F.cross_entropy(model(x), y)
                    loss.backward()
                    return loss

                returned.append(optimizer.step(closure).item())

    w = watched(loop)
    assert found(w) == set()
    assert (w.run.steps.backward_passes == 1).all()
    np.testing.assert_array_equal(w.run.steps.loss.to_numpy(), returned)


OPTIMIZERS = {
    "AdamW": lambda params: torch.optim.AdamW(params, lr=0.01),
    "RMSprop": lambda params: torch.optim.RMSprop(params, lr=0.01),
    "Adagrad": lambda params: torch.optim.Adagrad(params, lr=0.01),  # builds its state in __init__, zeros
    "NAdam": lambda params: torch.optim.NAdam(params, lr=0.01),
    "SGD nesterov": lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True),
    "two param groups": lambda params: torch.optim.Adam(
        [{"params": params[:2], "lr": 0.01}, {"params": params[2:], "lr": 0.001}]
    ),
}


@pytest.mark.parametrize("rebuild", [False, True], ids=["built once", "rebuilt every epoch"])
@pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_every_optimizer_with_state_is_found_rebuilt_and_left_alone_built_once(make, rebuild):
    def loop(w):
        model = dropout_net()
        optimizer = make(list(model.parameters()))
        for _ in range(EPOCHS):
            if rebuild:
                optimizer = make(list(model.parameters()))
            for x, y in loader():
                optimizer.zero_grad()
                F.cross_entropy(model(x), y).backward()
                optimizer.step()

    assert found(watched(loop)) == ({("optimizer_reset", 2)} if rebuild else set())


@pytest.mark.parametrize("schedule", ["OneCycleLR per batch", "ReduceLROnPlateau per epoch", "StepLR per epoch"])
def test_learning_rate_schedules_that_change_momentum_or_rate_are_no_reset(schedule):
    def loop(w):
        model = dropout_net()
        optimizer = momentum(model)
        if schedule.startswith("OneCycleLR"):  # it cycles the momentum too
            scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.5, total_steps=4 * EPOCHS)
        elif schedule.startswith("ReduceLROnPlateau"):
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=0, factor=0.5)
        else:
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
        for _ in range(EPOCHS):
            total = 0.0
            for x, y in loader():
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                optimizer.step()
                total += loss.item()
                if schedule.endswith("per batch"):
                    scheduler.step()
            if schedule.startswith("ReduceLROnPlateau"):
                scheduler.step(total)
            elif schedule.endswith("per epoch"):
                scheduler.step()

    w = watched(loop)
    assert found(w) == set()
    assert steps_per_epoch(w) == [4] * EPOCHS


def test_a_layer_unfrozen_at_epoch_3_with_add_param_group_is_no_reset():
    def loop(w):
        model = dropout_net()
        model[0].requires_grad_(False)
        optimizer = torch.optim.Adam(model[3].parameters(), lr=0.01)
        for epoch in range(4):
            if epoch == 2:
                model[0].requires_grad_(True)
                optimizer.add_param_group({"params": model[0].parameters(), "lr": 0.001})
            for x, y in loader():
                optimizer.zero_grad()
                F.cross_entropy(model(x), y).backward()
                optimizer.step()

    w = watched(loop)
    assert found(w) == set()
    assert steps_per_epoch(w) == [4] * 4


# --- mixed precision -------------------------------------------------------------------------------------------------


def scaled_loop(init_scale: float, losses: list, skipped: list):
    def loop(w):
        model = dropout_net()
        optimizer = momentum(model)
        scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)
        for _ in range(EPOCHS):
            for x, y in loader():
                optimizer.zero_grad()
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    loss = F.cross_entropy(model(x), y) * 1000
                scale = scaler.get_scale()
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                (skipped if scaler.get_scale() < scale else losses).append(loss.item())

    return loop


def test_a_grad_scaler_s_factor_is_not_drawn_as_the_loss():
    losses, skipped = [], []
    w = watched(scaled_loop(2.0**16, losses, skipped))
    assert found(w) == set() and not skipped
    np.testing.assert_array_equal(w.run.steps.loss.to_numpy(), losses)


def test_steps_a_grad_scaler_skips_are_no_gradient_accumulation():
    """A scale so large the first gradients overflow: GradScaler skips those steps, the loop zeroes the gradients.

    Their backward passes fed no step, so they are not counted with the next one: no note, and each step's loss
    is the loss of the batch it stepped on.
    """
    losses, skipped = [], []
    w = watched(scaled_loop(2.0**124, losses, skipped))
    assert skipped and losses  # some steps skipped, some taken
    assert found(w) == set()
    assert (w.run.steps.backward_passes == 1).all()
    np.testing.assert_allclose(w.run.steps.loss.to_numpy(), losses, rtol=1e-2)  # bfloat16 as the loop computed it


# --- how the loop walks over its data ------------------------------------------------------------------------------


def two_loaders_in_one_epoch(w):
    """Semi-supervised: labelled batches drive the epoch, the smaller unlabelled loader starts over when it runs out."""
    model = dropout_net()
    optimizer = momentum(model)
    labelled, unlabelled = loader(), DataLoader(DATA, batch_size=2 * BATCH_SIZE, shuffle=True)
    for _ in range(EPOCHS):
        unlabelled_batches = None
        for x, y in labelled:
            try:
                u, _ = next(unlabelled_batches)
            except (StopIteration, TypeError):
                unlabelled_batches = iter(unlabelled)
                u, _ = next(unlabelled_batches)
            optimizer.zero_grad()
            (F.cross_entropy(model(x), y) + 0.01 * model(u).pow(2).mean()).backward()
            optimizer.step()


def test_an_unlabelled_loader_that_starts_over_inside_the_epoch_does_not_start_an_epoch():
    w = watched(two_loaders_in_one_epoch)
    assert found(w) == set()
    assert steps_per_epoch(w) == [4] * EPOCHS
    assert w.run.epochs.complete.all()


WALKS = {
    "enumerate(loader)": lambda batches: (xy for _, xy in enumerate(batches)),
    "zip(loader, loader)": lambda batches: (a for a, _ in zip(batches, loader(), strict=True)),
    "a generator over the loader": lambda batches: (xy for xy in batches),
    "tqdm(loader)": lambda batches: pytest.importorskip("tqdm").tqdm(batches, disable=True),
}


@pytest.mark.parametrize("walk", WALKS.values(), ids=WALKS.keys())
def test_wrapped_iteration_over_a_loader_counts_whole_epochs(walk):
    def loop(w):
        model = dropout_net()
        optimizer = momentum(model)
        batches = loader()
        for _ in range(EPOCHS):
            for x, y in walk(batches):
                optimizer.zero_grad()
                F.cross_entropy(model(x), y).backward()
                optimizer.step()

    w = watched(loop)
    assert found(w) == set()
    assert steps_per_epoch(w) == [4] * EPOCHS and w.run.epochs.complete.all()


@pytest.mark.parametrize("how", ["break", "itertools.islice"])
def test_an_epoch_cut_short_is_counted_and_marked_incomplete(how):
    def loop(w):
        model = dropout_net()
        optimizer = momentum(model)
        batches = loader()
        for _ in range(EPOCHS):
            walk = itertools.islice(batches, 2) if how == "itertools.islice" else batches
            for batch, (x, y) in enumerate(walk, start=1):
                optimizer.zero_grad()
                F.cross_entropy(model(x), y).backward()
                optimizer.step()
                if batch == 2:
                    break

    epochs = watched(loop).run.epochs
    assert epochs.steps.tolist() == [2] * EPOCHS and epochs.batches.tolist() == [4] * EPOCHS
    assert not epochs.complete.any()


def test_an_iterable_dataset_without_a_length_is_counted_in_epochs():
    class Stream(IterableDataset):
        def __iter__(self):
            return iter(zip(*DATA.tensors, strict=True))

    def loop(w):
        model = dropout_net()
        optimizer = momentum(model)
        batches = DataLoader(Stream(), batch_size=BATCH_SIZE)
        for _ in range(EPOCHS):
            fit(model, optimizer, batches)

    w = watched(loop)
    assert found(w) == {("same_order", 2)}  # a stream in the same order every epoch
    assert steps_per_epoch(w) == [4] * EPOCHS


def test_validation_that_forgot_no_grad_is_neither_a_step_nor_this_step_s_batch():
    """Validation in eval mode with grad on (no backward), then model.train(): no finding, and the order check still
    compares training batches, so a training loader without shuffling is found at epoch 2."""

    def loop(w):
        model = dropout_net()
        optimizer = momentum(model)
        train, validation = loader(shuffle=False), DataLoader(xor(32, seed=1), batch_size=8, shuffle=True)
        for _ in range(EPOCHS):
            model.train()
            fit(model, optimizer, train)
            model.eval()
            for x, y in validation:
                F.cross_entropy(model(x), y)

    w = watched(loop)
    assert found(w) == {("same_order", 2)}
    assert steps_per_epoch(w) == [4] * EPOCHS


@pytest.mark.parametrize("where", ["start", "end"])
def test_w_epoch_called_at_the_start_or_the_end_of_each_epoch_counts_the_same_epochs(where):
    def loop(w):
        model = dropout_net()
        optimizer = momentum(model)
        x, y = DATA.tensors
        for _ in range(EPOCHS):
            if where == "start":
                w.epoch()
            for rows in torch.randperm(SAMPLES).split(BATCH_SIZE):
                optimizer.zero_grad()
                F.cross_entropy(model(x[rows]), y[rows]).backward()
                optimizer.step()
            if where == "end":
                w.epoch()

    w = watched(loop)
    assert found(w) == set()
    assert steps_per_epoch(w) == [4] * EPOCHS


# --- models and gradients -----------------------------------------------------------------------------------------


def fit(model, optimizer, batches, *, clear=lambda model, optimizer: optimizer.zero_grad()):
    for x, y in batches:
        clear(model, optimizer)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()


def set_grads_to_none(model, optimizer):
    for parameter in model.parameters():
        parameter.grad = None


class TiedWithAnUnusedParameter(nn.Module):
    """The output layer shares the input layer's weights (weight tying); `unused` never gets a gradient."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(2, 2, bias=False)
        self.hidden = nn.Linear(2, 2)
        self.unused = nn.Parameter(torch.zeros(3))
        self.dropout = nn.Dropout(0.1)

    def forward(self, x):
        return F.linear(self.dropout(torch.relu(self.hidden(self.embed(x)))), self.embed.weight.t())


@pytest.mark.parametrize(
    "make_model", [dropout_net, TiedWithAnUnusedParameter], ids=["plain", "tied weights, an unused parameter"]
)
@pytest.mark.parametrize("clear", [set_grads_to_none, lambda model, optimizer: model.zero_grad()])
def test_gradients_cleared_by_hand_and_odd_parameters_give_nothing(make_model, clear):
    def loop(w):
        model = make_model()
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        for _ in range(EPOCHS):
            fit(model, optimizer, loader(), clear=clear)

    w = watched(loop)
    assert found(w) == set()
    assert steps_per_epoch(w) == [4] * EPOCHS


def test_gradients_never_cleared_are_found_with_tied_weights():
    def loop(w):
        model = TiedWithAnUnusedParameter()
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        for _ in range(EPOCHS):
            fit(model, optimizer, loader(), clear=lambda model, optimizer: None)

    assert found(watched(loop)) == {("grads_not_zeroed", 1)}


def test_an_ema_copy_updated_by_hand_is_no_reset():
    def loop(w):
        model = dropout_net()
        average = copy.deepcopy(model).requires_grad_(False)
        optimizer = momentum(model)
        for _ in range(EPOCHS):
            for x, y in loader():
                optimizer.zero_grad()
                F.cross_entropy(model(x), y).backward()
                optimizer.step()
                with torch.no_grad():
                    for kept, new in zip(average.parameters(), model.parameters(), strict=True):
                        kept.lerp_(new, 0.1)
            average.eval()
            with torch.no_grad():
                average(DATA.tensors[0])

    assert found(watched(loop)) == set()


def test_two_models_of_the_same_shape_trained_side_by_side_are_not_confused():
    """An ensemble: two optimizers of the same kind over parameters of the same shapes, stepping in turn."""

    def loop(w):
        models = [dropout_net(), dropout_net()]
        optimizers = [momentum(model) for model in models]
        batches = loader()
        for _ in range(EPOCHS):
            for x, y in batches:
                for model, optimizer in zip(models, optimizers, strict=True):
                    optimizer.zero_grad()
                    F.cross_entropy(model(x), y).backward()
                    optimizer.step()

    w = watched(loop)
    assert found(w) == set()
    assert steps_per_epoch(w) == [8] * EPOCHS


def test_a_model_training_in_a_background_thread_is_not_counted():
    def background():
        model = dropout_net()
        optimizer = momentum(model)
        for _ in range(5):
            fit(model, optimizer, DataLoader(DATA, batch_size=4, shuffle=False), clear=lambda *_: None)

    def loop(w):
        thread = threading.Thread(target=background)
        thread.start()
        model = dropout_net()
        optimizer = momentum(model)
        for _ in range(EPOCHS):
            fit(model, optimizer, loader())
        thread.join()

    w = watched(loop)
    assert found(w) == set()
    assert steps_per_epoch(w) == [4] * EPOCHS


# --- never in the way -----------------------------------------------------------------------------------------------


def test_watching_changes_no_number_of_a_mixed_precision_keyword_loop():
    def train(watch: bool):
        torch.manual_seed(0)
        model = TinyLanguageModel()
        optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
        scaler = torch.amp.GradScaler("cpu")
        batches = DataLoader(DATA, batch_size=BATCH_SIZE, shuffle=True, collate_fn=as_dict)
        losses = []
        with Watcher() if watch else contextlib.nullcontext():
            for _ in range(EPOCHS):
                for batch in batches:
                    optimizer.zero_grad()
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        loss = model(**batch)["loss"]
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                    losses.append(loss.item())
        return list(model.parameters()), losses, torch.get_rng_state()

    plain, watched_ = train(watch=False), train(watch=True)
    assert all(torch.equal(p, q) for p, q in zip(plain[0], watched_[0], strict=True))
    assert plain[1] == watched_[1]
    assert torch.equal(plain[2], watched_[2])


def test_ctrl_c_inside_backward_leaves_no_hook_behind():
    before = global_hooks()
    torch.manual_seed(0)
    model = dropout_net()
    optimizer = momentum(model)
    scaler = torch.amp.GradScaler("cpu")

    def interrupt(grad):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), Watcher() as w:
        fit(model, optimizer, loader())
        for x, y in loader():
            optimizer.zero_grad()
            loss = nn.CrossEntropyLoss()(model(x), y)
            loss.register_hook(interrupt)
            scaler.scale(loss).backward()
    assert global_hooks() == before
    assert steps_per_epoch(w) == [4] and found(w) == set()


def test_lightning_accumulating_gradients_counts_the_backward_pass_inside_its_closure():
    """Lightning runs the last accumulated batch's backward inside `optimizer.step(closure)`: it feeds the step."""
    lightning = pytest.importorskip("lightning")

    class Classifier(lightning.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = dropout_net()

        def training_step(self, batch, batch_index):
            return F.cross_entropy(self.net(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=0.01)

        def train_dataloader(self):
            return loader()

    torch.manual_seed(0)
    trainer = lightning.Trainer(
        max_epochs=EPOCHS, accelerator="cpu", devices=1, accumulate_grad_batches=2, enable_progress_bar=False,
        enable_model_summary=False, logger=False, enable_checkpointing=False,
    )  # fmt: skip
    with Watcher() as w:
        trainer.fit(Classifier())
    assert found(w) == {("gradient_accumulation", None)}
    assert (w.run.steps.backward_passes == 2).all()
    assert steps_per_epoch(w) == [2] * EPOCHS
