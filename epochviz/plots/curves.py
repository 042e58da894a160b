"""Loss and weights across epochs: the two figures that show whether training continues between epochs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from .. import checks
from ..policies import POLICIES
from ..run import Run
from .axes import X_TITLES, X_UNITS, epoch_edges, epoch_x, step_x, weight_path
from .style import EPOCH_LINE_WIDTH, LOSS_TITLES, decimate, epoch_marks, layout, series_colours, translucent

STEP_HOVER = (
    "epoch %{customdata[0]}, batch %{customdata[1]} of %{customdata[2]}<br>"
    "step %{customdata[3]:,} · %{customdata[4]:,} samples seen<br>"
)
_SECONDS_HOVER = "%{x:.2f} s into training<br>"


def loss_curves(
    runs: Run | Sequence[Run] | Mapping[str, Run],
    x: str = "epoch",
    *,
    show_steps: bool = True,
    show_validation: bool = True,
    title: str | None = None,
) -> go.Figure:
    """The loss of one or more runs: every batch (faint), every epoch (bold), and validation (dashed).

    `runs` is a Run, a list of Runs (labelled by their reset mode) or a dict label → Run. `x`
    counts training in "epoch", "step" (optimizer steps), "samples" (training samples seen) or
    "seconds" (wall clock). Shaded bands mark the epochs of the first run.

    >>> import epochviz as ev
    >>> runs = {mode: ev.train("moons", epochs=10, reset=mode) for mode in ("never", "weights")}
    >>> loss_curves(runs)  # doctest: +SKIP

    What to notice: with reset="never" each epoch's batches start where the previous epoch's
    ended, so the faint curve runs on across the band edges; with reset="weights" it jumps
    back up at every edge and the bold epoch values never improve.
    """
    checks.choice("x", x, X_UNITS)
    checks.flag("show_steps", show_steps)
    checks.flag("show_validation", show_validation)
    named = named_runs(runs)
    colours = series_colours([run.config.reset for _, run in named])
    traces, notes = [], []
    for (label, run), colour in zip(named, colours, strict=True):
        if show_steps:
            traces.append(_step_trace(run, x, label, colour))
        traces.append(_epoch_trace(run, x, label, colour))
        if show_validation:
            traces.append(_validation_trace(run, x, label, colour))
        who = label if len(named) > 1 else None
        if run.diverged:
            notes.append(_divergence_note(run, x, who, colour))
        elif run.blew_up or run.at_chance:  # finite, but not training: say so before a low-looking curve misleads
            notes.append(_trouble_note(run, who, colour, len(notes)))
    first, span = named[0][1], max(np.max(trace["x"], initial=0.0) for trace in traces)
    # the bands follow the first run; in seconds, the slowest one, so the bands are not squeezed near 0
    banded = max((run for _, run in named), key=lambda run: run.elapsed_s) if x == "seconds" else first
    y_title = LOSS_TITLES[first.data.task]
    figure = layout(title=title, x_title=X_TITLES[x], y_title=y_title, shapes=epoch_marks(epoch_edges(banded, x), span))
    figure["annotations"] = notes
    if any(run.diverged or run.blew_up for _, run in named):
        # a loss that blows up grows by powers of ten: on a log axis its later values do not look like 0
        figure["yaxis"] = {"type": "log", "exponentformat": "power", "title": {"text": f"{y_title}, log scale"}}
    return go.Figure(data=traces, layout=figure)


def weights_over_epochs(runs: Run | Sequence[Run] | Mapping[str, Run], *, title: str | None = None) -> go.Figure:
    """How far the weights are from where training started, across epochs.

    y is the L2 distance ‖w − w₀‖ from the initial weights w₀ = `run.params(1, "start")`.
    A run trained with `track_weights=True` gets a point per step; any other run a line from
    each epoch's start to its end.

    >>> import epochviz as ev
    >>> runs = {mode: ev.train("moons", epochs=5, reset=mode) for mode in ("never", "weights")}
    >>> weights_over_epochs(runs)  # doctest: +SKIP

    What to notice: with reset="never" the line carries on across every epoch edge, because
    epoch k + 1 starts from the weights epoch k ended with; with reset="weights" it drops back
    to 0 at every edge: each epoch starts over, so no epoch gets further than the first.
    """
    named = named_runs(runs)
    colours = series_colours([run.config.reset for _, run in named])
    traces = [_distance_trace(run, label, colour) for (label, run), colour in zip(named, colours, strict=True)]
    marks = epoch_marks(epoch_edges(named[0][1], "epoch"))
    figure = layout(title=title, x_title="epoch", y_title="distance from the initial weights (L2)", shapes=marks)
    return go.Figure(data=traces, layout=figure)


def loss_differences(runs: Sequence[Run] | Mapping[str, Run], *, title: str | None = None) -> go.Figure:
    """Each run's batch losses minus the first run's, step by step: the digits `loss_curves` is too coarse to show.

    `runs` (a list of Runs or a dict label → Run, at least two) must have trained the same steps: the
    same data, batch size and epochs, as `compare_hardware`'s runs do. A run that gave the very same
    bits as the first one is a flat line at 0.

    >>> import epochviz as ev
    >>> loss_differences(ev.compare_hardware("moons", epochs=10).runs)  # doctest: +SKIP

    What to notice: in a calm training the differences stay near float32's rounding, about a
    ten-millionth of the loss, and go up and down; in a chaotic one they grow until the runs part.
    Which runs draw a flat line depends on the CPU: two kernel paths may round alike on one processor
    and differently on another.
    """
    named = named_runs(runs)
    if len(named) < 2:
        raise ValueError("runs must hold at least two runs: the first is the one the others are compared to.")
    (first_label, first), others = named[0], named[1:]
    for label, run in others:
        if run.total_steps != first.total_steps or run.steps_per_epoch != first.steps_per_epoch:
            raise ValueError(f"runs must have trained the same steps; {label!r} has {run.total_steps} steps of "
                             f"{run.steps_per_epoch} per epoch, {first_label!r} {first.total_steps} of "
                             f"{first.steps_per_epoch}.")  # fmt: skip
    colours = series_colours([run.config.reset for _, run in named])[1:]  # each run in its loss_curves colour
    traces = [
        {"type": "scatter", "mode": "lines", "name": label, "x": step_x(run, "epoch"),
         "y": run.steps["loss"].to_numpy() - first.steps["loss"].to_numpy(),
         "line": {"color": colour, "width": 1.5},
         "hovertemplate": f"%{{y:.2g}}<extra>{label}</extra>"}
        for (label, run), colour in zip(others, colours, strict=True)
    ]  # fmt: skip
    marks = epoch_marks(epoch_edges(first, "epoch"))
    figure = layout(title=title, x_title=X_TITLES["epoch"], y_title=f"batch loss − {first_label}'s", shapes=marks)
    figure["yaxis"]["exponentformat"] = "power"  # differences of 1e-8 read as 10⁻⁸, not 0.00000001
    return go.Figure(data=traces, layout=figure)


def named_runs(runs: Run | Sequence[Run] | Mapping[str, Run]) -> list[tuple[str, Run]]:
    """(label, run) pairs: the dict's keys, or each run's reset mode ("reset: never")."""
    if isinstance(runs, Run):
        runs = [runs]
    if isinstance(runs, Mapping):
        labels, runs = [str(label) for label in runs], list(runs.values())
    elif isinstance(runs, Sequence) and not isinstance(runs, str):
        labels, runs = None, list(runs)
    else:
        raise TypeError(f"runs must be a Run, a list of Runs or a dict label → Run; got {type(runs).__name__}.")
    if not runs:
        raise ValueError("runs is empty: give at least one Run.")
    for run in runs:
        if not isinstance(run, Run):
            raise TypeError(f"runs must hold Run objects (from epochviz.train); got a {type(run).__name__}.")
    return list(zip(labels or _labels(runs), runs, strict=True))


def _labels(runs: list[Run]) -> list[str]:
    """Each run's reset mode, or, when two share one, the settings that tell the runs apart."""
    labels = [f"reset: {run.config.reset}" for run in runs]
    if len(set(labels)) == len(labels):
        return labels
    settings = [run.config.as_dict() for run in runs]  # plain values: your own module by its class name
    differing = [name for name in settings[0] if any(each[name] != settings[0][name] for each in settings)]
    labels = [", ".join(f"{name}={each[name]}" for name in differing) for each in settings]
    return labels if differing and len(set(labels)) == len(labels) else [f"run {i}" for i in range(1, len(runs) + 1)]


