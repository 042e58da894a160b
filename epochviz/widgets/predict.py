"""Predict first: the learner commits to an answer before the notebook shows the measured one.

Guessing before seeing is what makes a result stick. A `Prediction` asks a question, takes a
number or a choice, and on "Check" reveals the answer measured in the notebook beside the
guess. Where nothing can run (a saved notebook, a static page) it shows the question with
the answer folded away.

A prediction only asks: the cell that asks need not measure anything. Leave out `answer`, and
the run cell after it measures and hands the answer over with `prediction.measured(answer)`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import ipywidgets as widgets

from . import front_end

WAITING = "The next cell measures the answer: run it, then press Check again."
MEASURED_BELOW = "The cells below measure it and show it."  # where a saved page shows the question alone


class Prediction(widgets.VBox):
    """A question, a place for the learner's guess, and the measured answer behind a button.

    >>> Prediction("How many steps make one epoch?", answer=10, unit="steps")  # doctest: +SKIP
    """

    def __init__(self, question: str, answer: float | str | None = None, *, options: Sequence[str] | None = None,
                 unit: str = "", explanation: str = "", tolerance: float = 0.1) -> None:  # fmt: skip
        self.question, self.options, self.answer, self.unit = question, options, None, unit
        self.explanation, self.tolerance = explanation, tolerance
        if options is None:
            self.guess = widgets.FloatText(description="your guess", style={"description_width": "initial"},
                                           layout=widgets.Layout(width="16em"))  # fmt: skip
        else:
            self.guess = widgets.RadioButtons(options=list(options), value=None, layout=widgets.Layout(width="auto"))
        self.check = widgets.Button(description="Check", icon="check", button_style="info")
        self.verdict = widgets.HTML()
        self.check.on_click(lambda _: self.reveal())
        super().__init__([widgets.HTML(f"<b>Predict:</b> {question}"), widgets.HBox([self.guess, self.check]),
                          self.verdict])  # fmt: skip
        if answer is not None:
            self.measured(answer)

    def measured(self, answer: float | str) -> None:
        """Hand over the answer the notebook measured; a guess already checked is checked again against it.

        >>> prediction = predict("Will the loss fall?", options=["yes", "no"])  # doctest: +SKIP
        >>> prediction.measured("yes" if run.epochs.train_loss.is_monotonic_decreasing else "no")  # doctest: +SKIP
        """
        if self.options is not None and answer not in self.options:
            raise ValueError(f"answer must be one of the options {list(self.options)}; got {answer!r}.")
        self.answer = answer
        if self.verdict.value:
            self.reveal()

    def reveal(self) -> None:
        """Show the measured answer beside the guess, and whether the guess was close."""
        guess = self.guess.value
        if guess is None:
            self.verdict.value = "<i>Pick an answer first.</i>"
            return
        if self.answer is None:
            self.verdict.value = f"<i>Noted: {html.escape(_show(guess, self.unit))}. {WAITING}</i>"
            return
        close = guess == self.answer if isinstance(self.answer, str) else _near(guess, self.answer, self.tolerance)
        mark = "✅ Spot on." if close else "❌ Not quite."
        self.verdict.value = (
            f"{mark} You said <b>{html.escape(_show(guess, self.unit))}</b>; the notebook measured "
            f"<b>{html.escape(_show(self.answer, self.unit))}</b>. {self.explanation}"
        )

    def _repr_mimebundle_(self, **kwargs) -> dict:
        bundle = front_end.view_bundle(self, **kwargs)
        bundle["text/plain"] = f"Predict: {self.question}"
        answer = MEASURED_BELOW if self.answer is None else f"<b>{html.escape(_show(self.answer, self.unit))}</b>."
        bundle["text/html"] = (
            f"<p><b>Predict:</b> {self.question}</p><details><summary>Answer (think first)</summary>"
            f"<p>{answer} {self.explanation}</p></details>"
        )
        return bundle


def predict(question: str, answer: float | str | None = None, **options) -> Prediction:
    """Ask the learner to predict `answer` before the notebook shows it (see `Prediction`).

    >>> predict("Will the loss at the start of epoch 2 be lower than at the start of epoch 1?",
    ...         answer="lower", options=["lower", "the same", "higher"])  # doctest: +SKIP

    Without `answer` the cell only asks; a later cell measures it and calls `measured(answer)`.
    """
    return Prediction(question, answer, **options)


def _near(guess: float, answer: float, tolerance: float) -> bool:
    return math.isclose(guess, answer, rel_tol=tolerance, abs_tol=tolerance * 1e-3)


def _show(value: float | str, unit: str) -> str:
    text = value if isinstance(value, str) else f"{value:,.4g}".replace(",", "\u2009")
    return f"{text} {unit}".strip()
