"""What `ev.watch()` checks in a learner's own loop, and how it says what it found.

Each check is one entry of `CHECKS`: its severity, what it means, what it costs, the one-line fix
and the notebook that shows it. `Watcher` (watching.py) decides *when* a check fails, by comparing
values (the weights, the optimizer's state, the gradients, the batches) between steps; a finding's
message is put together here, from the check's entry, so each explanation is written once.
"""

from __future__ import annotations

from dataclasses import dataclass

SEVERITIES = ("bug", "warning", "note")  # a bug changes what is trained; a warning may; a note explains


@dataclass(frozen=True)
class Check:
    """One thing that can go wrong (or be worth knowing) in a hand-written training loop."""

    name: str
    severity: str  # one of SEVERITIES
    explanation: str  # the check in one line: what it looks for
    cost: str  # what it does to training, in the learner's words; "" for a note
    fix: str  # the one-line fix; "" when there is nothing to fix
    notebook: str  # the notebook that shows it happening


CHECKS = {
    check.name: check
    for check in (
        Check(
            "weights_reset",
            "bug",
            "the weights a step starts from are not where the previous step left them",
            "Each epoch starts over, so no epoch gets further than the first and the loss never falls across epochs.",
            "create the model (and its optimizer) once, before the epoch loop, and never load the initial "
            "weights back.",
            "02_are_weights_reset",
        ),
        Check(
            "optimizer_reset",
            "bug",
            "the optimizer's state (momentum, Adam's running averages) started over between steps",
            "Momentum has to build up again (about 10 steps at momentum 0.9) and Adam takes its first, "
            "lr-sized steps again, at every reset.",
            "create the optimizer once, before the epoch loop, and never clear its state.",
            "02_are_weights_reset",
        ),
        Check(
            "grads_not_zeroed",
            "bug",
            "a backward pass added its gradient to one that an optimizer step had already used",
            "Every step moves by the sum of all earlier gradients, so the steps grow and the loss wanders or blows up.",
            "call optimizer.zero_grad() once per step, before loss.backward().",
            "12_does_my_loop_reset",
        ),
        Check(
            "same_order",
            "warning",
            "an epoch visited the samples in the same order as the epoch before it",
            "Every epoch ends on the same samples; on data sorted by label the model learns the order, not the data.",
            "DataLoader(..., shuffle=True).",
            "07_shuffling_and_sliding_windows",
        ),
        Check(
            "eval_mode_training",
            "bug",
            "the model trained in eval mode, which turns dropout off and freezes BatchNorm's statistics",
            "Dropout no longer regularises and BatchNorm normalises with stale averages: not the training you meant.",
            "call model.train() at the start of every epoch (after validating in model.eval()).",
            "10_why_curves_jump",
        ),
        Check(
            "gradient_accumulation",
            "note",
            "several backward passes feed one optimizer step (gradient accumulation)",
            "",
            "",
            "04_batch_size_and_memory",
        ),
        Check(
            "not_scalar_loss",
            "note",
            ".backward() was called on a tensor with more than one number (with a `gradient`)",
            "",
            "",
            "12_does_my_loop_reset",
        ),
        Check(
            "no_optimizer_step",
            "note",
            "backward passes ran but no torch.optim optimizer stepped",
            "",
            "",
            "12_does_my_loop_reset",
        ),
        Check(
            "no_epochs_seen",
            "note",
            "optimizer steps ran but no pass over a torch DataLoader marked the epochs",
            "",
            "",
            "12_does_my_loop_reset",
        ),
        Check(
            "watch_error",
            "note",
            "watching itself failed; the loop ran on untouched, but some checks stopped",
            "",
            "",
            "12_does_my_loop_reset",
        ),
    )
}


@dataclass(frozen=True)
class Finding:
    """Something `ev.watch()` saw in a loop: which check, how bad, at which epoch, and what to do.

    `epoch` is the first epoch (counted within `run`) where it happened, or None when it concerns the
    whole loop; `epochs` lists every epoch where it happened. `run` counts separate trainings inside one
    `with` block (a fresh model on other data, as in cross-validation, starts run 2).
    """

    check: str  # a key of CHECKS
    severity: str  # "bug", "warning" or "note"
    epoch: int | None
    message: str
    run: int = 1
    epochs: tuple[int, ...] = ()

    def __str__(self) -> str:
        return f"[{self.severity}] {self.check}: {self.message}"


def finding(name: str, run: int, epochs: list[int], detail: str, fix: str | None = None) -> Finding:
    """The Finding of check `name` in `run` at `epochs` (empty: the whole loop); `detail` says what happened.

    Its message: what happened and when, what it costs, the fix (`fix` overrides the check's own when a
    loop needs another one, e.g. `sampler.set_epoch`), and the notebook that shows it.
    """
    check = CHECKS[name]
    when = f"In {_epochs_text(epochs)}" if epochs else "In this loop"
    parts = [f"{when}, {detail}.", check.cost, f"Fix: {fix or check.fix}" if (fix or check.fix) else ""]
    parts.append(f"See notebooks/{check.notebook}.ipynb.")
    return Finding(
        check=name,
        severity=check.severity,
        epoch=epochs[0] if epochs else None,
        message=" ".join(part for part in parts if part),
        run=run,
        epochs=tuple(epochs),
    )


def _epochs_text(epochs: list[int]) -> str:
    if len(epochs) == 1:
        return f"epoch {epochs[0]}"
    shown = ", ".join(str(epoch) for epoch in epochs[:5]) + (", …" if len(epochs) > 5 else "")
    return f"epochs {shown}"
