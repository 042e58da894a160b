"""The controls a learner touches, each labelled in their words, with a tooltip that explains it."""

from __future__ import annotations

import math

import ipywidgets as widgets

from ..data import GENERATORS, steps_per_epoch

_WIDE = {"description_width": "8.5em"}
_ROW = widgets.Layout(width="26em")

RESET_CHOICES = (
    ("never (real training)", "never",
     "Weights are initialised once; every epoch continues where the last one ended. This is what training does."),
    ("optimizer state", "optimizer",
     "Weights continue, but momentum and Adam's running averages are cleared at the start of every epoch."),
    ("weights: start over", "weights",
     "Every epoch starts again from the same initial weights, as if each epoch were a separate training run."),
)  # fmt: skip


def epochs_slider(value: int = 20, maximum: int = 100) -> widgets.IntSlider:
    return widgets.IntSlider(
        value=value, min=1, max=max(maximum, value), description="epochs", style=_WIDE, layout=_ROW,
        tooltip="How many full passes over the training data. Fewer epochs of a run already trained redraw at once.",
    )  # fmt: skip


def batch_size_options(n_train: int) -> list[tuple[str, int]]:
    """Powers of two below the training-set size, then the full batch."""
    sizes = [2**k for k in range(int(math.log2(max(n_train - 1, 1))) + 1) if 2**k < n_train]
    return [(str(size), size) for size in sizes] + [(f"full ({n_train})", n_train)]


def batch_size_slider(n_train: int, value: int = 32) -> widgets.SelectionSlider:
    options = batch_size_options(n_train)
    chosen = min(options, key=lambda option: abs(math.log2(option[1]) - math.log2(value)))[1]
    return widgets.SelectionSlider(
        options=options, value=chosen, description="batch size", style=_WIDE, layout=_ROW, continuous_update=False,
        tooltip="Samples per optimizer step. It changes how many steps an epoch takes, not what an epoch is.",
    )  # fmt: skip


def keep_batch_size(slider: widgets.SelectionSlider, n_train: int) -> None:
    """Give `slider` the options for a training set of `n_train` samples, keeping the nearest value."""
    current = slider.value
    options = batch_size_options(n_train)
    nearest = min(options, key=lambda option: abs(math.log2(option[1]) - math.log2(current)))[1]
    with slider.hold_trait_notifications():
        slider.options = options
        slider.value = nearest


def reset_buttons(value: str = "never") -> widgets.ToggleButtons:
    return widgets.ToggleButtons(
        options=[(label, mode) for label, mode, _ in RESET_CHOICES], value=value, description="reset",
        tooltips=[tip for _, _, tip in RESET_CHOICES], style={**_WIDE, "button_width": "13.5em"},
    )  # fmt: skip


def learning_rate_slider(value: float = 0.1) -> widgets.FloatLogSlider:
    return widgets.FloatLogSlider(
        value=value, base=10, min=-4, max=1.5, step=0.25, description="learning rate", readout_format=".3g",
        style=_WIDE, layout=_ROW, continuous_update=False,
        tooltip="How big each step is. Too small: slow. Too large: the loss jumps around or blows up.",
    )  # fmt: skip


def optimizer_dropdown(value: str = "sgd") -> widgets.Dropdown:
    return widgets.Dropdown(
        options=[("SGD", "sgd"), ("SGD + momentum", "momentum"), ("Adam", "adam")], value=value,
        description="optimizer", style=_WIDE, layout=_ROW,
    )  # fmt: skip


def dataset_dropdown(value: str = "moons") -> widgets.Dropdown:
    """The built-in datasets, and `value` too when it names a dataset of your own."""
    options = sorted({*GENERATORS, value})
    return widgets.Dropdown(options=options, value=value, description="dataset", style=_WIDE, layout=_ROW)


def shuffle_checkbox(value: bool = True) -> widgets.Checkbox:
    return widgets.Checkbox(value=value, description="shuffle every epoch", indent=False)


def x_axis_buttons(value: str = "epoch") -> widgets.ToggleButtons:
    return widgets.ToggleButtons(
        options=[("epochs", "epoch"), ("steps", "step"), ("samples", "samples"), ("seconds", "seconds")],
        value=value, description="x axis", style={**_WIDE, "button_width": "6em"},
        tooltips=["full passes", "optimizer steps", "training samples seen", "wall-clock time"],
    )  # fmt: skip


def seed_box(value: int = 0) -> widgets.BoundedIntText:
    return widgets.BoundedIntText(
        value=value, min=0, max=10**6, description="seed", style=_WIDE, layout=widgets.Layout(width="14em"),
        tooltip="Fixes the initial weights, the split and every epoch's order.",
    )  # fmt: skip


def compare_checkbox(value: bool = False) -> widgets.Checkbox:
    return widgets.Checkbox(value=value, description="compare all reset modes", indent=False)


def iterations_line(n_train: int, batch_size: int, drop_last: bool = False) -> str:
    """The sentence under the batch-size slider: what one epoch costs in steps."""
    steps = steps_per_epoch(n_train, batch_size, drop_last)
    return (
        f"N = {n_train:,} training samples · batch {batch_size:,} → "
        f"<b>{steps:,} iteration{'s' if steps != 1 else ''} per epoch</b>"
    ).replace(",", "\u2009")
