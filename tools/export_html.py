"""Export the notebooks to a small site of pages that open from disk, with no kernel and no internet.

    python tools/export_html.py [--saved] [--out site] [notebooks/NN_name.ipynb ...]   (default: all of notebooks/)

Each page is the notebook as JupyterLab shows it (nbconvert's "lab" template), where:
- every Plotly figure is an interactive plotly.js figure (zoom, pan, hover), drawn by one shared
  copy of plotly.js beside the pages (`plotly.min.js`);
- the main explorer (`ev.explorer`) becomes a precomputed one (`epochviz.widgets.offline`): its
  runs trained ahead of time over a grid of settings around the notebook's, picked with real
  HTML controls; every other explorer keeps its note ("an interactive explorer appears here when
  this notebook runs") and, below it, a static snapshot of its figure;
- links between notebooks point to their pages; `index.html` lists the pages.
Nothing is fetched from the network: nbconvert's require.js, MathJax, Mermaid and widget-manager
scripts (all from CDNs) are left out; the notebooks use none of them.

By default each notebook is run first (about as long as `make notebooks`) so that the explorers
exist to be precomputed and snapshotted; `--saved` exports the saved outputs as they are (figures,
and the explorers' notes with the static image of their figure that `make notebooks` saved), in seconds.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
from pathlib import Path

import nbformat
import plotly.io as pio
from execute_notebooks import PLOTLY, WIDGET_VIEW, NotebookFailed, run_with_snapshots  # tools/ is on the path
from figure_images import PNG
from jinja2 import DictLoader
from nbconvert import HTMLExporter
from plotly.offline import get_plotlyjs

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"

# nbconvert's lab template without anything fetched from a CDN, and with plotly.js inlined once
TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}
{%- if resources.plotly_js -%}
<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>
<script src="plotly.min.js"></script>
{%- endif -%}
{%- endblock html_head_js -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""

SNAPSHOT_NOTE = (
    '<p style="color:#555;font-size:14px;margin:6px 0 0">Its figure as the notebook drew it: a snapshot '
    "(zoom and hover work; the sliders need a running notebook).</p>"
)
WIDGET_NOTE = (
    '<div style="border:1px dashed #0072B2;padding:8px 12px;color:#0072B2;font-size:15px">'
    "▶ an interactive widget appears here when this notebook runs.</div>"
)


def figure_html(figure: dict) -> str:
    """An interactive plotly.js figure (plotly.js itself is loaded once, in the page's head)."""
    return pio.to_html(figure, include_plotlyjs=False, full_html=False, validate=False,
                       config={"displaylogo": False, "responsive": True})  # fmt: skip


def make_static(notebook: nbformat.NotebookNode, snapshots: dict[str, dict]) -> int:
    """Turn Plotly figures into HTML, the main explorer into its precomputed version and other live widgets into
    their note (+ snapshots). Returns the figures made."""
    figures = 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if PLOTLY in data:
                data.pop(PNG, None)  # the interactive figure replaces its static image
                data["text/html"] = figure_html(data.pop(PLOTLY))
                figures += 1
            elif WIDGET_VIEW in data:
                widget = snapshots.get(data.pop(WIDGET_VIEW)["model_id"], {})
                if widget.get("offline"):
                    data["text/html"] = widget["offline"]
                    figures += 1
                    continue
                shown = widget.get("figures", [])
                note = data.get("text/html", WIDGET_NOTE)
                data["text/html"] = note + (SNAPSHOT_NOTE if shown else "") + "".join(map(figure_html, shown))
                figures += len(shown)
    notebook.metadata.pop("widgets", None)
    return figures


def title(notebook: nbformat.NotebookNode, fallback: str) -> str:
    """The notebook's first heading, for the page title and the index."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and (heading := re.search(r"^#\s+(.+)$", cell.source, re.MULTILINE)):
            return heading.group(1).strip()
    return fallback


def export(path: Path, out: Path, *, execute: bool) -> tuple[Path, str, int]:
    notebook = nbformat.read(path, as_version=4)
    snapshots = run_with_snapshots(notebook, path, offline=True) if execute else {}
    figures = make_static(notebook, snapshots)
    notebook.metadata["title"] = title(notebook, path.stem)
    exporter = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"epochviz.html.j2": TEMPLATE})])
    exporter.template_file = "epochviz.html.j2"
    page, _ = exporter.from_notebook_node(notebook, resources={"plotly_js": bool(figures)})
    page = re.sub(r'href="(\d\d_\w+)\.ipynb', r'href="\1.html', page)  # links between notebooks
    target = out / f"{path.stem}.html"
    target.write_text(page, encoding="utf-8")
    return target, notebook.metadata["title"], figures


def write_index(out: Path, pages: list[tuple[Path, str, int]]) -> None:
    items = "\n".join(f'<li><a href="{page.name}">{html.escape(name)}</a></li>' for page, name, _ in pages)
    out.joinpath("index.html").write_text(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>epochviz notebooks</title></head>\n'
        '<body style="font-family:sans-serif;max-width:50em;margin:2em auto">\n<h1>epochviz notebooks</h1>\n'
        f"<ol start=0>\n{items}\n</ol>\n<p>Start with the first. These pages open from disk with no Python and no "
        "network. Their main explorers are <b>precomputed</b>: their controls pick among runs trained ahead of time. "
        "For the live explorers, with every setting, run the notebooks (<code>make lab</code>).</p>\n"
        "</body></html>\n",
        encoding="utf-8",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/NN_*.ipynb")
    parser.add_argument("--out", type=Path, default=ROOT / "site", help="folder for the pages (default: site/)")
    parser.add_argument("--saved", action="store_true", help="export the saved outputs without running anything")
    arguments = parser.parse_args()
    arguments.out.mkdir(parents=True, exist_ok=True)
    arguments.out.joinpath("plotly.min.js").write_text(get_plotlyjs(), encoding="utf-8")  # one copy for every page
    pages, failed = [], []
    targets = arguments.notebooks or sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    for path in targets:
        try:  # a notebook that fails is named, and the others are still exported
            pages.append(export(path, arguments.out, execute=not arguments.saved))
        except NotebookFailed as error:
            print(f"FAILED: {error}", flush=True)
            failed.append(str(error))
            continue
        target, _, figures = pages[-1]
        print(f"{target.name}  {figures} figures, {target.stat().st_size / 1e6:.1f} MB", flush=True)
    if len(targets) > 1:
        write_index(arguments.out, pages)
    if failed:
        sys.exit("these notebooks have no page:\n  " + "\n  ".join(failed))


if __name__ == "__main__":
    main()
