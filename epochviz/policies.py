"""Reset policies: what, if anything, starts over at the beginning of every epoch after the first.

Real training resets nothing: the weights are initialised once and every epoch continues from
where the last one ended. The other policies are the hypotheses learners hold ("each epoch is a
standalone training process"), made runnable so their consequences can be seen. Each policy is
one object here, and everything else looks it up: the loop and the batched path carry out what
it says, the explorer's buttons show its label and tooltip, and every figure draws it in its
colour and line style. Adding a policy means adding one entry to `POLICIES`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResetPolicy:
    """One answer to "what happens to the weights when a new epoch starts?"."""

    name: str  # what `train(reset=...)` takes
    weights: str  # at every epoch start after the first: "continue", "initial" (the same start) or "fresh" (new)
    optimizer: bool  # forget the optimizer's state: momentum and Adam's running averages
    label: str  # the explorer's button
    tooltip: str  # what the button's hover text tells a learner
    colour: str  # this policy's colour in every figure (Okabe–Ito, safe for colour-blind readers)
    dash: str  # and its line style, so figures read without colour too (print, projectors)

    @property
    def restores_weights(self) -> bool:
        """Whether the weights an epoch starts from are not the ones the previous epoch ended with."""
        return self.weights != "continue"


WEIGHTS = ("continue", "initial", "fresh")  # every way an epoch may start: the loop and train_many carry out each

POLICIES = {
    policy.name: policy
    for policy in (
        ResetPolicy(
            "never",
            weights="continue",
            optimizer=False,
            label="never (real training)",
            colour="#0072B2",  # blue
            dash="solid",
            tooltip="Weights are initialised once; every epoch continues where the last one ended. "
            "This is what training does.",
        ),
        ResetPolicy(
            "optimizer",
            weights="continue",
            optimizer=True,
            label="optimizer state",
            colour="#E69F00",  # orange
            dash="dash",
            tooltip="Weights continue, but momentum and Adam's running averages are cleared at the start of "
            "every epoch.",
        ),
        ResetPolicy(
            "weights",
            weights="initial",
            optimizer=True,
            label="weights: restored",
            colour="#D55E00",  # vermillion
            dash="dot",
            tooltip="Every epoch starts again from the same initial weights, as if each epoch were a separate "
            "training run.",
        ),
        ResetPolicy(
            "reinit",
            weights="fresh",
            optimizer=True,
            label="reinit: new weights",
            colour="#CC79A7",  # reddish purple
            dash="dashdot",
            tooltip="Every epoch starts from new random initial weights, drawn from (seed, epoch): a brand-new "
            "model each epoch.",
        ),
    )
}
RESETS = tuple(POLICIES)  # the names, in the order buttons and comparisons show them
