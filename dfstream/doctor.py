"""``dfstream doctor``: what a bug report needs, and whether the streaming runtime can run here.

Fatal checks (exit 1 with the reason): ONNX Runtime loads the models and their metadata, OpenCV
reads video through FFmpeg, MediaPipe builds a face graph and finds the sample clip's face, and the
output and temporary folders are writable. Everything else (GPU, the Debian parts that only the
tests use) is reported, never fatal. Imports nothing of torch or TensorFlow.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dfstream.stream.contract.exceptions import DfstreamError, first_line
from dfstream.stream.contract.file_names import sha256_of
from dfstream.stream.contract.metadata import IMAGE_ROLES

VERSIONED = (
    "dfstream", "onnxruntime", "onnxruntime-gpu", "mediapipe", "opencv-python", "opencv-python-headless",
    "opencv-contrib-python", "aiortc", "aiohttp", "av", "paho-mqtt", "prometheus-client", "ray", "numpy",
    "pydantic", "typer",
)
"""Distributions whose versions a report lists (those installed)."""

RTSP_TEST_SERVER = (
    "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
)
SYSTEM_PYTHON = "/usr/bin/python3"
SYSTEM_PACKAGES = "bash .ci/system-packages"


@dataclass(frozen=True)
class Check:
    """One line of the report: ``ok`` None means informational (reported, never fatal)."""

    name: str
    ok: bool | None
    detail: str

    def line(self) -> str:
        mark = {True: "ok  ", False: "FAIL", None: "info"}[self.ok]
        return f"  {mark}  {self.name}: {self.detail}"


@dataclass(frozen=True)
class Report:
    versions: dict[str, str]
    models: list[str]
    checks: list[Check]

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.ok is False]

    def text(self) -> str:
        lines = ["versions"] + [f"  {k:<24} {v}" for k, v in self.versions.items()]
        lines += ["models"] + [f"  {m}" for m in self.models]
        lines += ["checks"] + [c.line() for c in self.checks]
        return "\n".join(lines)


def versions() -> dict[str, str]:
    import cv2
    import onnxruntime as ort

    found = {"python": f"{platform.python_version()} ({sys.executable})", "platform": platform.platform()}
    for dist in VERSIONED:
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    found["onnxruntime providers"] = ", ".join(ort.get_available_providers())
    found["opencv video I/O"] = _ffmpeg_line(cv2.getBuildInformation())
    return found


def _ffmpeg_line(build_info: str) -> str:
    wanted = ("FFMPEG:", "avcodec:", "avformat:")
    parts = [" ".join(line.split()) for line in build_info.splitlines() if line.strip().startswith(wanted)]
    return "; ".join(parts) or "no FFmpeg in this OpenCV build"


def _guarded(name: str, fn: Callable[[], str]) -> Check:
    """A fatal check: its detail on success, its one-line error on failure."""
    try:
        return Check(name, True, fn())
    except (DfstreamError, OSError, RuntimeError, ValueError) as exc:
        return Check(name, False, first_line(exc))


def model_lines(folder: Path, device: str) -> tuple[list[str], Check]:
    """One line per graph (metadata, provider, size, sha256) and the check that all three load."""
    from dfstream.stream.model_set import ModelSet

    lines: list[str] = []

    def load() -> str:
        models = ModelSet.load(folder, device, "auto")  # what `dfstream run` loads
        used = {m.path.name for m in (models.frame, models.encoder, models.head)}
        for m in (models.frame, models.encoder, models.head):
            meta = m.metadata
            size = (f", input {meta.input_size} {meta.color_order} {meta.input_scale}"
                    if meta.role in IMAGE_ROLES and meta.input_size is not None else "")
            lines.append(
                f"{m.path.name}: {meta.role} {meta.precision}{size}, threshold {meta.threshold:.3f}, "
                f"calibration {meta.calibration[0]:.3f},{meta.calibration[1]:.3f}, {m.provider}, "
                f"{m.path.stat().st_size / 1e6:.1f} MB, sha256 {sha256_of(m.path)}"
            )
        for other in sorted(p for p in folder.glob("*.onnx") if p.name not in used):
            lines.append(f"{other.name}: not used by default, {other.stat().st_size / 1e6:.1f} MB, "
                         f"sha256 {sha256_of(other)}")
        return f"{folder} loads on {models.provider}"

    check = _guarded("models", load)
    return lines, check


def face_check(video: Path) -> str:
    """Build a MediaPipe face graph and find a face within the clip's first 30 frames."""
    from dfstream.stream.faces import first_face

    index, image, _ = first_face(video)
    h, w = image.shape[:2]
    return f"OpenCV decodes {video.name} ({w}x{h}); MediaPipe found its face in frame {index}"


