"""Watch a learner's own PyTorch loop, unchanged, and say whether it resets anything between epochs.

    with Watcher() as w:                 # `ev.watch()` is this, plus a live figure in a notebook
        for epoch in range(5):           # the learner's loop, exactly as they wrote it
            for x, y in loader:
                optimizer.zero_grad()
                loss_fn(model(x), y).backward()
                optimizer.step()
    w.findings                           # what it found (loop_checks.Finding), [] for a correct loop
    w.run.steps, w.run.epochs            # what the loop did, step by step and epoch by epoch

How it sees a loop it did not write, with no edit to it, while the `with` block runs:
- every optimizer step: torch.optim's global step pre- and post-hooks (any optimizer, Lightning's too);
- the loss: the tensor that `.backward()` is called on. torch has no global backward hook, so
  `torch.autograd.backward`, which `Tensor.backward` calls, is wrapped (and `GradScaler.scale`, to draw
  the loss before mixed precision scaled it);
- the batch and train/eval mode: a global forward hook sees each outermost call of a module with
  parameters to train (the model; not a loss module), with its keyword arguments;
- epochs: one pass over a torch `DataLoader` in which the optimizer steps (`DataLoader.__iter__` is
  wrapped to see passes begin), or `w.epoch()` at the end of each epoch where a loop uses none.
Only the thread that entered the block is watched: an explorer training in the background of the same
notebook is not mistaken for the learner's loop. Every hook and wrapper is removed on exit, also after
an exception or Ctrl-C. Watching only reads the loop's tensors (and copies some), so it changes no
number the loop computes. What it keeps, and how it compares, is in loop_record.py.

Findings are judged by values, never by object identity: a model rebuilt from a state dict, or an
optimizer given back its state, continues; the same weights as at the start, or new ones, are a reset.
Identity only says when values need comparing at all (untouched tensors keep their version counter).
"""

from __future__ import annotations

import operator
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.modules import module as torch_module
from torch.optim import optimizer as torch_optimizer
from torch.utils.data import DataLoader, DistributedSampler

from .loop_checks import CHECKS, Finding, finding
from .loop_record import (
    LoaderPass,
    OptimizerMemory,
    WatchedRun,
    all_cleared,
    copies,
    data_signature,
    fingerprint,
    first_tensor,
    optimizer_params,
    same_values,
)  # fmt: skip

REDRAW_EVERY_S = 0.1  # the live figure is redrawn at most this often, however fast the loop steps
ORDER_BATCHES = 3  # batches at the start of each epoch compared with the previous epoch's (same_order)
_STOCHASTIC_LAYERS = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._NormBase)  # train and eval differ
_watching: list[Watcher] = []  # the one Watcher now watching, if any: nested watching is refused


