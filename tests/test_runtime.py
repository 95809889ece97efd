"""Provider selection and the runtime's independence from training frameworks."""

from __future__ import annotations

import subprocess
import sys

import onnxruntime as ort
import pytest

from dfstream.exceptions import ProviderError
from dfstream.stream.runtime import select_providers


def test_cpu_and_auto_providers() -> None:
    assert select_providers("cpu") == ["CPUExecutionProvider"]
    auto = select_providers("auto")
    assert auto[-1] == "CPUExecutionProvider"
    assert ("CUDAExecutionProvider" in auto) == ("CUDAExecutionProvider" in ort.get_available_providers())


def test_unknown_device_is_named() -> None:
    with pytest.raises(ProviderError, match="unknown device 'tpu'; choose one of auto, cpu, cuda"):
        select_providers("tpu")


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="CUDA build installed")
def test_cuda_request_without_cuda_build_is_a_clear_error() -> None:
    with pytest.raises(
        ProviderError, match=r"device .cuda. requested but this onnxruntime .* has no CUDAExecutionProvider"
    ):
        select_providers("cuda")


def test_runtime_imports_neither_torch_nor_tensorflow() -> None:
    code = (
        "import sys; import dfstream.stream.runtime, dfstream.export.metadata, dfstream.stream.types;"
        "bad = [m for m in ('torch', 'tensorflow', 'keras', 'tf2onnx', 'onnx') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