def _group(label: str) -> dict:
    """One legend group per run, titled with its label; (legendgroup, name) tells every trace apart."""
    return {"legendgroup": label, "legendgrouptitle": {"text": label}}


def _step_trace(run: Run, x: str, label: str, colour: str) -> dict:
    steps = run.steps
    losses = steps["loss"].to_numpy()
    hover = np.column_stack([
        steps["epoch"], steps["batch"], np.full(len(steps), run.steps_per_epoch), steps["step"], steps["samples_seen"],
    ])  # fmt: skip
    kept = decimate(losses)
    return {
        "type": "scatter", "mode": "lines", "name": "each batch", **_group(label),
        "x": step_x(run, x)[kept], "y": losses[kept], "customdata": hover[kept],
        "line": {"color": translucent(colour, 0.4), "width": 1.5},
        "hovertemplate": STEP_HOVER + (_SECONDS_HOVER if x == "seconds" else "")
                         + f"loss %{{y:.3g}}<extra>{label}</extra>",
    }  # fmt: skip


def _epoch_trace(run: Run, x: str, label: str, colour: str) -> dict:
    epochs = run.epochs
    accuracy = "<br>train accuracy %{customdata[2]:.0%}" if run.data.task == "classification" else ""
    return {
        "type": "scatter", "mode": "lines+markers", "name": "train loss per epoch", **_group(label),
        "x": epoch_x(run, x), "y": epochs["train_loss"].to_numpy(),
        "customdata": np.column_stack([epochs["epoch"], epochs["samples_seen"], epochs["train_accuracy"]]),
        "line": {"color": colour, "width": EPOCH_LINE_WIDTH}, "marker": {"color": colour, "size": 9},
        "hovertemplate": "end of epoch %{customdata[0]}<br>%{customdata[1]:,} samples seen<br>"
                         f"train loss %{{y:.3g}} (mean of the epoch's batches){accuracy}<extra>{label}</extra>",
    }  # fmt: skip