class Watcher:
    """Watches every PyTorch training step inside a `with` block and checks it against the step before.

    `findings` lists what it found (see `CHECKS`), `run` what the loop did, `summary()` says both in
    words. `on_update(watcher)` is called at most every REDRAW_EVERY_S seconds while the loop steps,
    and once at the end (a live figure hangs on it). `epoch()` marks the end of an epoch in a loop that
    does not iterate over a DataLoader.
    """

    CHECKS = CHECKS

    def __init__(self, on_update: Callable[[Watcher], None] | None = None) -> None:
        self.run = WatchedRun()
        self.on_update = on_update
        self._hits: dict[tuple[int, str], list[int]] = {}  # (run, check) → epochs where it happened
        self._details: dict[tuple[int, str], tuple[str, str | None]] = {}  # (run, check) → (what happened, fix)
        self._memories: dict[tuple, OptimizerMemory] = {}  # optimizer (by kind and parameter shapes) → memory
        self._keys: dict[int, tuple] = {}  # id(optimizer) → (weak ref to it, its parameter count, its key)
        self._unzeroed: set[tuple] = set()  # optimizers whose last step's gradients have not been cleared yet
        self._added_to: set[tuple] = set()  # of those, the ones whose used gradients a backward pass then added to
        self._edits_weights = False  # this run's loop changes the weights between steps inside an epoch itself
        self._passes: list[LoaderPass] = []  # recent passes over DataLoaders, newest last
        self._pass: LoaderPass | None = None  # the pass the current epoch trains on
        self._alongside: list[LoaderPass] = []  # other passes that moved at the epoch's first step (_place_step)
        self._run_data: tuple | None = None  # data_signature of the current run's data
        self._number, self._epoch, self._step, self._batch = 0, 0, 0, 0  # run, epoch, step in run, batch in epoch
        self._marked = False  # w.epoch() was called: epochs end where it says, not where passes do
        self._epoch_ended = False  # w.epoch() since the last step: the next step starts a new epoch
        self._scaled: tuple = (lambda: None, None)  # (weak ref to) the last tensor a GradScaler scaled, and before
        self._losses: list[torch.Tensor] = []  # values .backward() was called on since the last step
        self._backward_passes = 0  # all of them, in the whole block
        self._step_backwards = 0  # those since the last step
        self._fed: list[tuple] = []  # a gradient of the model right after the last backward pass (all_cleared)
        self._inside_step: int | None = None  # backward passes since a step's pre-hook; None after its post-hook
        self._waiting: list[tuple[str, str]] = []  # findings seen before the step they belong to is placed
        self._depth = 0  # how deep inside module calls the forward pass is
        self._forward: tuple[nn.Module, tuple, dict] | None = None  # the model's call in this step (_forward_ends)
        self._orders: dict[tuple[int, int], list[tuple]] = {}  # (run, epoch) → its first batches' fingerprints
        self._started = self._redrawn = 0.0
        self._removers: list[Callable[[], None]] = []
        self._broken = False  # watching failed once: stop checking, let the loop run on
        self._thread = threading.get_ident()  # the thread the loop runs in, set on entering

    # --- the face ---------------------------------------------------------------------------------

    @property
    def findings(self) -> list[Finding]:
        """What was found, bugs first, each check once per run, with every epoch where it happened."""
        order = {severity: rank for rank, severity in enumerate(("bug", "warning", "note"))}
        found = [finding(name, run, epochs, *self._details[(run, name)]) for (run, name), epochs in self._hits.items()]
        return sorted(found, key=lambda f: (order[f.severity], f.run, f.epoch or 0))

    def epoch(self) -> None:
        """Mark the end of an epoch (call it after each epoch's last step) where the loop uses no DataLoader."""
        self._marked = self._epoch_ended = True

    def summary(self) -> str:
        """What the loop did and what was found, in plain sentences."""
        epochs = self.run.epochs
        runs = epochs.run.nunique()
        did = f"{len(epochs)} epochs, {self.step_count} optimizer steps" + (f", {runs} runs" if runs > 1 else "")
        serious = [f for f in self.findings if f.severity != "note"]
        if not serious and len(epochs) > 1:
            verdict = ("Nothing was reset: every epoch continued from the weights and optimizer state the "
                       "epoch before left, with gradients cleared between steps.")  # fmt: skip
        elif not serious and len(epochs) == 1:
            verdict = "Only one epoch was seen, so there was no epoch edge to check."
        elif not serious:
            verdict = "No optimizer step was seen, so there was nothing to check."
        else:
            verdict = f"Found {len(serious)} problem{'s' * (len(serious) > 1)}:"
        return "\n".join([f"Watched {did}. {verdict}", *(f"- {f}" for f in self.findings)])

    @property
    def step_count(self) -> int:
        """Optimizer steps watched so far."""
        return len(self.run._rows)

    # --- entering and leaving ------------------------------------------------------------------------

    def __enter__(self) -> Watcher:
        if _watching:
            raise RuntimeError("ev.watch() is already watching: a loop is watched by one `with ev.watch()` at a "
                               "time (a nested one would count every step twice). Remove the inner one.")  # fmt: skip
        _watching.append(self)
        self._thread = threading.get_ident()
        self._started = self._redrawn = time.perf_counter()
        try:
            self._install()
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, *error) -> None:
        try:
            self._guarded(self._finish)
        finally:
            self._remove()
        if self.on_update is not None:
            self._guarded(self.on_update, self)

    def _install(self) -> None:
        for register, hook in [
            (torch_optimizer.register_optimizer_step_pre_hook, self._before_step),
            (torch_optimizer.register_optimizer_step_post_hook, self._after_step),
        ]:
            self._removers.append(register(self._guard(hook)).remove)
        pre = torch_module.register_module_forward_pre_hook(self._forward_starts)
        self._removers.append(pre.remove)
        post = torch_module.register_module_forward_hook(self._forward_ends, with_kwargs=True, always_call=True)
        self._removers.append(post.remove)
        # post.remove() leaves its id in this table (torch forgets it), which would keep every later module call
        # of the session off torch's fast path
        self._removers.append(lambda: torch_module._global_forward_hooks_with_kwargs.pop(post.id, None))
        self._wrap(torch.autograd, "backward", self._backward_wrapper)
        self._wrap(DataLoader, "__iter__", self._iter_wrapper)
        self._wrap(torch.amp.GradScaler, "scale", self._scale_wrapper)

    def _wrap(self, owner, name: str, make_wrapper) -> None:
        original = getattr(owner, name)
        setattr(owner, name, make_wrapper(original))
        self._removers.append(lambda: setattr(owner, name, original))

    def _remove(self) -> None:
        while self._removers:
            self._removers.pop()()
        if self in _watching:
            _watching.remove(self)

    def _guard(self, hook):
        def guarded(*args):
            if not self._broken and threading.get_ident() == self._thread:
                self._guarded(hook, *args)

        return guarded

    def _guarded(self, function, *args):
        """Run a piece of watching; if it fails, record why and stop checking: the loop itself must run on."""
        try:
            return function(*args)
        except Exception as error:
            self._broken = True
            self._hit("watch_error", f"checking stopped after {type(error).__name__}: {error}", epoch=None)
            return None

    # --- what the loop does, as torch reports it --------------------------------------------------------

    def _iter_wrapper(self, original):
        def __iter__(loader):
            iterator = original(loader)
            if not self._broken and threading.get_ident() == self._thread:
                self._guarded(self._pass_begins, loader, iterator)
            return iterator

        return __iter__

    def _scale_wrapper(self, original):
        def scale(scaler, outputs):
            scaled = original(scaler, outputs)
            if isinstance(outputs, torch.Tensor) and threading.get_ident() == self._thread:
                self._scaled = (weakref.ref(scaled), outputs.detach())  # the loss before mixed precision scaled it
            return scaled

        return scale

    def _pass_begins(self, loader: DataLoader, iterator) -> None:
        # a DataLoader with persistent workers hands out the same iterator again, reset: a new pass all the same
        kept = [p for p in self._passes if p.iterator is not iterator][-7:]
        self._passes = [*kept, LoaderPass(loader, iterator)]
        self._forward = None  # calls before a pass begins (validation that forgot no_grad) are not this step's

    def _backward_wrapper(self, original):
        def backward(tensors, *args, **kwargs):
            watched = not self._broken and threading.get_ident() == self._thread
            stale = self._guarded(self._before_backward, tensors) if watched else None
            original(tensors, *args, **kwargs)
            if stale is not None:
                self._guarded(self._after_backward, stale)

        return backward

    def _forward_starts(self, module: nn.Module, args: tuple) -> None:
        if threading.get_ident() == self._thread:
            self._depth += 1

    def _forward_ends(self, module: nn.Module, args: tuple, *kwargs_output) -> None:
        """After every module call: (kwargs, output), or (output,) from a call that raised (torch drops them)."""
        if threading.get_ident() != self._thread:
            return
        self._depth = max(self._depth - 1, 0)
        if len(kwargs_output) != 2:
            return
        # The model is the step's first outermost call that trains parameters: not a loss module such as
        # nn.CrossEntropyLoss (called after it, with no parameters), nor a frozen teacher. Its inputs are
        # seen here, not in the pre-hook, because a global pre-hook is not given keyword arguments.
        outermost = self._depth == 0 and self._forward is None and torch.is_grad_enabled()
        if outermost and any(p.requires_grad for p in module.parameters()):
            self._forward = (module, args, kwargs_output[0])

    def _before_backward(self, tensors) -> list[tuple]:
        """Note the loss and the mode the model trained in; return the gradients a step used and nobody cleared."""
        loss = tensors if isinstance(tensors, torch.Tensor) else next(iter(tensors), None)
        if isinstance(loss, torch.Tensor):
            scaled, unscaled = self._scaled
            value = unscaled if loss is scaled() else loss.detach()  # a GradScaler's factor is not the loss
            if value.numel() != 1:
                self._later("not_scalar_loss", f".backward() was called on a tensor of shape {tuple(value.shape)}; "
                                               f"the loss drawn is its mean")  # fmt: skip
            loss = (value if value.is_floating_point() else value.float()).mean()  # in its own precision
        self._backward_passes += 1
        if self._inside_step is not None:  # a closure the step calls (Lightning's, LBFGS's): LBFGS evaluates it
            self._inside_step += 1  # again and again; the step is fed by the first evaluation (the loss step()
            if self._inside_step > 1:  # returns), not accumulated with the others
                return []
        if self._step_backwards and all_cleared(self._fed):  # the gradients earlier passes made were cleared unused
            self._losses, self._step_backwards = [], 0  # (a GradScaler skipped the step): they fed no step
        self._step_backwards += 1
        if isinstance(loss, torch.Tensor):
            self._losses.append(loss)
        if self._forward is not None:
            model = self._forward[0]
            if not model.training and any(isinstance(layer, _STOCHASTIC_LAYERS) for layer in model.modules()):
                self._later("eval_mode_training", f"{type(model).__name__} was in eval mode (model.training was "
                                                  f"False) while it trained")  # fmt: skip
        stale = []
        for key in list(self._unzeroed):
            untouched = [(p, g, v) for p, g, v in self._memories[key].grads if p.grad is g and g._version == v]
            if untouched:
                stale.append((key, untouched))
            else:  # cleared (set to None, replaced, or zeroed in place) since the step used them
                self._unzeroed.discard(key)
                self._added_to.discard(key)
        return stale

    def _after_backward(self, stale: list[tuple]) -> None:
        model = self._forward[0] if self._forward is not None else None
        # one gradient tells whether they were cleared since: zero_grad() clears them all
        first = next((p for p in model.parameters() if p.grad is not None), None) if model is not None else None
        self._fed = [(first, first.grad, first.grad._version)] if first is not None else []
        # Not yet a bug: a GAN's generator loss adds to the discriminator's gradients, which the loop clears
        # before the discriminator steps. It is one if the optimizer steps on them (_before_step).
        for key, untouched in stale:
            if any(grad._version != version for _, grad, version in untouched):
                memory = self._memories[key]
                memory.grads = [(p, g, g._version) for p, g, _ in memory.grads]
                self._added_to.add(key)

    def _identify(self, optimizer: torch.optim.Optimizer) -> tuple[list[torch.Tensor], tuple]:
        """The optimizer's parameters, and its key: its kind and their shapes, the same for a rebuilt optimizer."""
        params = optimizer_params(optimizer)
        known = self._keys.get(id(optimizer))
        if known is None or known[0]() is not optimizer or known[1] != len(params):
            shapes = tuple(tuple(p.shape) for p in params)
            known = (weakref.ref(optimizer), len(params), (type(optimizer).__qualname__, shapes))
            self._keys[id(optimizer)] = known
        return params, known[2]

    def _before_step(self, optimizer: torch.optim.Optimizer, args, kwargs) -> None:
        self._inside_step = 0
        params, key = self._identify(optimizer)
        memory = self._memories.get(key)
        continued = memory is None or memory.weights_continue(params)
        epoch = (self._number, self._epoch)
        self._place_step(continued)
        inside_an_epoch = (self._number, self._epoch) == epoch and (self._pass is not None or self._marked)
        memory = self._memories.get(key)  # a new run forgets every optimizer
        if key in self._added_to and any(p.grad is g for p, g, _ in memory.grads):
            used = "an optimizer step used gradients that still held the ones its previous step had used"
            self._later("grads_not_zeroed", f"{used} (no zero_grad() in between)")
        self._added_to.discard(key)
        if memory is None:
            now = copies(params)
            self._memories[key] = OptimizerMemory(params=list(params), versions=[p._version for p in params],
                                                  after_step=now, initial=copies(now))  # fmt: skip
        elif not continued:
            back = all(same_values(p, start) for p, start in zip(params, memory.initial, strict=True))
            # New values between two steps of one epoch are the loop's own edit (clamping, max-norm, pruning), and
            # a loop that edits at every step edits at the epoch's edge too: neither is a reset.
            self._edits_weights |= inside_an_epoch and not back
            if back or not self._edits_weights:
                where = ("back at their initial values" if back else
                         "at new values: neither where the previous step left them nor the initial ones")  # fmt: skip
                also = "; the optimizer's state started over too" if memory.state_lost(optimizer, params) else ""
                layer = self._layer_name(params, memory.after_step)
                self._hit("weights_reset", f"a step started from weights {where} (first layer that changed: "
                                           f"{layer}){also}", self._epoch)  # fmt: skip
        elif memory.state_lost(optimizer, params):
            names = sorted({name for state in memory.state for name in state})
            self._hit("optimizer_reset", f"{type(optimizer).__name__}'s state ({', '.join(names)}) was gone or "
                                         f"changed when a step began, although the weights had continued",
                      self._epoch)  # fmt: skip

    def _after_step(self, optimizer: torch.optim.Optimizer, args, kwargs) -> None:
        self._inside_step = None
        params, key = self._identify(optimizer)
        memory = self._memories[key]
        if all(map(operator.is_, params, memory.params)):
            with torch.no_grad():
                torch._foreach_copy_(memory.after_step, params)  # one call for all of them: a step must stay cheap
        else:
            memory.params, memory.after_step = list(params), copies(params)
        memory.versions = [p._version for p in params]
        memory.state = [dict(optimizer.state.get(p, ())) for p in params]
        memory.state_versions = [{n: v._version for n, v in s.items() if isinstance(v, torch.Tensor)}
                                 for s in memory.state]  # fmt: skip
        memory.grads = [(p, p.grad, p.grad._version) for p in params if p.grad is not None]
        if memory.grads:
            self._unzeroed.add(key)
        self._record_step()

    # --- where a step belongs ------------------------------------------------------------------------------

    def _place_step(self, continued: bool) -> None:
        """Put the step that begins in its run and epoch: a new pass (or `epoch()`) starts a new epoch, and a
        new pass over other data with weights that did not continue starts a new run (a cross-validation fold)."""
        moved = [p for p in reversed(self._passes) if p.moved()]
        if self._pass not in moved:
            # Two loaders in one epoch (labelled and unlabelled data): the one that ran out and started over
            # was not the epoch's; the epoch goes on while a loader that moved with it from its start does.
            self._pass = next((p for p in self._alongside if p in moved), self._pass)
        moving = self._pass if self._pass in moved else next(iter(moved), None)
        if self._number == 0:
            self._begin_run(moving)
        elif self._epoch_ended or (not self._marked and moving is not None and moving is not self._pass):
            self._close_epoch()
            new_data = moving is not None and data_signature(moving.loader.dataset) != self._run_data
            if not continued and new_data:
                self._begin_run(moving)
            else:
                self._epoch, self._batch, self._pass = self._epoch + 1, 0, moving or self._pass
        if self._step == 0 or self._batch == 0:  # the epoch's first step
            self._alongside = [p for p in moved if p is not self._pass]
        for known in self._passes:
            known.look()
        self._epoch_ended = False
        self._step += 1
        self._batch = self._pass.seen if self._pass is not None and not self._marked else self._batch + 1

    def _begin_run(self, first_pass: LoaderPass | None) -> None:
        self._number, self._epoch, self._step, self._batch, self._pass = self._number + 1, 1, 0, 0, first_pass
        self._run_data = data_signature(first_pass.loader.dataset) if first_pass is not None else None
        self._memories.clear()
        self._unzeroed.clear()
        self._added_to.clear()
        self._edits_weights = False

    def _record_step(self) -> None:
        loss = None
        if self._losses:
            loss = self._losses[0] if len(self._losses) == 1 else torch.stack(self._losses).mean()
        self.run._rows.append({
            "run": self._number, "epoch": self._epoch, "step": self._step, "batch": self._batch, "loss": loss,
            "backward_passes": self._step_backwards, "elapsed_s": time.perf_counter() - self._started,
        })  # fmt: skip
        self._losses, self._step_backwards = [], 0
        orders = self._orders.setdefault((self._number, self._epoch), [])
        if self._forward is not None and len(orders) < ORDER_BATCHES:
            batch = first_tensor(self._forward[1:])
            if batch is not None:
                orders.append(fingerprint(batch))
        for name, detail in self._waiting:
            self._hit(name, detail, self._epoch)
        self._waiting, self._forward = [], None
        now = time.perf_counter()
        if self.on_update is not None and now - self._redrawn >= REDRAW_EVERY_S:
            self._redrawn = now
            self.on_update(self)

    def _close_epoch(self) -> None:
        if self._number == 0:
            return
        key = (self._number, self._epoch)
        batches = self._pass.batches if self._pass is not None and not self._marked else None
        self.run._passes[key] = (batches, batches is not None and self._pass.seen >= batches)
        now, before = self._orders.get(key), self._orders.get((self._number, self._epoch - 1))
        if now and before and now == before[: len(now)]:
            self._hit("same_order", f"its first {len(now)} batches held the same samples in the same order as "
                                    f"the epoch before", self._epoch, fix=self._order_fix())  # fmt: skip

    def _order_fix(self) -> str | None:
        sampler = getattr(self._pass.loader, "sampler", None) if self._pass is not None else None
        if not isinstance(sampler, DistributedSampler):
            return None
        if sampler.shuffle:
            return "call sampler.set_epoch(epoch) at the start of every epoch: a DistributedSampler shuffles by it."
        return "DistributedSampler(..., shuffle=True), and sampler.set_epoch(epoch) at the start of every epoch."

    def _finish(self) -> None:
        self._close_epoch()
        if self._backward_passes and not self.run._rows:
            self._hit("no_optimizer_step", f"{self._backward_passes} backward passes ran and no optimizer stepped: "
                                           f"epochviz sees steps of torch.optim optimizers only", None)  # fmt: skip
        if self.run._rows and not self._marked and self._pass is None:
            self._hit("no_epochs_seen", "everything was counted as one epoch; call w.epoch() after each epoch to "
                                        "mark them", None)  # fmt: skip
        passes = Counter(row["backward_passes"] for row in self.run._rows)
        if any(count > 1 for count in passes):
            usual = max(passes, key=passes.get)
            self._hit("gradient_accumulation", f"{usual} backward passes fed each optimizer step (most often), so "
                                               f"each step's loss is their mean", None)  # fmt: skip

    # --- findings -----------------------------------------------------------------------------------------

    def _later(self, name: str, detail: str) -> None:
        """A finding seen before its step is placed in an epoch: recorded when the step ends."""
        if (name, detail) not in self._waiting:
            self._waiting.append((name, detail))

    def _hit(self, name: str, detail: str, epoch: int | None, fix: str | None = None) -> None:
        key = (max(self._number, 1), name)
        epochs = self._hits.setdefault(key, [])
        self._details.setdefault(key, (detail, fix))
        if epoch is not None and epoch not in epochs:
            epochs.append(epoch)

    def _layer_name(self, params: list[torch.Tensor], before: list[torch.Tensor]) -> str:
        index = next((i for i, (p, b) in enumerate(zip(params, before, strict=True)) if not same_values(p, b)), 0)
        names = {}
        if self._forward is not None:
            names = {id(p): name for name, p in self._forward[0].named_parameters()}
        return repr(names.get(id(params[index]), f"parameter {index} of shape {tuple(params[index].shape)}"))
