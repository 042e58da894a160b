"""`make lab`, as the README promises: JupyterLab on 127.0.0.1, opening notebooks/00_start_here.ipynb."""

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ADDRESS = re.compile(r"http://127\.0\.0\.1:\d+/\S*")


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_lab_prints_the_address_of_the_first_notebook():
    # a make of its own: under `make test` the inherited MAKEFLAGS would hold its output back until it ends
    alone = {name: value for name, value in os.environ.items() if name not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    server = subprocess.Popen(
        ["make", "--no-print-directory", "lab", "LAB_ARGS=--no-browser --ServerApp.port=0"], cwd=ROOT, env=alone,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    printed = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(ADDRESS.search(line) for line in printed):
            line = server.stdout.readline()
            if not line and server.poll() is not None:
                break
            printed.append(line)
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # make, JupyterLab and anything it started
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    address = next((match.group() for line in printed if (match := ADDRESS.search(line))), None)
    assert address is not None, "".join(printed[-20:])
    assert "/lab/tree/notebooks/00_start_here.ipynb" in address, address
    overrides = ROOT / ".venv/share/jupyter/lab/settings/overrides.json"
    assert '"fetchNews": "false"' in overrides.read_text()