def _validation_trace(run: Run, x: str, label: str, colour: str) -> dict:
    """Dashed validation loss; present but empty for a run that held nothing out, so the trace count is stable."""
    epochs = run.epochs
    validated = len(run.val_indices) > 0
    accuracy = "<br>validation accuracy %{customdata[1]:.0%}" if run.data.task == "classification" else ""
    return {
        "type": "scatter", "mode": "lines+markers", "name": "validation loss", **_group(label),
        "showlegend": validated, "x": epoch_x(run, x) if validated else [],
        "y": epochs["val_loss"].to_numpy() if validated else [],
        "customdata": np.column_stack([epochs["epoch"], epochs["val_accuracy"]]) if validated else [],
        "line": {"color": colour, "width": EPOCH_LINE_WIDTH, "dash": "dash"},
        "marker": {"color": "white", "size": 9, "line": {"color": colour, "width": 2}},
        "hovertemplate": "end of epoch %{customdata[0]}<br>validation loss %{y:.3g}"
                         f"{accuracy}<extra>{label}</extra>",
    }  # fmt: skip


def _divergence_note(run: Run, x: str, who: str | None, colour: str) -> dict:
    """An arrow to the last finite loss, saying where the loss stopped being a number (for a log y axis)."""
    epoch, step = run.diverged_at
    text = f"diverged at epoch {epoch}, step {step}:<br>loss became non-finite"
    note = {
        # short lines: plotly widens the x axis to fit an annotation, and a long one pushed it below 0
        "text": f"{who}:<br>{text}" if who else text,
        "align": "right",
        "font": {"color": colour},
        "bgcolor": "rgba(255, 255, 255, 0.85)",
    }
    if run.total_steps == 0:
        return {**note, "x": 0, "xref": "x", "y": 0.95, "yref": "paper", "xanchor": "left", "showarrow": False}
    arrow = {"showarrow": True, "arrowhead": 2, "arrowcolor": colour, "ax": -30, "ay": 40, "xanchor": "right"}
    # on a log axis plotly places annotations by the log10 of the value
    last = float(np.log10(run.steps["loss"].iloc[-1]))
    return {**note, **arrow, "x": float(step_x(run, x)[-1]), "y": last, "xref": "x", "yref": "y"}


def _trouble_note(run: Run, who: str | None, colour: str, row: int) -> dict:
    """A note in the plot's top left: the loss blew up while staying finite, or accuracy stayed at chance."""
    if run.blew_up:
        losses = run.steps["loss"]
        text = (f"blew up: the loss rose to {losses.max():.2g}, {losses.max() / losses.iloc[0]:,.0f}× its start;<br>"
                "lower values after that are not a trained model")  # fmt: skip
    else:
        text = ""
    if run.at_chance:
        text += ("<br>" if text else "") + f"accuracy stayed at chance ({run.chance_accuracy():.0%}): nothing learned"
    return {
        "text": f"{who}: {text}" if who else text, "x": 0.01, "y": 0.98 - 0.12 * row, "xref": "paper", "yref": "paper",
        "xanchor": "left", "yanchor": "top", "align": "left", "showarrow": False, "font": {"color": colour},
        "bgcolor": "rgba(255, 255, 255, 0.85)", "bordercolor": colour, "borderwidth": 1,
    }  # fmt: skip


def _distance_trace(run: Run, label: str, colour: str) -> dict:
    epoch, done, weights = weight_path(run)
    distance = np.linalg.norm(weights - weights[:1], axis=1)
    x = epoch - 1 + done / run.steps_per_epoch
    kept = decimate(distance)
    tracked = bool(run.config.track_weights)
    return {
        "type": "scatter", "mode": "lines" if tracked else "lines+markers", "name": label, "legendgroup": label,
        "x": x[kept], "y": distance[kept],
        "customdata": np.column_stack([epoch, done, np.full(len(epoch), run.steps_per_epoch)])[kept],
        "line": {"color": colour, "width": EPOCH_LINE_WIDTH, "dash": POLICIES[run.config.reset].dash},
        "marker": {"color": colour, "size": 8},
        "hovertemplate": "epoch %{customdata[0]}, after %{customdata[1]} of %{customdata[2]} batches<br>"
                         f"distance from the initial weights %{{y:.3g}}<extra>{label}</extra>",
    }  # fmt: skip
