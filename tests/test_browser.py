"""A real browser: Debian's Chromium, headless, its fake camera fed a face clip, opens the page and shows scores."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dfstream.stream.contract.paths import SAMPLE_CLIP
from tests.conftest import read_frames
from tests.rtsp import free_port

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
PAGE_TOKEN = "browser-page-token-0123456789"


def write_y4m(frames: list[np.ndarray], path: Path, fps: int = 30) -> Path:
    """Chromium's --use-file-for-fake-video-capture reads YUV4MPEG2 (4:2:0)."""
    import cv2

    h, w = frames[0].shape[:2]
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


HEAT_SHARE_JS = """() => {
  drawOverlay();
  const c = document.getElementById("overlay"), v = document.getElementById("video");
  const sx = c.width / v.videoWidth, sy = c.height / v.videoHeight;
  const [x, y, side] = latest[0].attention.box;
  const x0 = Math.max(0, Math.round(x * sx)), y0 = Math.max(0, Math.round(y * sy));
  const w = Math.min(c.width - x0, Math.round(side * sx)), h = Math.min(c.height - y0, Math.round(side * sy));
  const px = c.getContext("2d").getImageData(x0, y0, w, h).data;
  let painted = 0;
  for (let i = 3; i < px.length; i += 4) if (px[i] > 0) painted++;
  return painted / (w * h);
}"""


def wait_until(page: Any, expression: str, timeout_s: float) -> None:
    """Poll ``expression`` from here: Playwright's wait_for_function evaluates strings with eval inside
    the page, which the server's content security policy (rightly) forbids."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true after {timeout_s} s: {expression}")
        time.sleep(0.1)


def _serve(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    """``dfstream serve`` with the token given the way that keeps it out of ``ps``; returns once it answers."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "dfstream.cli", "serve", *args, "--port", str(port),
                             "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "DFSTREAM_TOKEN": PAGE_TOKEN})
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"{base}/healthz?token={PAGE_TOKEN}", timeout=1) as res:
                if res.status == 200:
                    return proc, base
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not come up: {proc.stderr.read() if proc.stderr else ''}")


@pytest.fixture
def served(stream_models: Path, tmp_path: Path) -> Iterator[str]:
    from tests.test_import_detectors import tiny_classifier

    spec = tmp_path / "spec.yaml"
    spec.write_text("name: tiny\ninput_size: 96\ncrop: sbi\noutput: softmax\n")
    imported = subprocess.run([sys.executable, "-m", "dfstream.cli", "import", "onnx",
                               str(tiny_classifier(tmp_path / "raw.onnx", size=96)), "--spec", str(spec), "-o",
                               str(tmp_path / "imported")], capture_output=True, text=True, timeout=300)
    assert imported.returncode == 0, imported.stderr
    # the page must still load its own script with a token
    proc, base = _serve(["--models", str(stream_models), "--models", str(tmp_path / "imported"), "--explain",
                         "--threshold", "0.45"])
    yield base
    proc.terminate()
    proc.wait(timeout=30)


ROW_AND_NEWEST_JS = """(() => {
  const row = document.querySelector('#faces tbody tr');
  return [row.querySelector('td.score').textContent, fmt(tracks.get(Number(row.dataset.track)).last.score)];
})()"""


def test_chromium_page_shows_live_scores(served: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), "install Debian's chromium the way .ci/system-packages does"
    y4m = write_y4m(read_frames(SAMPLE_CLIP, 90), tmp_path / "face.y4m")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-video-capture={y4m}",
                  "--disable-features=WebRtcHideLocalIpsWithMdns"],
        )
        try:
            page = browser.new_page(viewport={"width": 900, "height": 900})
            page.goto(f"{served}/?token={PAGE_TOKEN}")
            page.click("#start")
            wait_until(page, "Number(document.getElementById('count').textContent) >= 15", 90.0)
            rows = page.locator("#faces tbody tr")
            assert rows.count() >= 1
            label = rows.first.locator("td").nth(1).inner_text()
            score = float(rows.first.locator("td.score").inner_text())
            # not a stale score: frames keep coming, and the row shows its track's newest record
            first_frame = page.evaluate("latestFrame")
            wait_until(page, f"latestFrame >= {first_frame} + 10", 30.0)
            shown, newest = page.evaluate(ROW_AND_NEWEST_JS)
            wait_until(page, "latest.length > 0 && latest[0].models && latest[0].models.tiny !== null", 30.0)
            imported = rows.first.locator("td.imported").inner_text()
            status = page.inner_text("#status")
            wait_until(page, "latest.length > 0 && latest[0].attention !== undefined", 30.0)
            grid_side = page.evaluate("latest[0].attention.grid.length")
            heat_share = page.evaluate(HEAT_SHARE_JS)
            page.screenshot(path=str(ARTIFACTS / "browser.png"))
        finally:
            browser.close()
    assert label in ("real", "fake", "uncertain")
    assert 0.0 <= score <= 1.0
    assert shown == newest
    assert imported.startswith("tiny ")  # the imported detector's score beside model A and B
    assert status == "connected"
    assert grid_side == 14
    assert heat_share > 0.3  # the --explain heatmap fills the crop square, not only the box's outline


OVERLAY_PAINTED_JS = """() => {
  const c = document.getElementById("overlay");
  if (!c.width || !c.height) return 0;
  const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let painted = 0;
  for (let i = 3; i < px.length; i += 4) if (px[i] > 0) painted++;
  return painted;
}"""
FAKE_ZONE_JS = """() => {
  const px = document.getElementById("chart").getContext("2d").getImageData(60, 12, 1, 1).data;
  return [px[0], px[1], px[2], px[3]];
}"""
ROWS = "document.querySelectorAll('#faces tbody tr').length"


def test_chromium_page_shows_thresholds_and_clears_what_is_gone(served: str, tmp_path: Path) -> None:
    """A face that leaves the camera leaves the page; Stop clears it; the threshold given to the server
    is the page's; each model's column says its own threshold; nothing the page asks for is missing."""
    from playwright.sync_api import sync_playwright

    frames = read_frames(SAMPLE_CLIP, 60)
    blank = np.full_like(frames[0], 40)
    y4m = write_y4m(frames + [blank] * 60, tmp_path / "comes-and-goes.y4m")  # loops: 2 s a face, 2 s none
    missing: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  f"--use-file-for-fake-video-capture={y4m}", "--disable-features=WebRtcHideLocalIpsWithMdns"],
        )
        try:
            page = browser.new_page(viewport={"width": 900, "height": 900})
            page.on("response", lambda r: r.status >= 400 and missing.append(f"{r.status} {r.url}"))
            page.goto(f"{served}/?token={PAGE_TOKEN}")
            wait_until(page, "document.getElementById('threshold').textContent === '0.45'", 20.0)
            frame_header = page.inner_text("#th-frame")
            imported_header = page.inner_text("#th-imported")
            fake_zone = page.evaluate(FAKE_ZONE_JS)
            page.click("#start")
            wait_until(page, "count >= 5", 90.0)
            # the face goes: its row and box go within a second or so, and fps says nothing is scored
            wait_until(page, f"{ROWS} === 0 && document.getElementById('fps').textContent === 'no scores'", 30.0)
            gone_painted = page.evaluate(OVERLAY_PAINTED_JS)
            wait_until(page, f"{ROWS} >= 1", 30.0)  # and comes back with the next loop
            page.click("#stop")
            stopped = (page.evaluate(ROWS), page.evaluate(OVERLAY_PAINTED_JS), page.inner_text("#fps"),
                       page.inner_text("#latency"), page.inner_text("#status"))
        finally:
            browser.close()
    assert frame_header.startswith("model A (fake ≥ 0.") and frame_header != "model A"
    assert "tiny ≥ 0." in imported_header
    assert fake_zone[3] > 0 and fake_zone[0] > fake_zone[1]  # the chart shades the fake zone, reddish
    assert gone_painted == 0
    assert stopped == (0, 0, "–", "–", "stopped")
    assert missing == []  # no favicon.ico 404, nothing else missing


CAMERAS = """
sources:
  - name: door
    url: {clip}
    threshold: 0.4
  - name: desk
    url: {clip}
threshold: 0.45
"""
TILES_JS = """[...document.querySelectorAll('#grid .tile')].map((t) => [t.dataset.feed,
  t.querySelector('.badge').textContent, t.querySelector('.score').textContent,
  t.querySelector('img').naturalWidth])"""


def test_chromium_page_shows_every_feed_in_a_grid(stream_models: Path, tmp_path: Path) -> None:
    """Each server-side feed is a tile: its newest annotated picture, a large label badge and its own
    threshold (a camera of the file has its own); a click on a tile watches that feed live."""
    from playwright.sync_api import sync_playwright

    config = tmp_path / "cameras.yaml"
    config.write_text(CAMERAS.format(clip=SAMPLE_CLIP), encoding="utf-8")
    proc, base = _serve(["--config", str(config), "--models", str(stream_models)])
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 900, "height": 1000})
                page.goto(f"{base}/?token={PAGE_TOKEN}")
                labelled = "['REAL', 'UNCERTAIN', 'FAKE'].includes"
                wait_until(page, f"(() => {{ const t = {TILES_JS}; return t.length === 2 && "
                                 f"t.every((x) => {labelled}(x[1]) && x[3] > 0); }})()", 60.0)
                tiles = page.evaluate(TILES_JS)
                page.screenshot(path=str(ARTIFACTS / "grid.png"))
                page.click("#tile-0")
                wait_until(page, "count >= 5 && document.getElementById('status').textContent === 'connected'", 60.0)
                watched = (page.evaluate("watching"), page.evaluate("document.getElementById('tile-0').className"),
                           page.inner_text("#badge"), page.evaluate("document.getElementById('badge').hidden"),
                           page.inner_text("#threshold"))
                page.screenshot(path=str(ARTIFACTS / "grid-watching.png"), full_page=True)
            finally:
                browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert [t[0] for t in tiles] == ["door", "desk"]
    assert tiles[0][2].endswith("fake ≥ 0.40") and tiles[1][2].endswith("fake ≥ 0.45")
    assert all(t[3] == 480 for t in tiles)  # the annotated 640-wide frame, scaled for a tile
    assert watched[0] == "door" and "watching" in watched[1]
    assert watched[2] in ("REAL", "UNCERTAIN", "FAKE") and watched[3] is False
    assert watched[4] == "0.40"  # the page's threshold is the watched camera's own
