"""Explorers displayed with ipywidgets 7 (what Colab ships), faked here so that the normal suite keeps it true.

tests/compat runs epochviz on Colab's and Kaggle's real versions (make compat).
"""

import ipywidgets

from epochviz.widgets import explorer, predict
from epochviz.widgets.front_end import WIDGET_VIEW


def test_with_ipywidgets_7_an_explorer_and_a_prediction_still_hand_ipython_a_live_widget(monkeypatch):
    widget = explorer("moons", epochs=2)
    question = predict("How many steps make one epoch?", answer=10)
    monkeypatch.delattr(ipywidgets.Widget, "_repr_mimebundle_")  # ipywidgets 7 (Colab's) has none
    for shown in (widget, question):
        bundle = shown._repr_mimebundle_()
        view = bundle[WIDGET_VIEW]
        assert view["version_major"] == 2 and view["model_id"] in ipywidgets.Widget.widgets, bundle
        assert bundle["text/html"], "the note for places that cannot run it is gone"
