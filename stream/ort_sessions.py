"""ONNX Runtime sessions: the one place that picks providers, validates metadata and warms up."""

from __future__ import annotations

import contextlib
import functools
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import onnxruntime as ort

from dfstream.stream.bound import BUCKETS, BoundRunner, BucketError
from dfstream.stream.contract.exceptions import (
    DfstreamError,
    InputPathError,
    MetadataError,
    ModelLoadError,
    ProviderError,
    first_line,
)
from dfstream.stream.contract.metadata import ModelMetadata, Precision, Role
from dfstream.stream.contract.types import HEAD_FEATURES, LMK_DIM
from dfstream.stream.gpu_options import (
    CPU,
    CUDA,
    GPU_PROVIDERS,
    TENSORRT,
    graphs_allowed,
    plain_run_options,
    provider_entries,
    tensorrt_loads,
)
from dfstream.stream.native_logs import showing_all

log = logging.getLogger(__name__)

Device = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[str, ...] = get_args(Device)
PrecisionChoice = Literal["auto", Precision]
"""What a user asks the stream for: a graph precision, or auto (what it picks on a CPU and on a GPU is
``stream/contract/variants.py``'s ``AUTO_PRECISION``)."""
PRECISIONS: tuple[str, ...] = get_args(PrecisionChoice)

# ORT severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal. onnxruntime-gpu without CUDA
# libraries prints two error lines per session (its default logger) before falling back; we report
# the outcome ourselves in one line, and --debug shows ONNX Runtime's own.
_QUIET = 3
_SILENT = 4


def select_providers(device: str) -> list[str]:
    """Providers to request for ``device``; raises ProviderError when CUDA is asked for and absent."""
    if device not in DEVICES:
        raise ProviderError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    available = ort.get_available_providers()
    if device == "cpu":
        return [CPU]
    if CUDA in available:
        _preload_cuda_libraries()
        return [TENSORRT, CUDA, CPU] if TENSORRT in available and tensorrt_loads() else [CUDA, CPU]
    if device == "cuda":
        raise ProviderError(
            f"device 'cuda' requested but this onnxruntime ({ort.__version__}) has no {CUDA}; "
            "install the GPU build with 'make ORT_BUILD=gpu' or use --device cpu"
        )
    return [CPU]


@functools.cache
def _preload_cuda_libraries() -> None:
    """Load CUDA and cuDNN from the NVIDIA pip packages that ``onnxruntime-gpu[cuda,cudnn]`` installs
    (``make ORT_BUILD=gpu``), so no system CUDA or LD_LIBRARY_PATH is needed; absent ones are skipped."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    printed = io.StringIO()  # it prints each library it cannot find: the fallback line says so once
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            preload(directory="")
    except Exception as exc:  # a system CUDA may still serve; the provider reports what it lacks
        log.debug("CUDA libraries not preloaded from pip packages: %s", first_line(exc))
    if printed.getvalue().strip():
        log.debug("preloading CUDA libraries: %s", printed.getvalue().strip())


OPTIMIZATION = {
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


@dataclass(frozen=True)
class OrtSettings:
    """CPU session settings; the defaults are the ones measured best here (benchmarks/RESULTS.md §6)."""

    intra_threads: int = 0
    """Threads per session for one operator; 0: ONNX Runtime's choice (one per core)."""
    spinning: bool = False
    """Spinning intra-op threads keep cores busy between runs; with three sessions, MediaPipe and
    capture sharing a few cores that steals time from the stage that runs next."""
    optimization: Literal["basic", "extended", "all"] = "all"
    arena: bool = True
    """ONNX Runtime's CPU memory arena (reuses buffers between runs)."""
    denormals_zero: bool = False
    """Flush denormal floats to zero (fast on old CPUs, can change results in the last bits)."""

    def apply(self, options: ort.SessionOptions) -> None:
        options.intra_op_num_threads = self.intra_threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.spinning else "0")
        options.graph_optimization_level = OPTIMIZATION[self.optimization]
        options.enable_cpu_mem_arena = self.arena
        if self.denormals_zero:
            options.add_session_config_entry("session.set_denormal_as_zero", "1")


