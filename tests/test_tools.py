"""The notebook tools: a failing notebook is named in one line and the others still run; figures get static images."""

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))  # tools/ is scripts, not a package

ROOT = Path(__file__).resolve().parent.parent
PNG = "image/png"
PLOTLY = "application/vnd.plotly.v1+json"


def notebooks(folder: Path) -> list[Path]:
    paths = []
    for name, source in (("10_bad", 'raise ValueError("boom")'), ("11_good", "print(6 * 7)")):
        path = folder / f"{name}.ipynb"
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {name}"),
                                                   nbformat.v4.new_code_cell(source)])  # fmt: skip
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(notebook, path)
        paths.append(path)
    return paths


def run_tool(*arguments, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, *map(str, arguments)], capture_output=True, text=True, timeout=300,
                          env=environment)  # fmt: skip


def test_execute_notebooks_names_the_failing_notebook_and_runs_the_rest(tmp_path):
    bad, good = notebooks(tmp_path)
    done = run_tool(ROOT / "tools" / "execute_notebooks.py", bad, good)
    assert done.returncode != 0
    assert "10_bad.ipynb: a cell failed: ValueError: boom" in done.stderr + done.stdout
    assert nbformat.read(good, 4).cells[1].outputs[0]["text"] == "42\n"
    assert "without encryption" not in done.stderr, "the kernel talks over IPC, not TCP"


def test_make_html_still_writes_the_other_pages_and_the_index(tmp_path):
    bad, good = notebooks(tmp_path)
    site = tmp_path / "site"
    done = run_tool(ROOT / "tools" / "export_html.py", "--out", site, bad, good)
    assert done.returncode != 0 and "10_bad.ipynb: a cell failed: ValueError: boom" in done.stderr
    assert (site / "11_good.html").exists() and (site / "index.html").exists()
    assert not (site / "10_bad.html").exists()
    assert "without encryption" not in done.stderr


FIGURES = """\
import ipywidgets as widgets, plotly.graph_objects as go
display(go.Figure(go.Scatter(y=[1, 3, 2]), layout_height=300))
bars = go.FigureWidget(go.Bar(y=[1, 2]), layout_width=400, layout_height=250)
bars.data[0].uid = "bars"  # instead of a random one, which the widget's text would print differently on every run
widgets.VBox([widgets.IntSlider(), bars])
"""


def figures_notebook(folder: Path) -> Path:
    """A notebook with a Plotly figure, then a live widget holding a FigureWidget (as an explorer does)."""
    path = folder / "12_figures.ipynb"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(FIGURES)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


def png_size(encoded: str) -> tuple[int, int]:
    png = base64.b64decode(encoded)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")  # IHDR: width, height


@pytest.mark.skipif(not (shutil.which("chromium") or Path("/usr/bin/chromium").exists()), reason="no Chromium")
def test_execute_notebooks_gives_every_figure_and_explorer_a_static_image(tmp_path):
    path = figures_notebook(tmp_path)
    done = run_tool(ROOT / "tools" / "execute_notebooks.py", path)
    assert done.returncode == 0, done.stdout + done.stderr
    figure, widget, snapshot = nbformat.read(path, 4).cells[0].outputs
    assert PLOTLY in figure.data, "JupyterLab keeps the interactive figure"
    assert png_size(figure.data[PNG]) == (800, 300), "a figure without a width is drawn 800 px wide, at its height"
    assert PNG not in widget.data, "where the widget cannot run, its own output shows its note, if any"
    assert snapshot.output_type == "display_data" and set(snapshot.data) == {PNG}
    assert png_size(snapshot.data[PNG]) == (400, 250), "the widget's figure, at its own size"


