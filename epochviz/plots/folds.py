"""Cross-validation, fold by fold: are the validation scores honest? Only if every fold starts afresh."""

from __future__ import annotations

from collections.abc import Mapping

import plotly.graph_objects as go

from ..crossval import CrossValidation
from .style import EPOCH_LINE_WIDTH, LOSS_TITLES, layout, series_colours, translucent


def cross_validation(results: CrossValidation | Mapping[str, CrossValidation]) -> go.Figure:
    """Per fold, the validation loss next to the loss on held-out test rows no fold trained on.

    `results` is one CrossValidation or a dict label → CrossValidation, e.g.
    {"reset per fold": fair, "no reset (leaks)": leaky}. Solid lines are validation, dashed
    lines the test loss; the shaded gap between them is how optimistic validation was.

    >>> import epochviz as ev
    >>> fair = ev.cross_validate("digits", k=5, epochs=30)  # doctest: +SKIP
    >>> leaky = ev.cross_validate("digits", k=5, epochs=30, reset_between_folds=False)  # doctest: +SKIP
    >>> cross_validation({"reset per fold": fair, "no reset (leaks)": leaky})  # doctest: +SKIP

    What to notice: when the weights carry over from fold to fold, later folds validate on
    rows an earlier fold trained on, so their validation loss drops below the test loss: the
    score looks better than the model is. Reset per fold and the two lines stay together.
    """
    if isinstance(results, CrossValidation):
        named = [(_crossval_label(results), results)]
    elif isinstance(results, Mapping):
        named = [(str(label), result) for label, result in results.items()]
    else:
        raise TypeError(
            f"results must be a CrossValidation (from epochviz.cross_validate) or a dict label → CrossValidation; "
            f"got a {type(results).__name__}."
        )
    if not named:
        raise ValueError("results is empty: give at least one CrossValidation.")
    for label, result in named:
        if not isinstance(result, CrossValidation):
            raise TypeError(f"results must hold CrossValidation results; got a {type(result).__name__} for {label!r}.")
    # a reset between folds is a weights reset (vermillion); carrying the weights over is reset "never" (blue)
    colours = series_colours(["weights" if result.reset_between_folds else "never" for _, result in named])
    traces = []
    for (label, result), colour in zip(named, colours, strict=True):
        folds = result.folds
        gap = (folds["test_loss"] - folds["val_loss"]).to_numpy()
        common = {"type": "scatter", "mode": "lines+markers", "x": folds["fold"].to_numpy(), "legendgroup": label,
                  "customdata": gap}  # fmt: skip
        hover = "<br>test loss − validation loss: %{customdata:+.3g}" + f"<extra>{label}</extra>"
        traces.append({
            **common, "name": f"{label} · validation loss", "y": folds["val_loss"].to_numpy(),
            "line": {"color": colour, "width": EPOCH_LINE_WIDTH}, "marker": {"size": 10, "color": colour},
            "hovertemplate": "fold %{x}<br>validation loss %{y:.3g}" + hover,
        })  # fmt: skip
        traces.append({
            **common, "name": f"{label} · test loss (held out)", "y": folds["test_loss"].to_numpy(),
            "line": {"color": colour, "width": EPOCH_LINE_WIDTH, "dash": "dash"},
            "marker": {"size": 10, "color": "white", "line": {"color": colour, "width": 2}},
            "fill": "tonexty", "fillcolor": translucent(colour, 0.15),  # the gap: how optimistic validation was
            "hovertemplate": "fold %{x}<br>test loss %{y:.3g}" + hover,
        })  # fmt: skip
    task = named[0][1].runs[0].data.task if named[0][1].runs else None
    figure = layout(title=None, x_title="fold", y_title=LOSS_TITLES.get(task, "loss"))
    figure["xaxis"]["dtick"] = 1
    figure["legend"]["traceorder"] = "grouped"  # each result's validation then test, not plotly's reversed fills
    return go.Figure(data=traces, layout=figure)


def _crossval_label(result: CrossValidation) -> str:
    return "reset per fold" if result.reset_between_folds else "no reset between folds"