DEFAULT_ORT = OrtSettings()
LANE_INTRA_THREADS = 1
"""Intra-op threads of a model that runs on a lane of its own beside the frames (model A's frame lane).
A lane is one core's worth of work: with ONNX Runtime's default (a thread per core) its workers fight
the faces and the clip encoder for the cores. One thread took four paced cameras on 2 cores from
94 to 112–118 fps scored and their p99 from 89–94 ms to 68–78 ms (benchmarks/RESULTS.md §5)."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int | str | None, ...]
    dtype: np.dtype[Any]


class OrtModel:
    """A warmed-up session plus the metadata that says how to feed it."""

    def __init__(self, path: Path, session: ort.InferenceSession, metadata: ModelMetadata,
                 cuda_graphs: bool = False) -> None:
        self.path = path
        self.session = session
        self.metadata = metadata
        self.cuda_graphs = cuda_graphs
        """The session was made with CUDA graphs: every run outside the bound buckets says graph id -1."""
        self._plain = plain_run_options(cuda_graphs)
        self.provider: str = session.get_providers()[0]
        self.inputs = tuple(_spec(i) for i in session.get_inputs())
        self.output_names = tuple(o.name for o in session.get_outputs())
        self.output_name: str = self.output_names[0]
        self.bound: BoundRunner | None = None
        """Per-bucket device buffers (and CUDA graphs) for :meth:`run` on a GPU; see ``stream/bound.py``."""

    def bind(self, buckets: Sequence[int] = BUCKETS, cuda_graphs: bool = False) -> None:
        """Serve :meth:`run` through bound per-bucket buffers (single-input graphs)."""
        if len(self.inputs) != 1:
            raise BucketError(f"{self.path.name}: bound runs take single-input graphs, it has {len(self.inputs)}")
        device = "cpu" if self.provider == CPU else "cuda"
        self.bound = BoundRunner(self.session, self.path.name, device, buckets, cuda_graphs and self.cuda_graphs)

    def _feed(self, arrays: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        pairs = zip(self.inputs, arrays, strict=True)
        return {spec.name: np.ascontiguousarray(a, dtype=spec.dtype) for spec, a in pairs}

    def run(self, *arrays: np.ndarray) -> np.ndarray:
        """Run on positional inputs (cast to the graph's dtype); returns the first output."""
        if self.bound is not None:
            return self.bound.run(np.asarray(arrays[0], dtype=self.bound.dtype))
        out = self.session.run([self.output_name], self._feed(arrays), self._plain)[0]
        return np.asarray(out, dtype=np.float32)

    def warm_up(self) -> None:
        """One plain run on zeros (graph id -1): the session's first-run costs, no CUDA graph captured
        here; each bucket's graph is captured on the thread that first serves it (``bound.py``)."""
        self.session.run([self.output_name], self._feed([np.zeros(_concrete(s.shape), dtype=s.dtype)
                                                          for s in self.inputs]), self._plain)

    def p_fake(self, *arrays: np.ndarray) -> np.ndarray:
        """Calibrated probability of 'fake' whatever class the graph's sigmoid measures."""
        return self._p_fake(self.run(*arrays))

    def p_fake_and(self, output: str, *arrays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P(fake) as :meth:`p_fake` plus another output of the same run (e.g. the attention map)."""
        p, extra = self.session.run([self.output_name, output], self._feed(arrays), self._plain)
        return self._p_fake(np.asarray(p, dtype=np.float32)), np.asarray(extra, dtype=np.float32)

    def _p_fake(self, out: np.ndarray) -> np.ndarray:
        p = out.reshape(-1)
        return calibrated(p if self.metadata.positive_class == "fake" else 1.0 - p, self.metadata.calibration)


def logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) in float64, with p kept 1e-7 inside (0, 1)."""
    q = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    out: np.ndarray = np.log(q / (1 - q))
    return out


def calibrated(p: np.ndarray, calibration: tuple[float, float]) -> np.ndarray:
    """Platt scaling of P(fake): sigmoid(a·logit(p) + b); (1, 0) returns ``p`` unchanged."""
    a, b = calibration
    if (a, b) == (1.0, 0.0):
        return p
    z = a * logit(p) + b
    out: np.ndarray = (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
    return out


def _spec(arg: Any) -> TensorSpec:
    dtype = np.dtype(np.float16) if arg.type == "tensor(float16)" else np.dtype(np.float32)
    return TensorSpec(arg.name, tuple(arg.shape), dtype)


def read_metadata(path: Path) -> ModelMetadata:
    """Metadata of an ONNX file without keeping a session (used by tools and tests)."""
    session = _open(path, [CPU])
    return ModelMetadata.from_props(session.get_modelmeta().custom_metadata_map, str(path))


def load_model(
    path: str | Path, role: Role, device: str = "auto", warmup: bool = True, settings: OrtSettings = DEFAULT_ORT
) -> OrtModel:
    """Open ``path`` for ``role`` on ``device``: metadata checked, graph shapes checked, warmed up.

    ``device='cuda'`` never runs on the CPU: a session that lands elsewhere (no usable GPU, CUDA
    libraries missing) is a ProviderError. ``auto`` falls back to the CPU with one warning."""
    path = Path(path)
    providers = select_providers(device)
    graphs = graphs_allowed(providers)
    try:
        session = _open(path, providers, settings, cuda_graphs=graphs)
    except ModelLoadError as exc:
        if not graphs:
            raise
        log.warning("%s: cannot be opened with CUDA graphs (%s); running it without them", path.name, exc)
        graphs = False
        session = _open(path, providers, settings)
    meta = ModelMetadata.from_props(session.get_modelmeta().custom_metadata_map, str(path))
    if meta.role != role:
        raise MetadataError(f"{path}: metadata field 'dfstream.role' is {meta.role!r}, expected {role!r}")
    model = OrtModel(path, session, meta, cuda_graphs=graphs)
    _check_inputs(model)
    if meta.attention_output is not None and meta.attention_output not in model.output_names:
        raise MetadataError(f"{path}: metadata field 'dfstream.attention_output' names "
                            f"{meta.attention_output!r}, which is not an output of the graph")
    if CUDA in providers and model.provider not in GPU_PROVIDERS:
        if device == "cuda":
            raise ProviderError(f"{path.name}: --device cuda, but ONNX Runtime runs it on {model.provider} (no "
                                "usable GPU, or the CUDA libraries did not load); use --device auto or cpu")
        _warn_cpu_fallback(model.provider)
    if model.provider in GPU_PROVIDERS and len(model.inputs) == 1:
        model = _bound_on_gpu(model, providers, settings)
    log.debug("%s (%s, %s) runs on %s", path.name, role, meta.precision, model.provider)
    if warmup:
        model.warm_up()
    return model


@functools.cache
def _warn_cpu_fallback(provider: str) -> None:
    """Once per process: ``auto`` found CUDA listed, and the sessions landed on the CPU."""
    log.warning("device auto: this onnxruntime lists CUDA, but the models run on %s (no usable GPU, or the CUDA "
                "libraries did not load)", provider)


def on_gpu(model: OrtModel) -> bool:
    """Whether a loaded session really runs on a GPU provider (what precision choices must follow)."""
    return model.provider in GPU_PROVIDERS


def _bound_on_gpu(model: OrtModel, providers: Sequence[str], settings: OrtSettings) -> OrtModel:
    """Bind a GPU session's runs per bucket, with CUDA graphs where the session was made with them; a
    graph that cannot be captured runs bound without them."""
    try:
        model.bind(cuda_graphs=model.cuda_graphs)
        return model
    except DfstreamError:
        raise  # a bucket that does not fit: the one-line error at start-up
    except Exception as exc:  # ORT raises private types when a graph cannot be captured
        if not model.cuda_graphs:
            raise
        log.warning("%s: CUDA graphs unavailable (%s); bound runs without them", model.path.name, first_line(exc))
    plain = OrtModel(model.path, _open(model.path, providers, settings), model.metadata)
    plain.bind(cuda_graphs=False)
    return plain


def _open(path: Path, providers: Sequence[str], settings: OrtSettings = DEFAULT_ORT,
          cuda_graphs: bool = False) -> ort.InferenceSession:
    if not path.is_file():
        raise InputPathError(f"model file not found: {path}")
    options = ort.SessionOptions()
    options.log_severity_level = _SILENT if CUDA in providers else _QUIET
    settings.apply(options)
    ort.set_default_logger_severity(_SILENT if CUDA in providers and not showing_all() else _QUIET)
    try:
        return ort.InferenceSession(str(path), sess_options=options,
                                    providers=provider_entries(path, providers, cuda_graphs))
    except Exception as exc:  # ORT raises several private exception types for unreadable graphs
        raise ModelLoadError(f"{path}: not a loadable ONNX model ({first_line(exc)})") from None


def _expected_shapes(meta: ModelMetadata) -> list[tuple[int | None, ...]]:
    s, t = meta.input_size, meta.clip_len
    if meta.role == "frame_cnn":
        return [(None, s, s, 3)]
    if meta.role == "clip_encoder":
        return [(None, 3, s, s)]
    if meta.role == "clip_head":
        return [(None, t, HEAD_FEATURES)]
    if meta.role == "face_model":
        return [(None, 3, s, s) if meta.input_layout == "NCHW" else (None, s, s, 3)]
    return [(None, t, 3, s, s), (None, t, LMK_DIM)]


def _check_inputs(model: OrtModel) -> None:
    expected = _expected_shapes(model.metadata)
    if len(model.inputs) != len(expected):
        raise MetadataError(
            f"{model.path}: graph has {len(model.inputs)} inputs, role {model.metadata.role} needs {len(expected)}"
        )
    for spec, want in zip(model.inputs, expected, strict=True):
        got = spec.shape
        ok = len(got) == len(want) and all(w is None or g == w for g, w in zip(got, want, strict=True))
        if not ok:
            shown = tuple("N" if w is None else w for w in want)
            raise MetadataError(
                f"{model.path}: input '{spec.name}' has shape {got}, but metadata "
                f"(role {model.metadata.role}, input_size {model.metadata.input_size}) implies {shown}"
            )


def _concrete(shape: tuple[int | str | None, ...]) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) else 1 for d in shape)
