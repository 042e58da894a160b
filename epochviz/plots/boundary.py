"""The decision boundary, epoch by epoch: which class the model predicts at each point of the plane.

For a two-feature classification run (moons, circles, spirals) every point of the plane gets
the class the model would predict there, with the weights recorded at the end of each epoch.
The model is rebuilt from the record (`Run.predict`), so a run read back from a checkpoint
draws the same boundary as the run that trained.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .. import checks
from ..run import Run
from .style import CLASS_COLOURS, HEIGHT, layout, translucent

MARGIN = 0.1  # share of the data's range added on each side of the plane
MAX_FRAMES = 40  # epochs with a frame of their own (and the start); a longer run gets evenly spaced ones
CONFIDENT = 0.99  # where in its band of the colour scale a class predicted with probability 1 sits
SLIDER_HEIGHT = 110  # pixels below the plot for the epoch slider and the play button


def decision_boundary(run: Run, epoch: int | None = None, *, resolution: int = 60) -> go.Figure:
    """The class `run`'s model predicts over the plane, with an epoch slider and a play button.

    Each cell of a `resolution` × `resolution` grid (60 × 60 by default; 10 to 200) over the
    data's range is coloured by the class predicted there, pale where the model is unsure and
    strong where it is sure; the training samples are drawn on top in their class's colour.
    Every frame uses the weights recorded at the end of its epoch (`run.params(k, "end")`);
    frame 0 the initial weights. The figure opens at `epoch` (by default the last one). A run of
    more than MAX_FRAMES epochs gets frames at MAX_FRAMES + 1 evenly spaced epochs from 0 to its
    last, and one at `epoch`.

    >>> import epochviz as ev
    >>> run = ev.train("moons", epochs=10, reset="never")
    >>> decision_boundary(run, epoch=3)  # doctest: +SKIP

    What to notice: with reset="never" the boundary bends further into the moons' shape every
    epoch. With reset="weights" every epoch starts again from the initial weights, so it never
    gets past what one epoch makes of them (with shuffle=False every frame is epoch 1's); with
    reset="reinit" it jumps somewhere new each epoch.
    """
    _check(run)
    shown = run.completed_epochs if epoch is None else _epoch(run, epoch)
    resolution = checks.whole("resolution", resolution, minimum=10, maximum=200)
    epochs = np.unique(np.r_[np.linspace(0, run.completed_epochs, MAX_FRAMES + 1).round().astype(int), shown])
    surfaces = {int(k): decision_surface(run, int(k), resolution=resolution) for k in epochs}
    title = f"Predicted class, pale where unsure: {run.data.name}, reset={run.config.reset!r}"
    figure = _still(run, surfaces[shown], resolution, title)
    figure.update_layout(height=HEIGHT + SLIDER_HEIGHT, margin_b=SLIDER_HEIGHT,
                         sliders=[_slider(list(surfaces), shown)], updatemenus=[_play_button()])  # fmt: skip
    figure.layout.legend = {"orientation": "v", "x": 1.02, "xanchor": "left", "y": 1, "yanchor": "top"}  # beside
    figure.frames = [
        {"name": str(k), "data": [{"type": "heatmap", **surface}], "traces": [0]} for k, surface in surfaces.items()
    ]
    return figure


def boundary_after(run: Run, epoch: int, *, resolution: int = 60, title: str | None = None) -> go.Figure:
    """The class `run`'s model predicts over the plane after `epoch` (0: the initial weights), as one still figure.

    The picture of `decision_boundary` at one epoch, without its slider and play button: what the
    main explorer draws beside its loss curve. Redrawn for another epoch, only the heatmap's `z`
    and `customdata` change (the plane and the training samples stay), so a FigureWidget that
    shows it sends just those.

    >>> import epochviz as ev
    >>> run = ev.train("moons", epochs=10)
    >>> boundary_after(run, 3).data[0].z.shape
    (60, 60)

    What to notice: the training samples are drawn on top, so you can see which of them the
    model still puts on the wrong side of the boundary.
    """
    _check(run)
    resolution = checks.whole("resolution", resolution, minimum=10, maximum=200)
    surface = decision_surface(run, epoch, resolution=resolution)
    return _still(run, surface, resolution, f"Predicted class after epoch {epoch}" if title is None else title)


def decision_surface(run: Run, epoch: int, *, resolution: int = 60) -> dict[str, np.ndarray]:
    """What the heatmap of `decision_boundary` shows for one epoch (0: the initial weights): its `z` and `customdata`.

    `z` (resolution × resolution) holds the predicted class plus how sure the model is of it,
    from 0 (every class equally likely) to CONFIDENT (probability 1): the colour scale gives each
    class a band from pale to strong; NaN (a blank cell, with no hover text) where the weights are
    no longer finite. `customdata` holds, per cell, the predicted class and its probability in
    percent, for the hover text. An explorer redraws an epoch in place with
    `figure.data[0].update(decision_surface(run, k))`.
    """
    _check(run)
    epoch = _epoch(run, epoch)
    resolution = checks.whole("resolution", resolution, minimum=10, maximum=200)
    across, up = _plane(run, resolution)
    points = np.column_stack([grid.ravel() for grid in np.meshgrid(across, up)])  # row by row, as z is
    probabilities = run.predict(points, epoch, "end") if epoch else run.predict(points, 1, "start")
    predicted, probability = probabilities.argmax(axis=1), probabilities.max(axis=1)
    chance = 1 / probabilities.shape[1]
    sure = np.isfinite(probabilities).all(axis=1)
    certainty = np.where(sure, (probability - chance) / (1 - chance), np.nan)
    z = predicted + CONFIDENT * np.clip(certainty, 0, 1)
    percent = np.where(sure, probability * 100, 0).round()
    customdata = np.column_stack([predicted, percent]).astype(np.uint8)  # a quarter of the bytes of float32
    shape = (resolution, resolution)
    return {"z": z.reshape(shape).astype(np.float32), "customdata": customdata.reshape(*shape, 2)}


def _still(run: Run, surface: dict[str, np.ndarray], resolution: int, title: str) -> go.Figure:
    """The heatmap of `surface` over the plane, square, with the training samples on top."""
    across, up = _plane(run, resolution)
    classes = len(run.data.classes)
    traces = [
        {
            "type": "heatmap", "name": "predicted class", "x": across, "y": up, **surface,
            "zmin": 0, "zmax": classes, "colorscale": _class_bands(classes), "showscale": False, "zsmooth": False,
            "hoverongaps": False,
            "hovertemplate": "feature 1 %{x:.2f}, feature 2 %{y:.2f}<br>predicts class %{customdata[0]} "
                             "with probability %{customdata[1]}%<extra></extra>",
        },
        *_training_samples(run),
    ]  # fmt: skip
    figure = layout(title=title, x_title="feature 1", y_title="feature 2")
    figure["xaxis"].update(range=[across[0], across[-1]], constrain="domain")
    figure["yaxis"].update(range=[up[0], up[-1]], scaleanchor="x", scaleratio=1, constrain="domain")
    return go.Figure(data=traces, layout=figure)


def _check(run: Run) -> None:
    """Refuse, in one sentence, a run whose boundary cannot be drawn on a plane."""
    if not isinstance(run, Run):
        raise TypeError(f"run must be a Run (from epochviz.train); got {type(run).__name__}.")
    if run.data.task != "classification":
        raise ValueError(f"a decision boundary separates classes, but {run.data.name!r} is a regression task: its "
                         f"model predicts a number, not a class.")  # fmt: skip
    if run.data.features != 2:
        raise ValueError(f"a decision boundary is drawn on a plane of two features, but {run.data.name!r} has "
                         f"{run.data.features}; use a 2-D dataset: 'moons', 'circles' or 'spirals'.")  # fmt: skip
    if not run.completed_epochs:
        raise ValueError("this run has no completed epoch, so it recorded no weights to draw a boundary from.")


def _epoch(run: Run, epoch: int) -> int:
    return checks.whole("epoch", epoch, minimum=0, maximum=run.completed_epochs)


def _plane(run: Run, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """The grid's feature-1 and feature-2 values: the range of every sample of the data, with a margin."""
    x = run.data.x.numpy()
    low, high = x.min(axis=0), x.max(axis=0)
    pad = np.maximum((high - low) * MARGIN, 0.5)
    return tuple(np.linspace(low[i] - pad[i], high[i] + pad[i], resolution) for i in range(2))


def _class_bands(classes: int) -> list[list]:
    """A colour scale over 0 … `classes`: class k's band [k, k + 1) runs from its pale tint to its strong colour."""
    scale = []
    for k in range(classes):
        colour = CLASS_COLOURS[k % len(CLASS_COLOURS)]
        scale += [[k / classes, translucent(colour, 0.12)], [(k + 1) / classes, translucent(colour, 0.5)]]
    return scale


def _training_samples(run: Run) -> list[dict]:
    """One scatter trace per class: the training samples, in their class's colour."""
    x, y = run.data.x.numpy()[run.train_indices], run.data.y.numpy()[run.train_indices]
    return [
        {
            "type": "scatter", "mode": "markers", "name": f"class {name} (training)",
            "x": x[y == k, 0], "y": x[y == k, 1],
            "marker": {"color": CLASS_COLOURS[k % len(CLASS_COLOURS)], "size": 7,
                       "line": {"color": "#333333", "width": 1}},
            "hovertemplate": f"training sample of class {name}<br>feature 1 %{{x:.2f}}, feature 2 %{{y:.2f}}"
                             f"<extra></extra>",
        }
        for k, name in enumerate(run.data.classes)
    ]  # fmt: skip


def _slider(epochs: list[int], shown: int) -> dict:
    """One step per frame; moving it swaps the heatmap for that epoch's."""
    return {
        "active": epochs.index(shown),
        "currentvalue": {"prefix": "weights after epoch ", "font": {"size": 16}},
        "pad": {"t": 50},
        "steps": [
            {"label": str(k), "method": "animate",
             "args": [[str(k)], {"mode": "immediate", "frame": {"duration": 0, "redraw": True},
                                 "transition": {"duration": 0}}]}
            for k in epochs
        ],
    }  # fmt: skip


def _play_button() -> dict:
    """Play the epochs in order from the slider's position, half a second each; press the slider to stop."""
    return {
        "type": "buttons", "showactive": False, "x": 0, "xanchor": "right", "y": 0, "yanchor": "top",
        "pad": {"t": 60, "r": 10},
        "buttons": [{"label": "▶ play", "method": "animate",
                     "args": [None, {"frame": {"duration": 500, "redraw": True}, "fromcurrent": True,
                                     "transition": {"duration": 0}}]}],
    }  # fmt: skip
