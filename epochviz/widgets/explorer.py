"""The main explorer: sliders for epochs, batch size, reset behaviour and more, redrawing live loss curves.

It is the seed's answer made tangible. "Train 5 more epochs" carries the curve on from the
weights it ended with; "Start over" trains again from the very same initial weights and
retraces the same path; "New seed" draws new initial weights. Earlier settings stay on the
figure as faded "ghost" curves, so before and after can be compared without screenshots.
"""

from __future__ import annotations

from dataclasses import fields

import ipywidgets as widgets
import plotly.graph_objects as go

from .. import checks, plots
from ..config import TrainConfig
from ..data import Dataset, dataset, steps_per_epoch, train_validation_split
from ..objectives import OPTIMIZER_LABELS
from ..policies import RESETS
from ..run import Run
from ..train import resume, train
from . import controls as make
from .base import Explorer, Request, weakly
from .boundary_panel import BoundaryPanel

CURVE_WIDTH = 600  # pixels: the loss curve beside the controls on a projector, below them in an 800 px window
GHOSTS = 3  # earlier settings kept on the figure, faded
RUN_SETTINGS = ("dataset", "batch_size", "lr", "optimizer", "reset", "shuffle", "seed")  # what a trained run depends on
# Above this many optimizer steps a setting is slow: about 10 s at the ~2 000 steps a second these small networks
# train on one laptop CPU thread. The slowest a slider reaches (digits, batch 1, 100 epochs) is 143 800 steps.
SLOW_STEPS = 20_000
STEPS_PER_SECOND = 2_000  # only for the rough time in the warning; a busy or older machine is slower


