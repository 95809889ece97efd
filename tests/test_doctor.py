"""``dfstream doctor`` on this machine: real models, real MediaPipe, real folders; failures exit 1."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from dfstream.stream.contract.paths import BUNDLED_MODELS


def _doctor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dfstream.cli", "doctor", *args], capture_output=True, text=True,
                          timeout=300)


def test_report_lists_versions_models_and_their_sha256(tmp_path: Path) -> None:
    result = _doctor("--out", str(tmp_path / "out"), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for name in ("python", "onnxruntime", "mediapipe", "aiortc", "aiohttp", "av", "paho-mqtt", "onnxruntime providers",
                 "opencv video I/O"):
        assert f"\n  {name} " in text
    assert "info  machine: " in text and "CPU cores usable" in text and "GiB memory" in text and "webcams: " in text
    head_line = next(line for line in text.splitlines() if line.strip().startswith("clip_head.onnx: clip_head"))
    assert "input" not in head_line  # the head takes embeddings and landmarks, not pictures
    for graph in sorted(p.name for p in BUNDLED_MODELS.glob("*.onnx")):
        digest = hashlib.sha256((BUNDLED_MODELS / graph).read_bytes()).hexdigest()
        assert f"{graph}: " in text and digest in text
    assert "ok    video and faces: " in text and "MediaPipe found its face" in text
    assert "info  gpu: " in text and "RTSP test server" in text and "chromium" in text
    assert text.rstrip().endswith("the runtime can run here")


def test_missing_models_and_unwritable_output_exit_1_with_the_reasons(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("not a folder")
    result = _doctor("--models", str(tmp_path / "empty"), "--out", str(tmp_path / "a_file" / "out"))
    assert result.returncode == 1
    assert "FAIL  models: " in result.stdout and "FAIL  output folder: " in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("dfstream doctor: the runtime cannot run here: models: ")
    assert "output folder: " in last and "is not a folder" in last
