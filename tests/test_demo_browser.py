"""``sharpdepth demo`` end to end in a real headless browser (Debian's chromium + Playwright).

Starts the demo as a subprocess on a free local port with the bundled nano models,
uploads a photo, runs it and checks that the depth slider, the legend, both 3D views
(rendered, not blank) and the downloads appear, that the downloaded depth is metres of
the photo's size, and that the page fetched nothing from outside this machine.

Set ``SHARPDEPTH_DEMO_SCREENSHOT=docs/images/demo.png`` to keep the page's screenshot (the
README's picture comes from here). Skipped where /usr/bin/chromium or playwright is
missing; no browser is downloaded.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-unsafe-swiftshader",  # software WebGL for the 3D views
]
START_TIMEOUT_S = 120.0
RUN_TIMEOUT_MS = 120_000
LOCAL_PREFIXES = ("http://127.0.0.1", "data:", "blob:", "about:")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_server(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"demo exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"demo did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture()
def demo_url(tmp_path: Path) -> Iterator[str]:
    """URL of ``sharpdepth demo`` running in a subprocess on a free port."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    pytest.importorskip("gradio")
    port = _free_port()
    log = tmp_path / "demo.log"
    env = {
        **os.environ,
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "GRADIO_TEMP_DIR": str(tmp_path / "gradio"),
        "OMP_NUM_THREADS": "2",
    }
    command = [sys.executable, "-m", "sharpdepth.cli.main", "demo", "--device", "cpu"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*command, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_for_server(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _canvas_is_drawn(page: Any, selector: str, timeout_s: float = 30.0) -> bool:
    """Whether the 3D view's canvas shows more than its background colour."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        shot = page.locator(selector).screenshot()
        pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).reshape(-1, 3)
        background = np.median(pixels, axis=0)
        if np.mean(np.abs(pixels - background).sum(axis=1) > 60) > 0.02:
            return True
        time.sleep(1.0)
    return False


def test_demo_in_headless_chromium(demo_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    from sharpdepth.demo.app import ELEM_IDS, example_photos

    photo = next(p for p in example_photos() if p.name == "coffee.jpg")
    width, height = Image.open(photo).size
    screenshot = Path(os.environ.get("SHARPDEPTH_DEMO_SCREENSHOT", tmp_path / "demo.png"))
    outside: list[str] = []
    ids = {key: f"#{value}" for key, value in ELEM_IDS.items()}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on(
                "request",
                lambda r: None if r.url.startswith(LOCAL_PREFIXES) else outside.append(r.url),
            )
            page.goto(demo_url, wait_until="networkidle")
            page.set_input_files(f"{ids['image']} input[type=file]", str(photo))
            page.locator(f"{ids['image']} img").first.wait_for(timeout=30_000)
            page.click(ids["run"])

            # downloads appear when the run is done
            links = page.locator(f"{ids['downloads']} a")
            links.first.wait_for(timeout=RUN_TIMEOUT_MS)
            hrefs = [links.nth(i).get_attribute("href") or "" for i in range(links.count())]
            suffixes = sorted(Path(h).suffix for h in hrefs)
            assert suffixes == [".json", ".npy", ".ply", ".png"], hrefs

            # the downloaded depth is float32 metres at the photo's size
            npy = next(h for h in hrefs if h.endswith("_depth.npy"))
            depth = np.load(io.BytesIO(page.request.get(npy).body()))
            assert depth.shape == (height, width) and depth.dtype == np.float32
            assert np.isfinite(depth).all() and (depth > 0).all()

            # slider: two depth images with pixels; legend and confidence images
            slider_images = page.locator(f"{ids['slider']} img")
            assert slider_images.count() >= 2
            assert all(
                slider_images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
                for i in range(2)
            )
            for key in ("legend", "confidence"):
                image = page.locator(f"{ids[key]} img").first
                assert image.evaluate("img => img.naturalWidth") > width  # map + colour bar
            assert "fx = " in page.locator(ids["summary"]).inner_text()

            # both 3D views draw the point cloud
            for key in ("cloud_metric", "cloud_depth"):
                canvas = f"{ids[key]} canvas"
                page.locator(canvas).wait_for(timeout=30_000)
                assert _canvas_is_drawn(page, canvas), f"{key}: the 3D view stayed blank"

            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert screenshot.stat().st_size > 50_000
    assert outside == [], f"the page fetched from outside this machine: {outside}"
