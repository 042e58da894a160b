"""The loss of a learner's own loop, as `ev.watch()` saw it, drawn like the explorers' curves.

Every optimizer step (faint) and every epoch's mean (bold) against the step count, epochs as
shaded bands, and each finding marked at the epoch where it first happened, so a reset shows up
where the curve jumps back.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..loop_checks import Finding
from ..loop_record import WatchedRun
from .style import EPOCH_LINE_WIDTH, PALETTE, decimate, epoch_marks, layout, translucent

SEVERITY_COLOURS = {"bug": "#D55E00", "warning": "#E69F00"}  # vermillion, orange: as the reset modes that cause them
BLOW_UP_FACTOR = 10  # a step loss this many times the first: the y axis turns logarithmic, so the rest stays visible


def watched_figure(run: WatchedRun, findings: list[Finding] = (), *, title: str | None = None) -> go.Figure:
    """What `ev.watch()` saw: step losses (faint), epoch means (bold), epoch bands, and the findings marked.

    >>> with ev.watch() as w:  # doctest: +SKIP
    ...     ...                # your loop
    >>> watched_figure(w.run, w.findings)  # doctest: +SKIP

    What to notice: in a correct loop the faint curve runs on across every band edge; where the
    weights are reset it jumps back up at the edge marked "weights_reset".
    """
    steps, epochs = run.steps, run.epochs
    traces, marks, lines, names = [], [], [], []
    for number, colour in zip(sorted(steps.run.unique()), _run_colours(steps.run.nunique()), strict=True):
        mine, ends = steps[steps.run == number], epochs[epochs.run == number]
        label = f"run {number}" if steps.run.nunique() > 1 else "your loop"
        kept = decimate(mine.loss.to_numpy())
        traces.append(go.Scatter(
            x=mine.step.to_numpy()[kept], y=mine.loss.to_numpy()[kept], mode="lines", name=f"{label}: each step",
            line={"color": translucent(colour, 0.45), "width": 1},
            customdata=np.stack([mine.epoch.to_numpy()[kept], mine.batch.to_numpy()[kept]], axis=-1),
            hovertemplate="epoch %{customdata[0]}, batch %{customdata[1]}<br>step %{x}: loss %{y:.4g}<extra></extra>",
        ))  # fmt: skip
        traces.append(go.Scatter(
            x=ends.last_step.to_numpy(), y=ends.train_loss.to_numpy(), mode="lines+markers",
            name=f"{label}: epoch mean", line={"color": colour, "width": EPOCH_LINE_WIDTH},
            customdata=ends.epoch.to_numpy(), hovertemplate="epoch %{customdata}: mean loss %{y:.4g}<extra></extra>",
        ))  # fmt: skip
        if number == 1:  # the bands follow the first run, as the explorers' follow their first run
            edges = np.concatenate([[0.0], ends.last_step.to_numpy(dtype=float)])
            marks = epoch_marks(edges) if len(ends) else []
            lines, names = _finding_marks([f for f in findings if f.run == 1], edges)
    figure = layout(title=title, x_title="optimizer step", y_title="loss at each .backward()",
                    shapes=marks + lines)  # fmt: skip
    figure["annotations"] = names
    losses = steps.loss.to_numpy(dtype=float)
    finite = losses[np.isfinite(losses)]
    if len(finite) > 1 and finite.max() > BLOW_UP_FACTOR * max(abs(finite[0]), 1e-12) and finite.min() > 0:
        figure["yaxis"] = {"type": "log", "exponentformat": "power", "title": {"text": "loss, log scale"}}
    return go.Figure(data=traces, layout=figure)


def _run_colours(runs: int) -> list[str]:
    return [PALETTE[i % len(PALETTE)] for i in range(runs)]


def _finding_marks(findings: list[Finding], edges: np.ndarray) -> tuple[list[dict], list[dict]]:
    """A dashed line at the start of every epoch where a bug or warning happened, named at its first epoch."""
    lines, names = [], []
    for row, found in enumerate(f for f in findings if f.severity in SEVERITY_COLOURS and f.epochs):
        colour = SEVERITY_COLOURS[found.severity]
        for x in (float(edges[epoch - 1]) for epoch in found.epochs if epoch - 1 < len(edges)):
            lines.append({"type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x, "y0": 0, "y1": 1,
                          "line": {"color": colour, "width": 2, "dash": "dash"}})  # fmt: skip
        names.append({"x": float(edges[found.epoch - 1]), "xref": "x", "y": 0.97 - 0.09 * row, "yref": "paper",
                      "xanchor": "left", "text": f" {found.check}", "showarrow": False,
                      "font": {"color": colour, "size": 15}, "bgcolor": "rgba(255, 255, 255, 0.8)"})  # fmt: skip
    return lines, names
