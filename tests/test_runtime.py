"""Provider selection and the runtime's independence from training frameworks."""

from __future__ import annotations

import subprocess
import sys

import onnxruntime as ort
import pytest

from dfstream.stream.contract.exceptions import ProviderError
from dfstream.stream.ort_sessions import select_providers


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
        "import sys; import dfstream.stream.ort_sessions, dfstream.stream.contract.metadata,"
        " dfstream.stream.contract.types;"
        "bad = [m for m in ('torch', 'tensorflow', 'keras', 'tf2onnx', 'onnx') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_model_a_on_its_lane_runs_on_one_intra_op_thread(stream_models: object) -> None:
    """Live and paced sources put model A on its own lane, whose session then uses one thread; a file
    read as fast as scored keeps it in the tick with ONNX Runtime's default (a thread per core)."""
    from pathlib import Path

    from dfstream.stream.contract.paths import SAMPLE_CLIP
    from dfstream.stream.local_run import frame_model_on_lane, open_sources
    from dfstream.stream.model_set import ModelSet
    from dfstream.stream.ort_sessions import LANE_INTRA_THREADS
    from dfstream.stream.run_config import RunConfig

    folder = Path(str(stream_models))
    on_lane = ModelSet.load(folder, "cpu", frame_on_lane=True)
    in_tick = ModelSet.load(folder, "cpu")
    assert on_lane.frame.session.get_session_options().intra_op_num_threads == LANE_INTRA_THREADS == 1
    assert in_tick.frame.session.get_session_options().intra_op_num_threads == 0
    assert on_lane.encoder.session.get_session_options().intra_op_num_threads == 0  # the tick's own models

    def decided(**options: object) -> bool:
        config = RunConfig.model_validate({"sources": (str(SAMPLE_CLIP),), "window": False, "models_dir": folder}
                                          | options)
        sources = open_sources(config)
        try:
            return frame_model_on_lane(config, sources)
        finally:
            for s in sources:
                s.close()

    assert decided(realtime=True)
    assert not decided(realtime=False)
    assert not decided(realtime=True, frame_lane=False)
