"""An explorer for a page with no kernel: its runs computed ahead of time, driven by plain HTML controls.

`make html` puts one where a notebook's explorer stood. Around the explorer's own setting it
trains a grid (every reset policy × three batch sizes × three learning rates × two seeds, for
`epochs` epochs; fewer epochs are the first epochs of those runs, exactly as the live explorer
shows them) with `train_many`, and embeds each run's batch, epoch and validation losses. Native
`<select>` and range inputs, each with its label (keyboard and screen-reader friendly), pick a
run; a few lines of JavaScript swap its numbers into the figure, styled by `plots.loss_curves`
itself, and redraw it in place. Nothing is fetched: the page needs only plotly.js beside it.
"""

from __future__ import annotations

import html
import json
import math
from itertools import product

import numpy as np

from .. import plots
from ..batched import train_many
from ..plots.axes import epoch_edges
from ..plots.style import epoch_marks, series_colours, translucent
from ..policies import POLICIES, RESETS
from .explorer import RunExplorer

LR_FACTORS = (10**-0.5, 1.0, 10**0.5)  # the learning rates offered: the explorer's, and half a decade either side
SEEDS = 2  # the explorer's seed and the next one
DIGITS = 6  # significant digits kept of each loss: float32 holds about 7

_SCRIPT = """
(function () {
  const root = document.getElementById(%(id)s);
  const grid = JSON.parse(root.querySelector("script[type='application/json']").textContent);
  const figure = root.querySelector(".epochviz-offline-figure");
  const inputs = Object.fromEntries([...root.querySelectorAll("[data-setting]")].map(el => [el.dataset.setting, el]));
  function draw() {
    const key = ["reset", "batch_size", "lr", "seed"].map(name => inputs[name].value).join("|");
    const run = grid.runs[key], epochs = Math.min(+inputs.epochs.value, run.epoch.length);
    const perEpoch = grid.steps_per_epoch[inputs.batch_size.value];
    const steps = Math.min(run.step.length, epochs * perEpoch);
    const colour = grid.colours[inputs.reset.value];
    const epochX = run.epoch.slice(0, epochs).map((_, i) => i + 1);
    const traces = grid.template.data.map(trace => Object.assign({}, trace));
    traces[0].x = run.step.slice(0, steps).map((_, i) => (i + 1) / perEpoch);
    traces[0].y = run.step.slice(0, steps);
    traces[1].x = epochX; traces[1].y = run.epoch.slice(0, epochs);
    traces[2].x = epochX; traces[2].y = run.validation.slice(0, epochs);
    traces.forEach((trace, i) => {
      trace.line = Object.assign({}, trace.line, {color: i === 0 ? grid.faint[inputs.reset.value] : colour});
      trace.legendgrouptitle = {text: "reset: " + inputs.reset.value};
      const marker = i === 2 ? {line: {color: colour, width: 2}} : {color: colour};
      if (trace.marker) trace.marker = Object.assign({}, trace.marker, marker);
    });
    const layout = Object.assign({}, grid.template.layout, {shapes: grid.marks[epochs]});
    Plotly.react(figure, traces, layout, {displaylogo: false, responsive: true});
    inputs.epochs.nextElementSibling.textContent = epochs;
    root.querySelector(".epochviz-offline-status").textContent =
      "epoch " + epochs + " · " + perEpoch + " steps per epoch · " +
      (epochs * grid.train_samples).toLocaleString("en") + " samples seen" +
      (run.epoch.length < grid.epochs ? " · this run diverged in epoch " + (run.epoch.length + 1) : "");
  }
  Object.values(inputs).forEach(input => input.addEventListener("input", draw));
  draw();
})();
"""


