"""What the notebook's front end needs before it can show an explorer, on the versions learners have.

JupyterLab, Notebook 7 and Voilà need nothing. Colab ships ipywidgets 7.7.1 and plotly 5.24.1
(tests/compat checks epochviz on them) and draws only its built-in widgets until its custom
widget manager is turned on; plotly's FigureWidget is not one of them (plotly 5: plotly's own
widget; plotly 6 and later: an anywidget, which turns the manager on itself). ipywidgets 7 widgets
display themselves instead of handing IPython a mime bundle, so a bundle is built for them here.
"""

from __future__ import annotations

import sys

import ipywidgets as widgets

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def prepare() -> None:
    """In Colab, turn on its custom widget manager, so that a FigureWidget is drawn; elsewhere do nothing."""
    if "google.colab" in sys.modules:  # imported by every Colab kernel at start, and by nothing else
        from google.colab import output

        output.enable_custom_widget_manager()


def view_bundle(widget: widgets.Widget, **kwargs) -> dict:
    """The mime bundle that shows `widget` live: ipywidgets 8 makes it, for ipywidgets 7 it is built here."""
    if hasattr(widgets.Widget, "_repr_mimebundle_"):  # the base class's: a subclass may call this from its own
        return widgets.Widget._repr_mimebundle_(widget, **kwargs)
    return {WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": widget.model_id}}
