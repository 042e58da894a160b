"""The controls a learner touches, each labelled in their words, with a tooltip that explains it.

Each factory checks the value it starts from, naming the explorer's argument that gave it, so
`explorer(lr=1e6)` fails with a message instead of a slider silently moved to its end; the
ranges live here, beside the slider that offers them.
"""

from __future__ import annotations

import math

import ipywidgets as widgets

from .. import checks
from ..data import GENERATORS, steps_per_epoch
from ..objectives import OPTIMIZER_LABELS, OPTIMIZERS
from ..plots.axes import X_UNITS
from ..policies import POLICIES, RESETS

_WIDE = {"description_width": "8.5em"}
_ROW = {"width": "26em"}  # a dict, not one Layout: each control gets its own, closed with it

LR_EXPONENTS = (-4, 1.5)  # the learning-rate slider spans 10^-4 … 10^1.5 (about 0.0001 … 32)


def epochs_slider(value: int = 20, maximum: int = 100, *, limit: int = checks.MAX_EPOCHS) -> widgets.IntSlider:
    """Epochs from 1 to `maximum`, or up to `value` when it starts higher (never above `limit`)."""
    checks.whole("epochs", value, minimum=1, maximum=limit)
    return widgets.IntSlider(
        value=value, min=1, max=max(maximum, value), description="epochs", style=_WIDE, layout=_ROW,
        tooltip="How many full passes over the training data. Fewer epochs of a run already trained redraw at once.",
    )  # fmt: skip


def batch_size_options(n_train: int, value: int = 1) -> list[tuple[str, int]]:
    """Powers of two below the training-set size, `value` among them, then the full batch."""
    sizes = {2**k for k in range(int(math.log2(max(n_train - 1, 1))) + 1)} | {value}
    return [(str(size), size) for size in sorted(sizes) if size < n_train] + [(f"full ({n_train})", n_train)]


def batch_size_slider(n_train: int, value: int = 32) -> widgets.SelectionSlider:
    """Batch sizes for `n_train` training samples, starting at `value` (a full batch when it is n_train or more).

    As in `train`, a batch larger than the training set is one full batch; any other size is
    kept as it is, even when it is not a power of two.
    """
    value = min(checks.whole("batch_size", value, minimum=1, maximum=checks.MAX_SAMPLES), n_train)
    return widgets.SelectionSlider(
        options=batch_size_options(n_train, value), value=value, description="batch size", style=_WIDE, layout=_ROW,
        continuous_update=False,
        tooltip="Samples per optimizer step. It changes how many steps an epoch takes, not what an epoch is.",
    )  # fmt: skip


def keep_batch_size(slider: widgets.SelectionSlider, n_before: int, n_train: int) -> int:
    """Give `slider` the batch sizes of a training set of `n_train` samples (it had `n_before`); return the new value.

    The learner's batch size stays when it still fits, and a full batch stays a full batch;
    a batch larger than the new training set becomes its full batch.

    The options are set first and the value second, outside `hold_trait_notifications`: while
    notifications are held, a SelectionSlider checks the new value against its *old* options
    (a TraitError) and afterwards jumps back to its first option (ipywidgets 8). Setting the
    options moves the value to the first option for a moment; the explorer ignores that
    moment (see `Explorer.adjust`).
    """
    current = slider.value
    value = n_train if current >= min(n_before, n_train) else current
    slider.options = batch_size_options(n_train, value)
    slider.value = value
    return value


def reset_buttons(value: str = "never") -> widgets.ToggleButtons:
    """One button per reset policy, labelled and explained as `policies.POLICIES` says."""
    return widgets.ToggleButtons(
        options=[(policy.label, name) for name, policy in POLICIES.items()],
        value=checks.choice("reset", value, RESETS), description="reset",
        tooltips=[policy.tooltip for policy in POLICIES.values()], style={**_WIDE, "button_width": "13.5em"},
    )  # fmt: skip


def whole_slider(name: str, value: int, low: int, high: int, **options) -> widgets.IntSlider:
    """A slider from `low` to `high` starting at `value`, which must lie in that range (the error names `name`)."""
    value = checks.whole(name, value, minimum=low, maximum=high)
    return widgets.IntSlider(value=value, min=low, max=high, continuous_update=False, **options)


def in_log_range(name: str, value, low_exponent: float, high_exponent: float) -> float:
    """`value`, if it is a number a log slider from 10^low_exponent to 10^high_exponent can show."""
    value = checks.number(name, value, low=0, low_open=True)
    low, high = 10**low_exponent, 10**high_exponent
    if not low <= value <= high:
        raise ValueError(f"{name} must be from {low:.3g} to {high:.3g}, the range of its slider; got {value!r}.")
    return value


def learning_rate_slider(value: float = 0.1) -> widgets.FloatLogSlider:
    low, high = LR_EXPONENTS
    return widgets.FloatLogSlider(
        value=in_log_range("lr", value, low, high), base=10, min=low, max=high, step=0.25, description="learning rate",
        readout_format=".3g",
        style=_WIDE, layout=_ROW, continuous_update=False,
        tooltip="How big each step is. Too small: slow. Too large: the loss jumps around or blows up.",
    )  # fmt: skip


def optimizer_dropdown(value: str = "sgd") -> widgets.Dropdown:
    return widgets.Dropdown(
        options=[(OPTIMIZER_LABELS[name], name) for name in OPTIMIZERS],
        value=checks.choice("optimizer", value, OPTIMIZERS), description="optimizer", style=_WIDE, layout=_ROW,
    )  # fmt: skip


def dataset_dropdown(value: str = "moons") -> widgets.Dropdown:
    """The built-in datasets, and `value` too when it names a dataset of your own."""
    options = sorted({*GENERATORS, value})
    return widgets.Dropdown(options=options, value=value, description="dataset", style=_WIDE, layout=_ROW)


def shuffle_checkbox(value: bool = True) -> widgets.Checkbox:
    return widgets.Checkbox(value=checks.flag("shuffle", value), description="shuffle every epoch", indent=False)


def x_axis_buttons(value: str = "epoch") -> widgets.ToggleButtons:
    return widgets.ToggleButtons(
        options=[("epochs", "epoch"), ("steps", "step"), ("samples", "samples"), ("seconds", "seconds")],
        value=checks.choice("x", value, X_UNITS), description="x axis", style={**_WIDE, "button_width": "6em"},
        tooltips=["full passes", "optimizer steps", "training samples seen", "wall-clock time"],
    )  # fmt: skip


def seed_box(value: int = 0) -> widgets.BoundedIntText:
    return widgets.BoundedIntText(
        value=checks.seed(value), min=0, max=checks.MAX_SEED, description="seed", style=_WIDE,
        layout=widgets.Layout(width="14em"),
        tooltip="Fixes the initial weights, the split and every epoch's order.",
    )  # fmt: skip


def compare_checkbox(value: bool = False) -> widgets.Checkbox:
    return widgets.Checkbox(value=checks.flag("compare", value), description="compare all reset modes", indent=False)


def iterations_line(n_train: int, batch_size: int, drop_last: bool = False) -> str:
    """The sentence under the batch-size slider: what one epoch costs in steps."""
    steps = steps_per_epoch(n_train, batch_size, drop_last)
    return (
        f"N = {n_train:,} training samples · batch {batch_size:,} → "
        f"<b>{steps:,} iteration{'s' if steps != 1 else ''} per epoch</b>"
    ).replace(",", "\u2009")
