"""onnxruntime-gpu on a machine without a usable GPU, as a GPU user's install meets one that is broken:
it lists the CUDA and TensorRT providers, its CUDA libraries do not load. ``make test`` puts it in
``.venv-ort-gpu`` beside the test environment (everything else comes from there)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
GPU_PYTHON = ROOT / ".venv-ort-gpu" / "bin" / "python"


@pytest.fixture(scope="module")
def gpu_python() -> Path:
    assert GPU_PYTHON.exists(), "make test builds .venv-ort-gpu (make .venv-ort-gpu/.installed)"
    return GPU_PYTHON


def _run(python: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", "DFSTREAM_STRICT_SKIPS": "1", "HOME": str(ROOT / "build")})


def test_the_gpu_build_is_the_one_imported_and_lists_cuda_and_tensorrt(gpu_python: Path) -> None:
    done = _run(gpu_python, "-c", "import json, onnxruntime as o; print(json.dumps([o.__file__, "
                "o.get_available_providers()]))")
    where, providers = json.loads(done.stdout)
    assert ".venv-ort-gpu" in where
    assert {"CUDAExecutionProvider", "TensorrtExecutionProvider"} <= set(providers)


def test_device_cuda_refuses_in_one_line(gpu_python: Path, tmp_path: Path) -> None:
    done = _run(gpu_python, "-m", "dfstream.cli", "run", "--device", "cuda", "--duration", "2", "--no-window",
                "--out", str(tmp_path / "r.jsonl"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "dfstream: error: clip_head.onnx: --device cuda, but ONNX Runtime runs it on CPUExecutionProvider (no "
        "usable GPU, or the CUDA libraries did not load); use --device auto or cpu"]


def test_auto_falls_back_in_one_line_to_the_cpus_precisions(gpu_python: Path, tmp_path: Path) -> None:
    done = _run(gpu_python, "-m", "dfstream.cli", "run", "--device", "auto", "--duration", "3", "--no-window",
                "--summary-json", str(tmp_path / "summary.json"))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert sum("lists CUDA, but the models run on CPUExecutionProvider" in line for line in lines) == 1
    assert not any("onnxruntime:Default" in line or "Failed to load" in line for line in lines), done.stderr
    assert any("frame_cnn.int8.onnx (int8, CPUExecutionProvider)" in line for line in lines)  # no fp16 on a CPU
    assert json.loads((tmp_path / "summary.json").read_text())["provider"] == "CPUExecutionProvider"


def test_the_gpu_path_checks_pass_under_the_gpu_build(gpu_python: Path) -> None:
    """The session options the runtime builds (graph ids, TensorRT's options and profile, the thread
    each bucket is captured on, TF32 off), checked with this build's providers listed."""
    done = _run(gpu_python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_gpu_path.py",
                "tests/test_bound_runs.py", timeout=600)
    assert done.returncode == 0, done.stdout[-4000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout
