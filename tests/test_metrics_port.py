"""``dfstream run --metrics-port``: Prometheus metrics of a running in-process job, and a taken port refused."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

DFSTREAM = str(Path(sys.executable).parent / "dfstream")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_metrics_are_served_while_the_run_scores(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen([DFSTREAM, "run", "--realtime", "--duration", "20", "--no-window", "--metrics-port",
                             str(port), "--out", str(tmp_path / "r.jsonl")], stderr=subprocess.PIPE, text=True)
    try:
        deadline, frames = time.monotonic() + 60, 0
        while time.monotonic() < deadline and frames < 10:
            time.sleep(0.5)
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            except OSError:
                continue
            found = re.search(r'dfstream_frames_total\{source="[^"]*sample_face.mp4"\} (\d+)', text)
            frames = int(found.group(1)) if found else 0
        assert frames >= 10
        assert "dfstream_stage_latency_seconds_bucket" in text
    finally:
        proc.terminate()
        proc.wait(30)
    assert f"metrics: http://127.0.0.1:{port}/metrics" in (proc.stderr.read() if proc.stderr else "")


def test_a_taken_port_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([DFSTREAM, "run", "--no-window", "--metrics-port", str(port)],
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(f"dfstream: error: --metrics-port {port}:")
