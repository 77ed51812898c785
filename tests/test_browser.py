"""A real browser: JupyterLab on 127.0.0.1, the explorer notebook run in headless Chromium.

Needs Debian's ``chromium`` (``.ci/run`` installs it) and Playwright's Python package, which
drives that binary: no browser is downloaded. The screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                "(apt-get install chromium; .ci/run does it)")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-dev-shm-usage"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving a copy of the explorer notebook; no token, no network lookups."""
    root = tmp_path_factory.mktemp("lab")
    for name in ("forward_vs_reverse.ipynb", "computational_graphs.ipynb"):
        shutil.copy(ROOT / "notebooks" / name, root)
    home = tmp_path_factory.mktemp("home")
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    notebook_settings = home / "settings" / "@jupyterlab" / "notebook-extension"
    notebook_settings.mkdir(parents=True)  # render every cell: pictures off screen count too
    (notebook_settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    port = _free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTERLAB_WORKSPACES_DIR=str(home),
               JUPYTER_PLATFORM_DIRS="1")
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.port={port}",
               "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0",
               "--IdentityProvider.token=", "--ServerApp.password=",
               "--ServerApp.disable_check_xsrf=True", f"--ServerApp.root_dir={root}",
               "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
               f"--LabApp.user_settings_dir={home / 'settings'}",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
        command.append("--allow-root")
    log = open(home / "lab.log", "w")  # noqa: SIM115 - closed in the finalizer
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                log.close()
                pytest.fail("JupyterLab did not start:\n" + (home / "lab.log").read_text()[-3000:])
            time.sleep(0.5)
    yield url
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


def test_explorer_notebook_runs_and_steps_in_a_real_browser(lab):
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(90_000)
        page.goto(f"{lab}/lab/tree/forward_vs_reverse.ipynb")
        page.wait_for_selector(".jp-Notebook .jp-Cell")
        page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget"
                               " && window.jupyterapp.shell.currentWidget.sessionContext"
                               " && window.jupyterapp.shell.currentWidget.sessionContext.session")
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        explorer = page.locator(".cad-explorer").first
        explorer.wait_for()
        caption = explorer.locator(".cad-caption")
        graph = explorer.locator(".cad-graph")
        graph.locator("svg").wait_for()
        explorer.scroll_into_view_if_needed()  # JupyterLab renders only what is in view
        page.wait_for_function(  # the widgets render one by one: wait for the caption too
            "el => el.innerText.includes('step 1/8')", arg=caption.element_handle())
        svg_width = graph.locator("svg").bounding_box()["width"]
        cell_width = explorer.bounding_box()["width"]
        assert svg_width <= cell_width, "the picture is wider than the cell"
        assert explorer.locator(".cad-slider .widget-readout").inner_text().strip() == "1"
        before = graph.inner_html()
        explorer.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "explorer-step1.png"))

        next_button = explorer.locator("button.cad-next")
        for _ in range(3):
            next_button.click()
        page.wait_for_function(
            "el => el.innerText.includes('step 4/8')", arg=caption.element_handle())
        after = graph.inner_html()
        assert after != before, "the picture did not change after Next"
        assert "v̇₂ = -1.9800" in after and "v̇₂" not in before
        assert "cad-active" in explorer.locator(".cad-table").inner_html()
        page.screenshot(path=str(ARTIFACTS / "explorer-forward-step4.png"))

        explorer.locator(".cad-mode button", has_text="reverse").click()
        page.wait_for_function(
            "el => el.innerText.includes('step 1/19')", arg=caption.element_handle())
        for _ in range(12):
            next_button.click()
        page.wait_for_function(
            "el => el.innerText.includes('step 13/19')", arg=caption.element_handle())
        assert "(now 2.8437)" in caption.inner_text()  # the second adjoint of v4 arrives
        assert "v̄₄ = 2.8437" in graph.inner_html()
        page.screenshot(path=str(ARTIFACTS / "explorer-reverse-step13.png"))
        browser.close()


def test_the_graphs_lecture_fits_a_1400_px_window(lab):
    """Every picture in "computational_graphs" fits its cell, drawn at its own size (so its
    text stays 11 pt), the larger example included."""
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(90_000)
        page.goto(f"{lab}/lab/workspaces/graphs/tree/computational_graphs.ipynb")  # no restore
        page.wait_for_selector(".jp-Notebook .jp-Cell")
        page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget"
                               " && window.jupyterapp.shell.currentWidget.sessionContext"
                               " && window.jupyterapp.shell.currentWidget.sessionContext.session")
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        pictures = page.locator(".jp-RenderedSVG img")  # JupyterLab shows SVG as <img>
        page.wait_for_function("document.querySelectorAll('.jp-RenderedSVG img').length >= 4")
        pictures.nth(1).scroll_into_view_if_needed()  # the larger example
        page.screenshot(path=str(ARTIFACTS / "graphs-larger-example.png"))
        for i in range(pictures.count()):
            picture = pictures.nth(i)
            picture.scroll_into_view_if_needed()
            box = picture.bounding_box()
            area = picture.locator("xpath=ancestor::div[contains(@class, 'jp-OutputArea-output')]")
            assert box["width"] <= area.bounding_box()["width"] + 1, f"picture {i} overflows"
            natural = picture.evaluate("img => img.naturalWidth")
            assert box["width"] >= natural - 1, f"picture {i} is shrunk: its text is < 11 pt"
        browser.close()
