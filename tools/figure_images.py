"""Static PNG images of Plotly figures, for the places that run no plotly.js.

A notebook saves a Plotly figure as JSON (`application/vnd.plotly.v1+json`), which only a page running
plotly.js draws: GitHub, nbviewer, VS Code's preview and nbconvert's HTML show nothing. Beside the JSON,
`tools/execute_notebooks.py` saves a PNG that kaleido draws in a headless Chromium (one browser for all
of a notebook's figures). JupyterLab still shows the interactive figure: its Plotly renderer (rank 2)
outranks the PNG one (rank 90), shows the saved PNG until the pointer enters, then draws the live figure.
nbval ignores the PNGs: their pixels differ between machines (fonts, anti-aliasing).

Why not `plotly.io.write_images` or kaleido's `start_sync_server`: the first draws every figure at
plotly's default 700×500 px instead of the figure's own height; the second waits forever when its
browser cannot start (kaleido 1.5.1).
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
from pathlib import Path

import kaleido
from kaleido.errors import ChromeNotFoundError
from PIL import Image

PNG = "image/png"
# px, for a figure that sets no width (live, it stretches to the notebook's width). JupyterLab shows the PNG
# until the pointer enters, uncropped only where the output is at least this wide: 848 px in a 1280 px
# window with the file browser open.
WIDTH = 800
HEIGHT = 460  # px, for a figure that sets no height (epochviz's set theirs: plots/style.py)
COLOURS = 256  # a chart's PNG in 256 colours looks the same and is about 4× smaller than Chromium's RGBA one
DEBIAN_CHROMIUM = Path("/usr/bin/chromium")  # `make browser` installs it; kaleido looks for Chrome by other names


class NoBrowser(RuntimeError):
    """No Chromium for kaleido to drive: the figures get no static image."""


def pngs(figures: list[dict]) -> list[str]:
    """Each figure (a Plotly figure as a dict) drawn as a PNG, base64-encoded as a notebook stores it.

    All of them are drawn in one headless Chromium, at the figure's own size (WIDTH × HEIGHT where it
    sets none), at scale 1, then stored in COLOURS colours: an 800×460 chart takes 15–50 KB instead of
    60–100 KB. Raises NoBrowser, saying why, when no Chromium is found (set BROWSER_PATH to one).
    """
    if not figures:
        return []
    if "BROWSER_PATH" not in os.environ and DEBIAN_CHROMIUM.exists():
        os.environ["BROWSER_PATH"] = str(DEBIAN_CHROMIUM)
    try:
        drawn = asyncio.run(_draw(figures))
    except ChromeNotFoundError as error:
        raise NoBrowser(str(error).split(". ")[0]) from None
    return [base64.b64encode(_fewer_colours(image)).decode("ascii") for image in drawn]


async def _draw(figures: list[dict]) -> list[bytes]:
    # mathjax=False: kaleido would load MathJax from a CDN, and no figure here writes TeX
    async with kaleido.Kaleido(n=1, mathjax=False) as browser:
        return [await browser.calc_fig(figure, opts=_size(figure)) for figure in figures]


def _size(figure: dict) -> dict:
    layout = figure.get("layout", {})
    return {"format": "png", "width": layout.get("width", WIDTH), "height": layout.get("height", HEIGHT), "scale": 1}


def _fewer_colours(png: bytes) -> bytes:
    drawn = Image.open(io.BytesIO(png)).convert("RGBA")
    opaque = Image.alpha_composite(Image.new("RGBA", drawn.size, "white"), drawn).convert("RGB")
    # median cut without dithering keeps lines and text crisp (dithering would speckle the flat areas)
    palette = opaque.quantize(colors=COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    smaller = io.BytesIO()
    palette.save(smaller, format="PNG", optimize=True)
    return smaller.getvalue()
