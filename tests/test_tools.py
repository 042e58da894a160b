"""The notebook tools on a slow or failing notebook: the others still run, the failure is named in one line."""

import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent


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


def run_tool(*arguments) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *map(str, arguments)], capture_output=True, text=True, timeout=300)


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
