"""pytest set-up shared by the tests and the notebooks (nbval)."""


def pytest_collectstart(collector):
    # Plotly figure JSON holds every float of a figure: its last digits may differ between CPUs,
    # so notebooks print the numbers that matter (rounded) and nbval compares those instead.
    # The figures' static PNGs (tools/figure_images.py) differ in their pixels between machines
    # (fonts, anti-aliasing); nbval skips PNGs unless run with --nbdime, and here always.
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("application/vnd.plotly.v1+json", "image/png")