def offline_explorer(explorer: RunExplorer, *, epochs: int | None = None, element_id: str = "epochviz-offline") -> str:
    """The HTML (controls, figure, data and script) of `explorer` precomputed around its current setting.

    `epochs`: how many epochs the runs last (default: the explorer's, at least 10). The page that
    holds it must load plotly.js first. The explorer's dataset, optimizer, shuffling and other
    settings stay as they are; the page says so.
    """
    values = explorer.request().values
    epochs = epochs or max(values["epochs"], 10)
    data = explorer.dataset
    offered = [value for _, value in explorer.controls["batch_size"].options]  # (label, batch size) pairs
    batch_sizes = _neighbours(offered, values["batch_size"])
    slider = explorer.controls["lr"]
    rates = sorted({_round(min(max(values["lr"] * f, 10**slider.min), 10**slider.max)) for f in LR_FACTORS})
    seeds = [values["seed"] + k for k in range(SEEDS)]
    runs, steps_per_epoch = {}, {}
    for batch_size in batch_sizes:
        variants = [{"reset": reset, "lr": lr, "seed": seed} for reset, lr, seed in product(RESETS, rates, seeds)]
        trained = train_many(data, variants, epochs=epochs, batch_size=batch_size, optimizer=values["optimizer"],
                             shuffle=values["shuffle"], **explorer.train_args)  # fmt: skip
        for variant, run in zip(variants, trained, strict=True):
            runs["|".join(map(str, (variant["reset"], batch_size, variant["lr"], variant["seed"])))] = _numbers(run)
        steps_per_epoch[str(batch_size)] = trained[0].steps_per_epoch
    template = plots.loss_curves(trained[0], title=f"{data.name}: precomputed runs").to_plotly_json()
    for trace in template["data"]:
        for name in ("x", "y", "customdata"):
            trace.pop(name, None)
        trace["hovertemplate"] = "%{y:.3g}<extra></extra>"
    template["layout"].pop("annotations", None)
    longest = max(trained, key=lambda run: run.completed_epochs)
    colours = dict(zip(RESETS, series_colours(list(RESETS)), strict=True))
    grid = {
        "runs": runs, "steps_per_epoch": steps_per_epoch, "epochs": epochs, "colours": colours,
        "faint": {reset: translucent(colour, 0.4) for reset, colour in colours.items()},
        "train_samples": len(longest.train_indices), "template": template,
        "marks": {k: epoch_marks(epoch_edges(longest.first(k), "epoch"))
                  for k in range(1, longest.completed_epochs + 1)},
    }  # fmt: skip
    return _page(element_id, grid, values, batch_sizes, rates, seeds, epochs)


def _page(element_id: str, grid: dict, values: dict, batch_sizes: list, rates: list, seeds: list, epochs: int) -> str:
    def select(setting: str, label: str, options: list, chosen) -> str:
        items = "".join(
            f'<option value="{option}"{" selected" if option == chosen else ""}>{html.escape(shown)}</option>'
            for option, shown in options
        )
        return (f'<label for="{element_id}-{setting}">{label}</label> <select id="{element_id}-{setting}" '
                f'data-setting="{setting}" style="font-size:15px;margin-right:1.2em">{items}</select>')  # fmt: skip

    chosen_lr = min(rates, key=lambda rate: abs(math.log(rate / values["lr"])))
    controls = "".join([
        select("reset", "reset", [(r, POLICIES[r].label) for r in RESETS], values["reset"]),
        select("batch_size", "batch size", [(b, str(b)) for b in batch_sizes], values["batch_size"]),
        select("lr", "learning rate", [(r, f"{r:.3g}") for r in rates], chosen_lr),
        select("seed", "seed", [(s, str(s)) for s in seeds], values["seed"]),
        f'<label for="{element_id}-epochs">epochs</label> <input type="range" id="{element_id}-epochs" '
        f'data-setting="epochs" min="1" max="{epochs}" value="{min(values["epochs"], epochs)}" '
        f'style="vertical-align:middle"><output for="{element_id}-epochs"></output>',
    ])  # fmt: skip
    fixed = f"optimizer {values['optimizer']}, shuffling {'on' if values['shuffle'] else 'off'}"
    data = json.dumps(grid, separators=(",", ":")).replace("</", "<\\/")
    return (
        f'<div id="{element_id}" class="epochviz-offline" style="font-size:15px;margin:8px 0">'
        f'<p style="margin:4px 0;color:#0072B2"><b>Precomputed explorer.</b> Every curve here was trained ahead of '
        f"time by epochviz ({len(grid['runs'])} settings, {fixed}); the controls pick one and redraw it, with no "
        f"kernel and no network. For the live explorer, with every setting, run this notebook "
        f"(<code>make lab</code>).</p><div>{controls}</div>"
        f'<div class="epochviz-offline-status" role="status" style="color:#555;margin:4px 0"></div>'
        f'<div class="epochviz-offline-figure" style="height:460px"></div>'
        f'<script type="application/json">{data}</script>'
        f"<script>{_SCRIPT % {'id': json.dumps(element_id)}}</script></div>"
    )


def _numbers(run) -> dict:
    """A run's losses as short lists: every batch, every epoch (training) and every epoch (validation)."""

    def rounded(values) -> list:
        return [float(f"{value:.{DIGITS}g}") for value in np.asarray(values, dtype=float)]

    return {"step": rounded(run.steps["loss"]), "epoch": rounded(run.epochs["train_loss"]),
            "validation": rounded(run.epochs["val_loss"])}  # fmt: skip


def _neighbours(options: list, value) -> list:
    """`value` and the options on either side of it."""
    at = options.index(value)
    return options[max(0, at - 1) : at + 2]


def _round(lr: float) -> float:
    return float(f"{lr:.3g}")
