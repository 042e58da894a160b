"""Fixtures for the browser tests: one headless Chromium, and JupyterLab / Voilà servers started for the session.

Servers listen on 127.0.0.1 only, on a free port, with a random token, and are stopped by their PID
at the end. Every test module here is marked `browser`; its tests are skipped (with the reason) only where
no Chromium or no Playwright can be found.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from jupyter_pages import NOTEBOOKS, ROOT

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
]  # fmt: skip
START_TIMEOUT_S = 120  # a server's start on a busy 2-core machine, kernels not included

# JupyterLab settings for the test session: no news or update prompts, no autosave (the tests run
# the committed notebooks and must never write them back), every cell in the DOM (no windowing).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def find_chromium() -> str | None:
    """A Chromium to drive: Debian's (`make browser` installs it) or one Playwright downloaded itself."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if found := shutil.which(name):
            return found
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            bundled = playwright.chromium.executable_path
    except Exception:
        return None
    return bundled if bundled and Path(bundled).exists() else None


@pytest.fixture(scope="session")
def browser():
    pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed (pip install playwright)")
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium found: run `make browser` (apt-get install chromium) or `playwright install chromium`")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Server:
    """A running Jupyter server: where it is, how to get in, and its log (shown when something fails)."""

    url: str
    token: str
    process: subprocess.Popen
    log: Path

    def address(self, path: str) -> str:
        separator = "&" if "?" in path else "?"
        return f"{self.url}{path}{separator}token={self.token}"

    def api(self, method: str, path: str) -> object:
        request = urllib.request.Request(self.address(path), method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(argv: list[str], probe_path: str, port: int, token: str, log: Path, env: dict) -> Server:
    with log.open("w") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    server = Server(f"http://127.0.0.1:{port}", token, process, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{argv[2]} exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            urllib.request.urlopen(server.address(probe_path), timeout=5).close()
            return server
        except OSError:
            time.sleep(0.25)
    _stop(server.process)
    raise RuntimeError(f"{argv[2]} did not answer within {START_TIMEOUT_S} s:\n{server.log_tail()}")


def _stop(process: subprocess.Popen) -> None:
    """Stop one server by its PID: politely (it shuts its kernels down), then firmly."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def lab(browser, tmp_path_factory) -> Iterator[Server]:
    """JupyterLab serving notebooks/, with its own settings, workspaces and runtime folders."""
    home = tmp_path_factory.mktemp("lab")
    for name, values in LAB_SETTINGS.items():
        path = home / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = _free_port(), secrets.token_hex(24)
    argv = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={NOTEBOOKS}",
        "--ServerApp.allow_root=True", f"--LabApp.user_settings_dir={home / 'settings'}",
        f"--LabApp.workspaces_dir={home / 'workspaces'}", "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: run all cells and wait for them
    ]  # fmt: skip
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    server = _start(argv, "/api/status", port, token, home / "lab.log", env)
    yield server
    _stop(server.process)


@pytest.fixture(scope="session")
def voila(browser, tmp_path_factory) -> Iterator[Server]:
    """Voilà serving notebooks/ the way `make present` does (code hidden, widgets live)."""
    home = tmp_path_factory.mktemp("voila")
    port, token = _free_port(), secrets.token_hex(24)
    argv = [sys.executable, "-m", "voila", "--no-browser", "--Voila.ip=127.0.0.1", "--strip_sources=True",
            "--template=epochviz", f"--port={port}", f"--Voila.token={token}", VOILA_SKIPS, str(NOTEBOOKS)]  # fmt: skip
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTER_PATH": str(ROOT / "tools" / "jupyter")}
    server = _start(argv, "/", port, token, home / "voila.log", env)
    yield server
    _stop(server.process)


# Voilà loads every JupyterLab extension installed, and Notebook 7's (`@jupyter-notebook/lab-extension`, for
# JupyterLab's "Open in Notebook") fails in its page: "The getter for the shared module is not a function"
VOILA_SKIPS = "--VoilaConfiguration.extension_denylist=['@jupyter-notebook/lab-extension']"


@pytest.fixture(scope="session")
def notebook7(browser, tmp_path_factory) -> Iterator[Server]:
    """Jupyter Notebook 7 (`jupyter notebook`) serving notebooks/, with the same settings as the `lab` fixture."""
    pytest.importorskip("notebook", minversion="7", reason="Notebook 7 is not installed (it is in the `lab` extra)")
    home = tmp_path_factory.mktemp("notebook7")
    for name, values in LAB_SETTINGS.items():  # Notebook 7 is built from JupyterLab's plugins: same settings
        path = home / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = _free_port(), secrets.token_hex(24)
    argv = [
        sys.executable, "-m", "notebook", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={NOTEBOOKS}",
        f"--JupyterNotebookApp.user_settings_dir={home / 'settings'}",
        f"--JupyterNotebookApp.workspaces_dir={home / 'workspaces'}",
        "--JupyterNotebookApp.expose_app_in_browser=True",  # window.jupyterapp: run all cells and wait for them
        *(["--allow-root"] if os.geteuid() == 0 else []),
    ]  # fmt: skip
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    server = _start(argv, "/api/status", port, token, home / "notebook7.log", env)
    try:
        yield server
    finally:
        _stop(server.process)