def test_execute_notebooks_without_chromium_warns_and_keeps_the_figures(tmp_path):
    path = figures_notebook(tmp_path)
    done = run_tool(ROOT / "tools" / "execute_notebooks.py", path, env={"BROWSER_PATH": str(tmp_path / "no-chromium")})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning: 12_figures.ipynb: its 2 figures got no static image (No browser found" in done.stderr
    figure, *others = nbformat.read(path, 4).cells[0].outputs
    assert PLOTLY in figure.data and PNG not in figure.data
    assert len(others) == 1, "no snapshot either"


def outputs_notebook(*outputs: list[dict]) -> nbformat.NotebookNode:
    """A run notebook: a heading, then one code cell per entry of `outputs`, holding those outputs."""
    cells = [nbformat.v4.new_markdown_cell("# outputs")]
    for index, cell_outputs in enumerate(outputs):
        cell = nbformat.v4.new_code_cell(f"summary_{index} = train()\nsummary_{index}")
        cell.outputs = [nbformat.from_dict(output) for output in cell_outputs]
        cells.append(cell)
    return nbformat.v4.new_notebook(cells=cells)


def table(val_loss: str, seconds: str, figure: list[float]) -> list[dict]:
    """A cell's outputs: a printed line with seconds, a table as text and HTML, a figure as Plotly JSON and PNG."""
    return [
        {"output_type": "stream", "name": "stdout", "text": f"trained in {seconds}\n"},
        {"output_type": "execute_result", "execution_count": 1, "metadata": {},
         "data": {"text/plain": f"   run  last_val_loss\n0  mlp  {val_loss}", "text/html": f"<td>{val_loss}</td>"}},
        {"output_type": "display_data", "metadata": {}, "data": {PLOTLY: {"data": [{"y": figure}]}, PNG: "iVBO"}},
    ]  # fmt: skip


def test_kernel_paths_agree_when_only_what_nbval_ignores_differs():
    from execute_notebooks import disagreements

    saved = outputs_notebook(table("0.45", "1.2 s", [0.30877648]), [])
    other = outputs_notebook(table("0.45", "3.4 s", [0.30877651]), [])
    assert disagreements({"avx512": saved, "avx2": other}) == [], "seconds, figures' floats and PNGs may differ"


def test_a_cell_printed_differently_on_another_kernel_path_is_named_with_both_values():
    from execute_notebooks import disagreements

    saved = outputs_notebook([], table("0.45", "1 s", [0.4]))
    same, rounded_down = (
        outputs_notebook([], table("0.45", "1 s", [0.4])),
        outputs_notebook([], table("0.44", "1 s", [0.4])),
    )
    [found] = disagreements({"avx512": saved, "default": same, "avx2": rounded_down})
    assert found.startswith("cell 2 `summary_1 = train()` prints differently with ATEN_CPU_CAPABILITY=avx512 (-) "
                            "and =avx2 (+)")  # fmt: skip
    assert "-0  mlp  0.45" in found and "+0  mlp  0.44" in found
    assert "-<td>0.45</td>" in found and "+<td>0.44</td>" in found


def test_execute_notebooks_refuses_to_save_a_notebook_that_depends_on_the_cpu_kernels(tmp_path):
    from epochviz.hardware import cpu_kernel_paths

    if len(cpu_kernel_paths()) < 2:
        pytest.skip("this CPU runs only torch's plain kernels")
    path = tmp_path / "13_kernels.ipynb"
    source = "import torch\nprint(torch.backends.cpu.get_cpu_capability())"
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("print(6 * 7)"), nbformat.v4.new_code_cell(source)]
    )
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    unsaved = path.read_bytes()
    done = run_tool(ROOT / "tools" / "execute_notebooks.py", path)
    assert done.returncode != 0
    best, plainest = cpu_kernel_paths()[-1], cpu_kernel_paths()[0]
    assert "13_kernels.ipynb: not saved, it printed differently on two of this CPU's kernel paths" in done.stderr
    assert (f"cell 1 `import torch` prints differently with ATEN_CPU_CAPABILITY={best} (-) and ={plainest} (+)"
            in done.stderr)  # fmt: skip
    assert f"-{best.upper()}\n" in done.stderr and f"+{plainest.upper()}\n" in done.stderr
    assert "cell 0" not in done.stderr, "42 is 42 on every path"
    assert path.read_bytes() == unsaved
