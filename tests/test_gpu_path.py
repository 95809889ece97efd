"""The GPU path's rules, checked on a CPU-only machine: what the sessions are asked for, which graph
ids runs use, on which thread a bucket is captured, and that --device cuda never runs on the CPU.

This onnxruntime is the CPU build: asked for the CUDA provider it warns and falls back to the CPU,
which is exactly what onnxruntime-gpu does on a machine without a usable GPU, so making it list
CUDA reproduces that case.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from dfstream.stream import gpu_options, ort_sessions
from dfstream.stream.bound import BoundRunner
from dfstream.stream.contract.exceptions import ModelLoadError, ProviderError
from dfstream.stream.contract.paths import BUNDLED_MODELS
from dfstream.stream.gpu_options import CPU, CUDA, TENSORRT, GraphInputs, provider_entries, tensorrt_options
from dfstream.stream.model_set import ModelSet

HEAD = BUNDLED_MODELS / "clip_head.onnx"


@pytest.fixture
def cuda_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    """onnxruntime lists CUDA, and no GPU serves it."""
    monkeypatch.setattr(ort_sessions.ort, "get_available_providers", lambda: [CUDA, CPU])
    monkeypatch.setattr(ort_sessions, "_preload_cuda_libraries", lambda: None)


@pytest.mark.filterwarnings("ignore:Specified provider")
def test_device_cuda_refuses_when_the_session_lands_on_the_cpu(cuda_listed: None) -> None:
    with pytest.raises(ProviderError, match=r"clip_head.onnx: --device cuda, but ONNX Runtime runs it on "
                                            r"CPUExecutionProvider"):
        ort_sessions.load_model(HEAD, "clip_head", "cuda")


@pytest.mark.filterwarnings("ignore:Specified provider")
def test_auto_falls_back_in_one_line_and_takes_the_cpus_precision(cuda_listed: None,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    ort_sessions._warn_cpu_fallback.cache_clear()
    with caplog.at_level(logging.WARNING):
        models = ModelSet.load(BUNDLED_MODELS, "auto", "auto")
    assert models.provider == CPU
    # on a CPU, auto runs model A's int8 graph (which exists), never the fp16 one meant for a GPU
    assert models.frame.metadata.precision == "int8"
    fallbacks = [r for r in caplog.records if "lists CUDA, but the models run on" in r.getMessage()]
    assert len(fallbacks) == 1


def test_cuda_graphs_are_never_asked_for_beside_tensorrt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu_options, "TRT_CACHE", tmp_path / "a" / "b" / "trt")
    monkeypatch.setattr(gpu_options, "tensorrt_options",
                        lambda graph: tensorrt_options(graph, cache=tmp_path / "a" / "b" / "trt"))
    with_trt = provider_entries(HEAD, [TENSORRT, CUDA, CPU], cuda_graphs=True)
    assert with_trt[1] == (CUDA, {"use_tf32": "0"}) and with_trt[2] == CPU  # no enable_cuda_graph beside TensorRT
    assert provider_entries(HEAD, [CUDA, CPU], cuda_graphs=True)[0] == (CUDA, {"enable_cuda_graph": "1",
                                                                               "use_tf32": "0"})
    assert provider_entries(HEAD, [CUDA, CPU], cuda_graphs=False)[0] == (CUDA, {"use_tf32": "0"})  # fp32 is fp32
    assert (tmp_path / "a" / "b" / "trt").is_dir()  # the cache folder is made with its parents
    assert not gpu_options.graphs_allowed([TENSORRT, CUDA, CPU]) and gpu_options.graphs_allowed([CUDA, CPU])


def test_tensorrt_gets_one_profile_over_the_buckets_and_fp16_only_for_fp16_graphs(tmp_path: Path) -> None:
    fp32 = tensorrt_options(GraphInputs("frames", (3, 128, 128), 1, fp16=False), (1, 4, 16, 64), tmp_path)
    assert fp32["trt_fp16_enable"] == "0"
    assert fp32["trt_profile_min_shapes"] == "frames:1x3x128x128"
    assert fp32["trt_profile_opt_shapes"] == "frames:16x3x128x128"
    assert fp32["trt_profile_max_shapes"] == "frames:64x3x128x128"
    assert fp32["trt_timing_cache_enable"] == "1" and fp32["trt_engine_cache_path"] == str(tmp_path)
    half = tensorrt_options(GraphInputs("frames", (3, 128, 128), 1, fp16=True), (1, 4, 16, 64), tmp_path)
    assert half["trt_fp16_enable"] == "1"
    free = tensorrt_options(GraphInputs("frames", None, 1, fp16=False), (1, 4), tmp_path)
    assert "trt_profile_min_shapes" not in free  # free axes: no profile can be written
    assert gpu_options.read_graph_inputs(HEAD) == GraphInputs("features", (16, 1285), 1, False)


class _RecordingSession:
    """A real session whose runs are recorded: options given, and the thread of each bound run."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self._session = session
        self.plain_ids: list[str | None] = []
        self.bound_runs: list[tuple[str, int]] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self._session, name)

    def run(self, names: list[str], feed: dict[str, np.ndarray], options: ort.RunOptions | None = None) -> list:
        self.plain_ids.append(None if options is None else options.get_run_config_entry("gpu_graph_id"))
        return self._session.run(names, feed, options)

    def run_with_iobinding(self, binding: ort.IOBinding, options: ort.RunOptions) -> None:
        self.bound_runs.append((options.get_run_config_entry("gpu_graph_id"), threading.get_ident()))
        self._session.run_with_iobinding(binding, options)


