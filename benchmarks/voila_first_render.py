"""Voilà's time to first render of each notebook, with and without preheated kernels (`make present`).

    python benchmarks/voila_first_render.py [notebooks/NN_name.ipynb ...]

For each mode, starts Voilà on 127.0.0.1 (a free port, the epochviz template), waits until it
answers (and, when preheating, until every notebook's waiting kernel has run it), then times one
request per notebook until the whole page has arrived: Voilà sends a page once its cells have run.
Prints seconds per notebook; the machine should be quiet.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREHEAT_WAIT_S = 240  # preheating runs every notebook once at start-up, a few at a time on 2 cores


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def seconds_to_render(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as response:
        response.read()
    return time.perf_counter() - started


def measure(names: list[str], *, preheat: bool) -> dict[str, float]:
    port, token = free_port(), secrets.token_hex(16)
    argv = [sys.executable, "-m", "voila", "--no-browser", "--Voila.ip=127.0.0.1", f"--port={port}",
            f"--Voila.token={token}", "--template=epochviz", "--strip_sources=True",
            "--VoilaConfiguration.extension_denylist=['@jupyter-notebook/lab-extension']",
            str(ROOT / "notebooks")]  # fmt: skip
    if preheat:
        argv += ["--preheat_kernel=True", "--pool_size=1"]
    env = {**os.environ, "JUPYTER_PATH": str(ROOT / "tools" / "jupyter")}
    server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/?token={token}", timeout=5).read()
                break
            except OSError:
                time.sleep(0.5)
        if preheat:
            time.sleep(PREHEAT_WAIT_S)
        return {name: seconds_to_render(f"{base}/voila/render/{name}?token={token}") for name in names}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def main(paths: list[str]) -> None:
    every = sorted(path.name for path in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    names = [Path(path).name for path in paths] or every
    cold, warm = measure(names, preheat=False), measure(names, preheat=True)
    print(f"{'notebook':40s} {'no preheat':>11s} {'preheated':>10s}")
    for name in names:
        print(f"{name:40s} {cold[name]:10.1f}s {warm[name]:9.1f}s")


if __name__ == "__main__":
    main(sys.argv[1:])
