"""The main explorer: sliders for epochs, batch size, reset behaviour and more, redrawing live loss curves.

It is the seed's answer made tangible. "Train 5 more epochs" carries the curve on from the
weights it ended with; "Start over" trains again from the very same initial weights and
retraces the same path; "New seed" draws new initial weights. Earlier settings stay on the
figure as faded "ghost" curves, so before and after can be compared without screenshots.
"""

from __future__ import annotations

import ipywidgets as widgets
import plotly.graph_objects as go

from .. import plots
from ..batched import train_many
from ..config import RESETS
from ..data import Dataset, load, train_validation_split
from ..run import Run
from ..train import resume, train
from . import controls as make
from .base import Explorer, Request

GHOSTS = 3  # earlier settings kept on the figure, faded
RUN_SETTINGS = ("dataset", "batch_size", "lr", "optimizer", "reset", "shuffle", "seed")  # what a trained run depends on


class RunExplorer(Explorer):
    """Train small networks with the settings on the sliders and watch the loss across epochs.

    >>> explorer = RunExplorer("moons", epochs=20)          # doctest: +SKIP
    >>> explorer.controls["reset"].value = "weights"          # every epoch starts over: a saw-tooth
    >>> explorer.wait(); explorer.run.epochs.train_loss        # the numbers behind the curve
    """

    def __init__(self, data: str | Dataset = "moons", *, epochs: int = 20, batch_size: int = 32, lr: float = 0.1,
                 optimizer: str = "sgd", reset: str = "never", shuffle: bool = True, seed: int = 0,
                 x: str = "epoch", compare: bool = False, show: tuple[str, ...] | None = None,
                 buttons: tuple[str, ...] = ("more", "restart", "new_seed", "clear"),
                 **train_args) -> None:  # fmt: skip
        self.train_args = {"val_fraction": 0.2, **train_args}  # fixed settings passed on to train()
        self._datasets: dict[str, Dataset] = {}
        if isinstance(data, Dataset):  # your own dataset joins the dropdown under its name
            self._datasets[data.name] = data
            data = data.name
        self._ghosts: list[tuple[str, Run]] = []
        self._shown: tuple[tuple, dict[str, Run]] | None = None
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
        controls["dataset"].observe(self._dataset_changed, names="value")  # before the redraw below sees it
        super().__init__(controls)
        self.iterations = widgets.HTML()
        self.shown_controls = show or tuple(controls)
        actions = {
            "more": ("Train 5 more epochs", "continue from the weights the last epoch ended with", "forward",
                     self.train_more),
            "restart": ("Start over", "train again from the same initial weights", "undo", self.start_over),
            "new_seed": ("New seed", "new initial weights, a new split and new orders", "random", self.new_seed),
            "clear": ("Clear ghosts", "remove the faded curves of earlier settings", "eraser", self.clear_ghosts),
        }  # fmt: skip
        self.buttons = {name: _button(*actions[name][:3]) for name in buttons}
        for name, button in self.buttons.items():
            button.on_click(lambda _, action=actions[name][3]: self._guarded(action))
        for name in ("batch_size", "dataset"):
            controls[name].observe(lambda _: self._update_iterations(), names="value")
        self._update_iterations()
        self.draw_now()

    # --- what the buttons do (also callable from code) --------------------------------------------

    def train_more(self, epochs: int = 5) -> None:
        """Carry training on for `epochs` more epochs from where it stopped."""
        slider = self.controls["epochs"]
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

    @property
    def run(self) -> Run:
        """The run shown now (with "compare", the one with the selected reset mode)."""
        _, runs = self._shown
        return runs.get(self.controls["reset"].value, next(iter(runs.values())))

    # --- the Explorer contract -----------------------------------------------------------------

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
        settings = {name: values[name] for name in ("epochs", "batch_size", "lr", "optimizer", "shuffle", "seed")}
        if values["compare"]:  # three small models at once cost about as much as one (see batched.py)
            grown: dict[str, Run] = {}

            def each_epoch(run: Run) -> None:
                grown[run.config["reset"]] = run
                partial(dict(grown))

            runs = train_many(data, [{"reset": mode} for mode in RESETS], on_epoch=each_epoch,
                              **settings, **self.train_args)  # fmt: skip
            return dict(zip(RESETS, runs, strict=True))
        mode = values["reset"]
        earlier = (cached or {}).get(mode)
        if earlier is not None and earlier._training is not None and not earlier.diverged:
            # more epochs of a run already trained: carry on from where it stopped
            return {mode: resume(earlier, values["epochs"], on_epoch=lambda run: partial({mode: run}))}
        run = train(data, reset=mode, on_epoch=lambda run: partial({mode: run}), **settings, **self.train_args)
        return {mode: run}

    def render(self, request: Request, result: dict[str, Run]) -> go.Figure:
        values = request.values
        shown = {f"reset: {mode}": run.first(values["epochs"]) for mode, run in result.items()}
        figure = plots.loss_curves(shown, x=values["x"], title=_title(values))
        if self._ghosts:
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
        if self._shown is not None and self._shown[0] != request.key and not values["compare"]:
            before_key, before = self._shown
            same_data = before_key[0][0] == request.key[0][0]  # losses of different datasets do not compare
            if same_data and len(before) == 1:
                label = _ghost_label(before_key[0], request.key[0])
                self._ghosts = [ghost for ghost in self._ghosts if ghost[0] != label]
                self._ghosts.insert(0, (label, next(iter(before.values())).first(values["epochs"])))
                del self._ghosts[GHOSTS:]
        self._shown = (request.key, result)

    def describe(self, request: Request, result: dict[str, Run]) -> tuple[str, str]:
        run = self.run.first(request.values["epochs"])
        status = (
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
        return status, message

    def layout(self) -> widgets.Widget:
        def column(*names: str) -> widgets.VBox:
            parts = [self.controls[name] for name in names if name in self.shown_controls]
            if "batch_size" in self.shown_controls and "batch_size" in names:
                parts.insert(parts.index(self.controls["batch_size"]) + 1, self.iterations)
            return widgets.VBox(parts)

        return widgets.VBox([
            widgets.HBox([column("dataset", "epochs", "batch_size", "lr"), column("optimizer", "seed", "shuffle",
                                                                                   "compare")]),
            column("reset", "x"), widgets.HBox(list(self.buttons.values())),
            widgets.HBox([self.progress, self.status]), self.message, self.figure,
        ])  # fmt: skip

    # --- internals -----------------------------------------------------------------------------

    def _dataset(self, name: str) -> Dataset:
        if name not in self._datasets:
            self._datasets[name] = load(name)
        return self._datasets[name]

    def _n_train(self, name: str) -> int:
        data = self._dataset(name)
        return len(train_validation_split(len(data), self.train_args["val_fraction"], 0)[0])

    def _dataset_changed(self, change: dict) -> None:
        self._ghosts.clear()
        make.keep_batch_size(self.controls["batch_size"], self._n_train(change["new"]))

    def _update_iterations(self) -> None:
        n_train = self._n_train(self.controls["dataset"].value)
        self.iterations.value = make.iterations_line(n_train, self.controls["batch_size"].value)

    def _guarded(self, action) -> None:
        try:
            action()
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


def _button(label: str, tooltip: str, icon: str) -> widgets.Button:
    return widgets.Button(description=label, tooltip=tooltip, icon=icon, layout=widgets.Layout(width="auto"))


def _title(values: dict) -> str:
    optimizer = {"sgd": "SGD", "momentum": "SGD + momentum", "adam": "Adam"}[values["optimizer"]]
    return f"{values['dataset']} · batch {values['batch_size']} · {optimizer}, learning rate {values['lr']:.3g}"


def _ghost_label(before: tuple, now: tuple) -> str:
    """Name a ghost by what differed: "before: batch size 32, lr 0.1"."""
    changed = [
        f"{name.replace('_', ' ')} {value:.3g}" if isinstance(value, float) else f"{name.replace('_', ' ')} {value}"
        for (name, value), (_, current) in zip(before, now, strict=True)
        if value != current
    ]
    return "before: " + (", ".join(changed) or "same settings")
