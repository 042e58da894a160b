"""Stop, resume, compare: is a run resumed from a checkpoint the run that never stopped?

`stop_and_resume` answers it with numbers: it trains `stop_after` epochs into a checkpoint,
resumes from that file to `epochs`, trains `epochs` in one go with the same settings, and
measures how far the two runs are apart. With the whole checkpoint the answer is zero, to the
last bit. Leaving one piece out (`leave_out="optimizer_state"` or `"generator_state"`) shows
what that piece was holding: the difference it makes is the price of not saving it.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import numpy as np
from torch import nn

from . import checks
from .checkpoint import LEAVABLE
from .data import Dataset
from .run import Run
from .train import resume, train

CLOSE = 1e-3  # below this largest difference, two runs are "almost the same"


@dataclass(frozen=True)
class ResumeComparison:
    """How a run stopped after `stop_after` epochs and resumed to `epochs` differs from `epochs` in one go."""

    stop_after: int  # the epochs trained before the checkpoint was resumed from
    epochs: int  # the epochs both runs have in the end
    left_out: str | None  # the piece of the checkpoint the resume did without; None: it had the whole checkpoint
    loss_difference: float  # the largest difference between the two runs' batch losses
    weight_difference: float  # the largest difference between their weights after the last epoch

    @property
    def verdict(self) -> str:
        """ "exactly the same" (not one bit apart), "almost the same" (below 1e-3) or "different"."""
        largest = max(self.loss_difference, self.weight_difference)
        return "exactly the same" if largest == 0 else "almost the same" if largest < CLOSE else "different"

    def __repr__(self) -> str:
        saved = "the whole checkpoint" if self.left_out is None else f"no {self.left_out}"
        return (f"resumed after epoch {self.stop_after} with {saved}: {self.verdict} · batch losses up to "
                f"{self.loss_difference:.3g} apart, weights after epoch {self.epochs} up to "
                f"{self.weight_difference:.3g} apart")  # fmt: skip


def stop_and_resume(data: Dataset | str = "moons", *, stop_after: int = 3, epochs: int = 6,
                    leave_out: str | None = None, **settings) -> ResumeComparison:  # fmt: skip
    """Train `stop_after` epochs into a checkpoint, resume it to `epochs`, and compare with `epochs` in one go.

    `settings` are `train`'s other arguments (model, optimizer, lr, seed, …), the same for both
    runs; the checkpoint lives in a temporary folder that is deleted afterwards. `leave_out`
    resumes without one piece of the checkpoint (see `resume`).

    >>> stop_and_resume("moons", optimizer="momentum").verdict
    'exactly the same'
    >>> stop_and_resume("moons", optimizer="momentum", leave_out="optimizer_state").verdict
    'different'

    What to notice: the whole checkpoint gives the very same run; without the momentum the
    resumed run takes other steps from epoch `stop_after` + 1 on, and drifts away.
    """
    epochs = checks.whole("epochs", epochs, minimum=2, maximum=checks.MAX_EPOCHS)
    stop_after = checks.whole("stop_after", stop_after, minimum=1, maximum=epochs - 1)
    if leave_out is not None:
        checks.choice("leave_out", leave_out, LEAVABLE)
    if "checkpoint" in settings:
        raise TypeError("checkpoint is stop_and_resume's own: it saves to a temporary file; leave it out.")
    own = settings.get("model") if isinstance(settings.get("model"), nn.Module) else None
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "stopped.pt")
        _check_sound(train(data, epochs=stop_after, checkpoint=path, **settings), f"stop_after={stop_after}")
        resumed = resume(path, epochs, model=own, device=settings.get("device", "auto"), leave_out=leave_out)
    in_one_go = _check_sound(train(data, epochs=epochs, **settings), f"epochs={epochs} in one go")
    _check_sound(resumed, f"epochs={epochs} after resuming" + (f" without its {leave_out}" if leave_out else ""))
    return ResumeComparison(
        stop_after=stop_after,
        epochs=epochs,
        left_out=leave_out,
        loss_difference=float(np.abs(resumed.steps.loss.to_numpy() - in_one_go.steps.loss.to_numpy()).max()),
        weight_difference=float(np.abs(resumed.params(epochs) - in_one_go.params(epochs)).max()),
    )


def _check_sound(run: Run, trained: str) -> Run:
    """`run`, unless it diverged: a run whose loss stopped being a number has nothing to compare (or resume)."""
    if run.diverged:
        raise ValueError(f"stop_and_resume compares runs that train soundly, but with these settings the run "
                         f"diverged at epoch {run.diverged_at[0]} (training {trained}): its loss stopped being a "
                         f"number; lower lr, or stop and resume before it diverges.")  # fmt: skip
    return run