def writable(folder: Path) -> str:
    """Whether files can be made in ``folder`` (or, when it does not exist yet, in the parent that does)."""
    target = folder
    while not target.exists():
        target = target.parent
    if not target.is_dir():
        raise OSError(f"{folder}: {target} is not a folder")
    with tempfile.NamedTemporaryFile(dir=target, prefix=".dfstream-doctor-"):
        pass
    return f"{folder} is writable" + ("" if target == folder else f" (would be made in {target})")


def gpu_check() -> Check:
    import onnxruntime as ort

    cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    smi = shutil.which("nvidia-smi")
    if smi is None:
        seen = "no nvidia-smi on PATH"
    else:
        try:
            out = subprocess.run([smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=15)
            said = (out.stdout.strip() or out.stderr.strip()).replace("\n", "; ")
            seen = said or "nvidia-smi lists no GPU"
        except (OSError, subprocess.TimeoutExpired) as exc:
            seen = f"nvidia-smi failed ({first_line(exc)})"
    provider = "CUDA provider available" if cuda else "no CUDA provider (install with 'make ORT_BUILD=gpu')"
    return Check("gpu", None, f"{seen}; {provider}; CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')}")


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def machine_check() -> Check:
    """Cores this process may use, memory, and the cameras the kernel lists: what a run's speed depends on."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = memory_gib()
    cameras = sorted(str(p) for p in Path("/dev").glob("video*"))
    return Check("machine", None, f"{usable} of {os.cpu_count()} CPU cores usable; "
                 f"{'unknown' if memory is None else f'{memory:.1f} GiB'} memory; "
                 f"webcams: {', '.join(cameras) or 'none (/dev/video*)'}")


def test_parts_checks() -> list[Check]:
    """The Debian parts only the tests need: reported, with the command that installs them."""
    checks: list[Check] = []
    if os.path.exists(SYSTEM_PYTHON):
        probe = subprocess.run([SYSTEM_PYTHON, "-c", RTSP_TEST_SERVER], capture_output=True, text=True, timeout=60)
        last = probe.stderr.strip().splitlines()[-1:] or ["import failed"]
        rtsp = "present" if probe.returncode == 0 else f"missing ({last[0]})"
    else:
        rtsp = f"missing ({SYSTEM_PYTHON} not found)"
    chromium = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    hint = f"; the tests need them: {SYSTEM_PACKAGES}"
    checks.append(Check("RTSP test server (GStreamer, python3-gi)", None, rtsp + ("" if rtsp == "present" else hint)))
    checks.append(Check("browser for the page test (chromium)", None, chromium or "missing" + hint))
    return checks


def diagnose(models: Path, out: Path, device: str, video: Path) -> Report:
    lines, models_check = model_lines(models, device)
    checks = [
        models_check,
        _guarded("video and faces", lambda: face_check(video)),
        _guarded("output folder", lambda: writable(out)),
        _guarded("temporary folder", lambda: writable(Path(tempfile.gettempdir()))),
        machine_check(),
        gpu_check(),
        *test_parts_checks(),
    ]
    return Report(versions(), lines or [f"{models}: not loaded (see checks)"], checks)