def test_bucket_graphs_count_from_one_probes_say_minus_one_and_capture_on_the_serving_thread() -> None:
    session = _RecordingSession(ort.InferenceSession(str(HEAD), providers=[CPU]))
    runner = BoundRunner(session, HEAD.name, "cpu", buckets=(1, 4), cuda_graphs=True)  # type: ignore[arg-type]
    assert session.plain_ids == ["-1", "-1"]  # the shape probes neither capture nor replay graph 0
    assert session.bound_runs == []  # nothing captured at start-up, on the loading thread
    assert [s.graph_id for s in runner._slots.values()] == [1, 2]
    done: list[np.ndarray] = []
    lane = threading.Thread(target=lambda: done.append(runner.run(np.ones((3, 16, 1285), np.float32))))
    lane.start()
    lane.join()
    assert session.bound_runs == [("2", lane.ident)] and runner.captured_on == {4: lane.ident}
    assert done[0].shape == (3,)


@pytest.mark.filterwarnings("ignore:Specified provider")
def test_a_session_that_fails_with_cuda_graphs_is_opened_again_without(cuda_listed: None,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    real_open = ort_sessions._open
    asked: list[bool] = []

    def open_once(path: Path, providers: list[str], settings: object = ort_sessions.DEFAULT_ORT,
                  cuda_graphs: bool = False) -> ort.InferenceSession:
        asked.append(cuda_graphs)
        if cuda_graphs:
            raise ModelLoadError(f"{path}: not a loadable ONNX model (a Memcpy node cannot be captured)")
        return real_open(path, providers, settings, cuda_graphs)  # type: ignore[arg-type]

    monkeypatch.setattr(ort_sessions, "_open", open_once)
    with caplog.at_level(logging.WARNING):
        model = ort_sessions.load_model(HEAD, "clip_head", "auto")
    assert asked == [True, False] and not model.cuda_graphs
    assert any("cannot be opened with CUDA graphs" in r.getMessage() for r in caplog.records)


def test_gpu_check_refuses_in_one_line_without_cuda(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "dfstream.cli", "bench", "gpu-check", "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=300)
    # the CPU build has no CUDA provider; onnxruntime-gpu without a usable GPU lands on the CPU
    gpu_build = "CUDAExecutionProvider" in ort.get_available_providers()
    reason = "runs it on CPUExecutionProvider (no usable GPU" if gpu_build else "has no CUDAExecutionProvider"
    assert done.returncode == 2 and reason in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


@pytest.mark.filterwarnings("ignore:Specified provider")
def test_gpu_check_refuses_when_cuda_is_listed_but_serves_nothing(cuda_listed: None, tmp_path: Path) -> None:
    from dfstream.benchmarks.gpu_check import gpu_check

    with pytest.raises(ProviderError, match="--device cuda, but ONNX Runtime runs it on CPUExecutionProvider"):
        gpu_check(BUNDLED_MODELS, tmp_path)


def test_gpu_check_compares_a_graph_with_the_cpu_from_two_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check itself, with the 'GPU' session a CPU one: the comparison, the thread rerun and the timing
    run, and the problems it reports for a session that is not on a GPU provider."""
    from dfstream.benchmarks import gpu_check

    real_load = gpu_check.load_model
    monkeypatch.setattr(gpu_check, "load_model", lambda path, role, device: real_load(path, role, "cpu"))
    check = gpu_check.check_graph("clip_head", HEAD, HEAD, seconds=0.05)
    assert check.max_diff_vs_cpu == 0.0 and check.second_thread_equal
    assert set(check.p50_ms) == {1, 4, 16, 64}
    assert check.problems == ["runs on CPUExecutionProvider"]


def test_fp16_variants_of_a_folder_are_what_cuda_runs_and_bench_times(tmp_path: Path) -> None:
    """`dfstream quantize MODELS --fp16 --out DIR`: model A and the encoder in fp16 beside copies of the
    graphs, each from the same checkpoint (so `model_files` takes them), and the bundled folder untouched."""
    import subprocess
    import sys

    from dfstream.benchmarks.gpu_check import _targets
    from dfstream.stream.model_set import model_files
    from dfstream.stream.ort_sessions import read_metadata

    before = sorted(p.name for p in BUNDLED_MODELS.iterdir())
    done = subprocess.run([sys.executable, "-m", "dfstream.cli", "quantize", str(BUNDLED_MODELS), "--fp16", "--out",
                           str(tmp_path / "fp16")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in BUNDLED_MODELS.iterdir()) == before
    files = model_files(tmp_path / "fp16", "fp16")
    assert files["frame_cnn"].name == "frame_cnn.fp16.onnx" and files["clip_encoder"].name == "clip_encoder.fp16.onnx"
    assert files["clip_head"].name == "clip_head.onnx"  # the head stays fp32
    # auto: what the help says it runs on CUDA is what it runs (fp16 where it exists), int8/fp32 on a CPU
    auto_gpu, auto_cpu = model_files(tmp_path / "fp16", "auto", gpu=True), model_files(tmp_path / "fp16", "auto")
    assert auto_gpu == files and not any(".fp16." in p.name for p in auto_cpu.values())
    from dfstream.cli_stream import PRECISION_HELP

    assert "the fp16 ones on CUDA" in PRECISION_HELP and "int8 variants on a CPU" in PRECISION_HELP
    for role in ("frame_cnn", "clip_encoder"):
        half, full = read_metadata(files[role]), read_metadata(tmp_path / "fp16" / f"{role}.onnx")
        assert half.precision == "fp16" and half.source_sha256 == full.source_sha256
        assert half.threshold == full.threshold and half.calibration == full.calibration
    checked = {path.name for _, path, _ in _targets(tmp_path / "fp16")}
    assert {"frame_cnn.fp16.onnx", "clip_encoder.fp16.onnx"} <= checked  # gpu-check compares them with the CPU
    refused = subprocess.run([sys.executable, "-m", "dfstream.cli", "quantize", str(BUNDLED_MODELS), "--out",
                              str(tmp_path / "x")], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "--out goes with --fp16" in refused.stderr


def test_the_fp16_converters_weight_changes_are_counted_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    """It warns once per weight it moves into fp16's range (61 in the bundled encoder); one line says how many."""
    import warnings

    import onnx

    from dfstream.export.onnx_files import to_fp16

    with caplog.at_level(logging.INFO, logger="dfstream.export.onnx_files"), warnings.catch_warnings():
        warnings.simplefilter("error")  # none of the converter's own warnings escapes
        to_fp16(onnx.load(str(BUNDLED_MODELS / "clip_encoder.onnx")))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["fp16: 61 tiny weight(s) raised to ±1e-7 (below fp16's range)"]


def test_the_variant_table_is_what_quantize_and_the_stream_use() -> None:
    from dfstream.export.fp16_variants import FP16_ROLES
    from dfstream.export.quantize import QUANTIZED_ROLES
    from dfstream.stream.contract.variants import STREAM_ROLES, VARIANTS

    assert set(VARIANTS) == set(STREAM_ROLES) and all(v[0] == "fp32" for v in VARIANTS.values())
    assert QUANTIZED_ROLES == FP16_ROLES == ("frame_cnn", "clip_encoder")  # the head stays fp32 in both
