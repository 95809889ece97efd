"""Start and stop the real GStreamer RTSP server (tests/fixtures/rtsp_server.py) on a loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import cv2

SYSTEM_PYTHON = "/usr/bin/python3"
SCRIPT = Path(__file__).parent / "fixtures" / "rtsp_server.py"
INSTALL_HINT = "install Debian's GStreamer RTSP server the way .ci/run does"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_frames(clip: Path, folder: Path, count: int = 60) -> str:
    """JPEG frames of ``clip`` for the server's multifilesrc; returns the location pattern."""
    folder.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(clip))
    for i in range(count):
        ok, image = cap.read()
        if not ok:
            break
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), image)
    cap.release()
    return str(folder / "%03d.jpg")


class RtspServer:
    """One server process; ``stop`` kills it (SIGKILL: the camera loses power), ``start`` brings it back."""

    def __init__(self, pattern: str, port: int | None = None) -> None:
        self.pattern = pattern
        self.port = port or free_port()
        self.proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/face"

    def start(self, timeout: float = 10.0) -> None:
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(SCRIPT), str(self.port), self.pattern],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "ready" or time.monotonic() > deadline:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"RTSP server did not start ({err.strip()[:300]}); {INSTALL_HINT}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def freeze(self) -> None:
        """Alive but silent: the process is stopped, its sockets stay open."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)