class RunExplorer(Explorer):
    """Train small networks with the settings on the sliders and watch the loss across epochs.

    >>> explorer = RunExplorer("moons", epochs=20)          # doctest: +SKIP
    >>> explorer.controls["reset"].value = "weights"          # every epoch starts over: a saw-tooth
    >>> explorer.wait(); explorer.run.epochs.train_loss        # the numbers behind the curve

    Every argument is checked as `train` checks it, and against the range of its control
    (the learning rate from 0.0001 to about 32): a bad one raises a ValueError or TypeError
    naming it. Settings passed on to `train` (val_fraction, memory_budget_mb, …) stay fixed.

    Changing the dataset keeps the batch size when it still fits; a full batch stays a full
    batch, and a batch larger than the new training set becomes its full batch, as the status
    line says.

    Slow settings: a run costs epochs × ⌈N_train / batch_size⌉ optimizer steps, so batch 1 on
    the digits with 100 epochs is 143 800 steps, a minute or more on a laptop. Above SLOW_STEPS
    (20 000, about 10 s) a note says so before training starts. Training always runs in the
    background (a slow first setting too, so the cell that creates the explorer returns at
    once), draws its progress every epoch, and stops at the end of the current epoch when any
    control changes: a slow setting never locks the notebook.
    """

    def __init__(self, data: str | Dataset = "moons", *, epochs: int = 20, batch_size: int = 32, lr: float = 0.1,
                 optimizer: str = "sgd", reset: str = "never", shuffle: bool = True, seed: int = 0,
                 x: str = "epoch", compare: bool = False, show: tuple[str, ...] | None = None,
                 buttons: tuple[str, ...] = ("more", "restart", "new_seed", "clear"),
                 **train_args) -> None:  # fmt: skip
        fixed = sorted({field.name for field in fields(TrainConfig)} - {"epochs", *RUN_SETTINGS})
        for name in train_args:
            checks.choice("a setting passed on to train()", name, fixed)
        self.train_args = {"val_fraction": 0.2, **train_args}  # fixed settings passed on to train()
        TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, reset=reset, shuffle=shuffle,
                    seed=seed, **self.train_args)  # refuses what train() would refuse, with its messages  # fmt: skip
        self._datasets: dict[str, Dataset] = {}
        if isinstance(data, Dataset):  # your own dataset joins the dropdown under its name
            self._datasets[data.name] = data
            data = data.name
        self._ghosts: list[tuple[str, Run]] = []
        self._shown: tuple[Request, dict[str, Run]] | None = None  # the request drawn last, and its runs
        self._note = ""  # what the last change did to another control, said in the status line
        n_train = self._n_train(data)
        controls = {
            "dataset": make.dataset_dropdown(data),
            "epochs": make.epochs_slider(epochs),
            "batch_size": make.batch_size_slider(n_train, batch_size),
            "reset": make.reset_buttons(reset),
            "lr": make.learning_rate_slider(lr),
            "optimizer": make.optimizer_dropdown(optimizer),
            "shuffle": make.shuffle_checkbox(shuffle),
            "seed": make.seed_box(seed),
            "x": make.x_axis_buttons(x),
            "compare": make.compare_checkbox(compare),
        }
        # 600 px: beside the controls on a projector (JupyterLab's 1280 px leaves ~1 000 for a notebook), and
        # within an 800 px window below them. (A width that follows the page is left at plotly's 700 px when the
        # figure is first drawn before JupyterLab lays its cell out, cut off under its neighbour.)
        super().__init__(controls, width=CURVE_WIDTH)
        self.panel = BoundaryPanel(height=self.figure.layout.height)
        self.iterations = widgets.HTML()
        self.shown_controls = _names("show", show, controls) if show is not None else tuple(controls)
        actions = {
            "more": ("Train 5 more epochs", "continue from the weights the last epoch ended with", "forward",
                     self.train_more),
            "restart": ("Start over", "train again from the same initial weights", "undo", self.start_over),
            "new_seed": ("New seed", "new initial weights, a new split and new orders", "random", self.new_seed),
            "clear": ("Clear ghosts", "remove the faded curves of earlier settings", "eraser", self.clear_ghosts),
        }  # fmt: skip
        self.buttons = {name: _button(*actions[name][:3]) for name in _names("buttons", buttons, actions)}
        guarded = weakly(self._guarded)  # a button must not keep a dropped explorer alive
        for name, button in self.buttons.items():
            button.on_click(lambda _, action=actions[name][3].__name__: guarded(action))
        self.own(self.panel.box, self.panel.figure, self.panel.note, self.iterations, *self.buttons.values())
        self._update_iterations()
        if self._steps_to_train(self.request()) > SLOW_STEPS:
            self.refresh()  # too slow to finish inside the cell: train in the background, showing progress
        else:
            self.draw_now()

    # --- what the buttons do (also callable from code) --------------------------------------------

    def train_more(self, epochs: int = 5) -> None:
        """Carry training on for `epochs` more epochs from where it stopped.

        `epochs` is a whole number from 1 to as many as keep the epochs slider within
        checks.MAX_EPOCHS; the slider's range grows to fit.
        """
        slider = self.controls["epochs"]
        room = checks.MAX_EPOCHS - slider.value
        if room < 1:
            raise ValueError(f"train_more cannot add epochs: the epochs slider already stands at its limit, "
                             f"{checks.MAX_EPOCHS:,}.")  # fmt: skip
        checks.whole(f"train_more's epochs (the slider stands at {slider.value:,} of at most {checks.MAX_EPOCHS:,})",
                     epochs, minimum=1, maximum=room)  # fmt: skip
        slider.max = max(slider.max, slider.value + epochs)
        slider.value += epochs

    def start_over(self) -> None:
        """Train the current settings again from the same initial weights; the curve retraces its path."""
        self.forget(self.request().key)
        self.message.value = ""
        self.refresh()

    def new_seed(self) -> None:
        """New initial weights (and a new split and sample orders): a different but equally valid run."""
        self.controls["seed"].value += 1

    def clear_ghosts(self) -> None:
        self._ghosts.clear()
        self.refresh()

    def close(self) -> None:
        """Stop training, free every run it holds (ghosts too) and close its widgets (see Explorer.close)."""
        self._ghosts.clear()
        self._shown = None
        super().close()

    @property
    def run(self) -> Run:
        """The run shown now, as many epochs of it as the figure shows (with "compare", the selected reset mode's)."""
        if self._shown is None:
            raise ValueError("no run is shown yet: it is still training (call wait()) or it failed (see the message).")
        request, runs = self._shown
        return _up_to(runs.get(request.values["reset"], next(iter(runs.values()))), request.values["epochs"])

    # --- the Explorer contract -----------------------------------------------------------------

    @property
    def dataset(self) -> Dataset:
        """The dataset the controls have chosen."""
        return self._dataset(self.controls["dataset"].value)

    def request(self) -> Request:
        values = {name: control.value for name, control in self.controls.items()}
        modes = RESETS if values["compare"] else (values["reset"],)
        key = tuple(tuple((name, values[name] if name != "reset" else mode) for name in RUN_SETTINGS) for mode in modes)
        return Request(key=key, values=values)

    def covers(self, result: dict[str, Run], request: Request) -> bool:
        epochs = request.values["epochs"]
        return all(run.completed_epochs >= epochs or run.diverged for run in result.values())

    def compute(self, request: Request, cached: dict[str, Run] | None, partial) -> dict[str, Run]:
        values = request.values
        data = self._dataset(values["dataset"])
        # train's arguments from the controls: the run settings but the two passed on their own, and the epochs
        settings = {name: values[name] for name in ("epochs", *RUN_SETTINGS) if name not in ("dataset", "reset")}
        if values["compare"]:
            return self._train_side_by_side(data, settings, dict(cached or {}), partial)
        mode = values["reset"]
        earlier = (cached or {}).get(mode)
        if earlier is not None and earlier.can_resume:
            # more epochs of a run already trained: carry on from where it stopped
            return {mode: resume(earlier, values["epochs"], on_epoch=lambda run: partial({mode: run}))}
        run = train(data, reset=mode, on_epoch=lambda run: partial({mode: run}), **settings, **self.train_args)
        return {mode: run}

    def render(self, request: Request, result: dict[str, Run]) -> go.Figure:
        values = request.values
        shown = {f"reset: {mode}": _up_to(run, values["epochs"]) for mode, run in result.items()}
        figure = plots.loss_curves(shown, x=values["x"], title=_title(values))
        if self._ghosts:
            # the x axis follows the setting on screen: a longer ghost is cut at its edge, and the epoch bands
            # (labelled for this range) keep their room
            end = max(max(trace.x, default=0.0) for trace in figure.data)
            figure.update_xaxes(range=[-0.02 * end, 1.02 * end])
            faded = plots.loss_curves(dict(self._ghosts), x=values["x"], show_steps=False, show_validation=False)
            for (label, _), trace in zip(self._ghosts, faded.data, strict=True):  # one epoch curve per ghost
                trace.update(name=label, opacity=0.35, line={"dash": "dot"}, legendgroup="ghosts",
                             legendgrouptitle={"text": "earlier settings"}, hoverinfo="skip")  # fmt: skip
            figure.add_traces(faded.data)
        return figure

    def before_draw(self, request: Request, result: dict[str, Run]) -> None:
        """Track what is on screen; when the run settings change, the previous curve becomes a ghost."""
        values = request.values
        self.progress.max = values["epochs"]
        self.progress.value = min([values["epochs"], *(run.completed_epochs for run in result.values())])
        if self._shown is not None and self._shown[0].key != request.key and not values["compare"]:
            before_key, before = self._shown[0].key, self._shown[1]
            same_data = before_key[0][0] == request.key[0][0]  # losses of different datasets do not compare
            if same_data and len(before) == 1:
                label = _ghost_label(before_key[0], request.key[0])
                self._ghosts = [ghost for ghost in self._ghosts if ghost[0] != label]
                self._ghosts.insert(0, (label, _up_to(next(iter(before.values())), values["epochs"])))
                del self._ghosts[GHOSTS:]
        self._shown = (request, result)

    def describe(self, request: Request, result: dict[str, Run]) -> tuple[str, str]:
        run = self.run
        status = self._noted(
            f"epoch {run.completed_epochs} / {request.values['epochs']} · {run.steps_per_epoch:,} steps per epoch · "
            f"{run.total_samples_seen:,} samples seen · {run.elapsed_s:.2f} s"
        ).replace(",", "\u2009")
        diverged = [r for r in result.values() if r.diverged]
        message = ""
        if diverged:
            epoch, step = diverged[0].diverged_at
            message = (
                f"The loss blew up (became infinite or NaN) at epoch {epoch}, step {step}: a learning rate of "
                f"{request.values['lr']:.3g} is too large here, so each step overshoots and the weights blow up. "
                f"The run stops there. Try a smaller learning rate."
            )
        elif troubled := [r for r in result.values() if r.blew_up or r.at_chance]:
            message = _not_learning(troubled[0], request.values["lr"])
        return status, message

    def announce(self, request: Request) -> tuple[str, str]:
        """The status "training…", and before a slow setting a note: how many steps, and that any change stops it."""
        values, steps = request.values, self._steps_to_train(request)
        message = ""
        if steps > SLOW_STEPS:
            per_epoch = self._steps_per_epoch(values)
            modes = " over all reset modes" if values["compare"] else ""
            message = (
                f"This setting takes {steps:,} optimizer steps ({steps // per_epoch:,} epochs{modes} × {per_epoch:,} "
                f"steps per epoch), roughly {_duration(steps / STEPS_PER_SECOND)} on a laptop. The curve grows as it "
                f"trains; change any control to stop it at the end of the current epoch. A larger batch or fewer "
                f"epochs is faster."
            ).replace(",", "\u2009")
        return self._noted("<i>training…</i>"), message

    def adjust(self, change: dict) -> None:
        """A new dataset clears the ghosts (its losses do not compare) and gets batch sizes that fit it."""
        self._note = ""
        batch_size = self.controls["batch_size"]
        if change["owner"] is self.controls["dataset"]:
            self._ghosts.clear()
            asked, n_train = batch_size.value, self._n_train(change["new"])
            kept = make.keep_batch_size(batch_size, self._n_train(change["old"]), n_train)
            if kept != asked:
                self._note = (f"batch size {asked:,} → full batch ({n_train:,}): {change['new']} has {n_train:,} "
                              f"training samples").replace(",", "\u2009")  # fmt: skip
        self._update_iterations()

    def draw_beside(self, request: Request, result: dict[str, Run]) -> None:
        """The boundary panel: the run on screen (with "compare", the selected reset mode's) at the same epoch."""
        run = self.run
        self.panel.show(run, f"reset: {run.config.reset}")

    def figures(self) -> tuple:
        return (self.figure, self.panel.figure)

    def layout(self) -> widgets.Widget:
        """Controls in a column beside the loss curve, the boundary below the curve; a narrow page wraps the figures
        below the controls.

        On a projector (1280 × 720) the sliders and the whole figure fit on the screen at once.
        """

        def shown(*names: str) -> list[widgets.Widget]:
            return [self.controls[name] for name in names if name in self.shown_controls]

        iterations = [self.iterations] if "batch_size" in self.shown_controls else []
        checkboxes = widgets.HBox(shown("shuffle", "compare"), layout=widgets.Layout(flex_flow="row wrap"))
        buttons = widgets.HBox(list(self.buttons.values()), layout=widgets.Layout(flex_flow="row wrap"))
        controls = widgets.VBox([
            *shown("dataset", "epochs", "batch_size"), *iterations, *shown("lr", "optimizer", "seed"), checkboxes,
            *shown("reset", "x"), buttons, widgets.HBox([self.progress, self.status]), self.message,
        ], layout=widgets.Layout(width="27em", flex="0 0 auto"))  # fmt: skip
        figures = widgets.VBox([self.figure, self.panel.box], layout=widgets.Layout(flex="0 0 auto"))
        return widgets.HBox([controls, figures],
                            layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start"))  # fmt: skip

    # --- internals -----------------------------------------------------------------------------

    def _dataset(self, name: str) -> Dataset:
        if name not in self._datasets:
            self._datasets[name] = dataset(name)
        return self._datasets[name]

    def _n_train(self, name: str) -> int:
        data = self._dataset(name)
        return len(train_validation_split(len(data), self.train_args["val_fraction"], 0)[0])

    def _steps_per_epoch(self, values: dict) -> int:
        return steps_per_epoch(self._n_train(values["dataset"]), values["batch_size"],
                               self.train_args.get("drop_last", False))  # fmt: skip

    def _train_side_by_side(self, data: Dataset, settings: dict, runs: dict[str, Run], partial) -> dict[str, Run]:
        """A run per reset mode, one epoch of each in turn so the curves grow together; `runs` already trained go on.

        Each run is made by `train` and carried on by `resume`, epoch by epoch, which gives the very
        numbers one `train` call would. So "Train 5 more epochs" continues every curve from the
        weights it ended with, as it does for one mode. (`train_many` would train the modes together
        faster, but its runs cannot resume.)
        """
        for epoch in range(1, settings["epochs"] + 1):
            behind = [mode for mode in RESETS if mode not in runs or _can_go_on(runs[mode], epoch)]
            for mode in behind:
                if mode in runs:
                    resume(runs[mode], epoch)
                else:
                    runs[mode] = train(data, reset=mode, **{**settings, "epochs": epoch}, **self.train_args)
            if behind:
                partial(dict(runs))
        return runs

    def _steps_to_train(self, request: Request) -> int:
        """Optimizer steps that `request` still needs, over all its runs: a run already trained in part only resumes."""
        values = request.values
        cached = self._cache.get(request.key) or {}
        modes = RESETS if values["compare"] else (values["reset"],)
        done = [cached[mode].completed_epochs if mode in cached and cached[mode].can_resume else 0 for mode in modes]
        return sum(max(values["epochs"] - epochs, 0) for epochs in done) * self._steps_per_epoch(values)

    def _noted(self, status: str) -> str:
        return f"<b>{self._note}</b> · {status}" if self._note else status

    def _update_iterations(self) -> None:
        n_train = self._n_train(self.controls["dataset"].value)
        self.iterations.value = make.iterations_line(n_train, self.controls["batch_size"].value,
                                                     self.train_args.get("drop_last", False))  # fmt: skip

    def _guarded(self, action: str) -> None:
        try:
            getattr(self, action)()
        except Exception as error:
            self._show_error(error)


def explorer(data: str | Dataset = "moons", **defaults) -> RunExplorer:
    """The main explorer: epochs, batch size, reset behaviour, learning rate… and the loss, live.

    >>> ev.explorer("moons", epochs=20)   # in a notebook: sliders above a live Plotly figure  # doctest: +SKIP

    What to notice: shortening the epochs redraws instantly (a shorter run is the beginning of
    a longer one); "Train 5 more epochs" continues the curve; reset "weights" turns it into a
    saw-tooth that never gets better.
    """
    return RunExplorer(data, **defaults)


def _not_learning(run: Run, lr: float) -> str:
    """What the learner must hear about a finite run that blew up, or whose accuracy stayed at chance."""
    where = "" if len(run.val_indices) else " among the training samples (none are held out)"
    chance = f"{run.chance_accuracy():.0%}, what always answering the largest class gets{where}"
    if run.blew_up:
        losses = run.steps["loss"]
        guessing = f" Its accuracy stayed at chance ({chance})." if run.at_chance else ""
        return (
            f"This run blew up without becoming infinite: its loss rose to {losses.max():.2g} from "
            f"{losses.iloc[0]:.2g}, so the lower values after that are not a trained model.{guessing} A learning "
            f"rate of {lr:.3g} overshoots here; try a smaller one."
        )
    return (
        f"Accuracy never rose above chance ({chance}): the model has learned nothing yet. Too small a learning rate "
        f"learns too slowly, too large a one overshoots; try another, or more epochs."
    )


def _up_to(run: Run, epochs: int) -> Run:
    """The first `epochs` epochs of `run`, or all it has so far (it is still training, or it diverged)."""
    return run.first(min(epochs, run.completed_epochs))


def _can_go_on(run: Run, epoch: int) -> bool:
    """Whether `run` stopped before `epoch` and can train on to it (a run that diverged cannot)."""
    return run.completed_epochs < epoch and not run.diverged


def _button(label: str, tooltip: str, icon: str) -> widgets.Button:
    return widgets.Button(description=label, tooltip=tooltip, icon=icon, layout=widgets.Layout(width="auto"))


def _title(values: dict) -> str:
    optimizer = OPTIMIZER_LABELS[values["optimizer"]]
    return f"{values['dataset']} · batch {values['batch_size']} · {optimizer}, learning rate {values['lr']:.3g}"


def _names(argument: str, names, allowed) -> tuple[str, ...]:
    """`names` as a tuple, if it is a tuple or list of names that `allowed` holds."""
    if not isinstance(names, (tuple, list)):
        raise TypeError(f"{argument} must be a tuple of names; got {names!r} ({type(names).__name__}).")
    return tuple(checks.choice(argument, name, allowed) for name in names)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} minutes"


def _ghost_label(before: tuple, now: tuple) -> str:
    """Name a ghost by what differed: "before: batch size 32, lr 0.1"."""
    changed = [
        f"{name.replace('_', ' ')} {value:.3g}" if isinstance(value, float) else f"{name.replace('_', ' ')} {value}"
        for (name, value), (_, current) in zip(before, now, strict=True)
        if value != current
    ]
    return "before: " + (", ".join(changed) or "same settings")
