"""Predict first: the learner commits to an answer before the notebook shows the measured one.

Guessing before seeing is what makes a result stick. A `Prediction` asks a question, takes a
number or a choice, and on "Check" reveals the answer measured in the notebook beside the
guess. Where nothing can run (a saved notebook, a static page) it shows the question with
the answer folded away.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import ipywidgets as widgets


class Prediction(widgets.VBox):
    """A question, a place for the learner's guess, and the measured answer behind a button.

    >>> Prediction("How many steps make one epoch?", answer=10, unit="steps")  # doctest: +SKIP
    """

    def __init__(self, question: str, answer: float | str, *, options: Sequence[str] | None = None,
                 unit: str = "", explanation: str = "", tolerance: float = 0.1) -> None:  # fmt: skip
        if options is not None and answer not in options:
            raise ValueError(f"answer must be one of the options {list(options)}; got {answer!r}.")
        self.question, self.answer, self.unit = question, answer, unit
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

    def reveal(self) -> None:
        """Show the measured answer beside the guess, and whether the guess was close."""
        guess = self.guess.value
        if guess is None:
            self.verdict.value = "<i>Pick an answer first.</i>"
            return
        close = guess == self.answer if isinstance(self.answer, str) else _near(guess, self.answer, self.tolerance)
        mark = "✅ Spot on." if close else "❌ Not quite."
        self.verdict.value = (
            f"{mark} You said <b>{html.escape(_show(guess, self.unit))}</b>; the notebook measured "
            f"<b>{html.escape(_show(self.answer, self.unit))}</b>. {self.explanation}"
        )

    def _repr_mimebundle_(self, **kwargs) -> dict:
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = f"Predict: {self.question}"
        bundle["text/html"] = (
            f"<p><b>Predict:</b> {self.question}</p><details><summary>Answer (think first)</summary>"
            f"<p><b>{html.escape(_show(self.answer, self.unit))}</b>. {self.explanation}</p></details>"
        )
        return bundle


def predict(question: str, answer: float | str, **options) -> Prediction:
    """Ask the learner to predict `answer` before the notebook shows it (see `Prediction`).

    >>> predict("Will the loss at the start of epoch 2 be lower than at the start of epoch 1?",
    ...         answer="lower", options=["lower", "the same", "higher"])  # doctest: +SKIP
    """
    return Prediction(question, answer, **options)


def _near(guess: float, answer: float, tolerance: float) -> bool:
    return math.isclose(guess, answer, rel_tol=tolerance, abs_tol=tolerance * 1e-3)


def _show(value: float | str, unit: str) -> str:
    text = value if isinstance(value, str) else f"{value:,.4g}".replace(",", "\u2009")
    return f"{text} {unit}".strip()
