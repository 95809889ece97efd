"""What the GPU providers are asked for: CUDA graphs only where they can capture, TensorRT with its
engine and timing caches, one optimisation profile covering the batch buckets, fp16 only for fp16 graphs,
and no TF32 on the CUDA provider, so an fp32 row is fp32 (its default rounds matrix inputs to 10 bits).

ONNX Runtime's rules ("CUDA Execution Provider", "TensorRT Execution Provider"): a CUDA graph needs
every node on the CUDA provider, so never beside TensorRT; a run without ``gpu_graph_id`` uses graph
0 and -1 disables capture, so bucket graphs are numbered from 1 and every other run says -1; a
TensorRT engine built without a profile is rebuilt whenever a new batch size arrives.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from dfstream.stream.bound import BUCKETS

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
GPU_PROVIDERS = (TENSORRT, CUDA)
PROVIDER_LABEL = {CUDA: "cuda", TENSORRT: "tensorrt", CPU: "cpu"}
"""How reports and bench rows name the provider a session really runs on."""

CUDA_FP32 = {"use_tf32": "0"}
"""CUDA provider options every session gets: fp32 graphs compute in fp32 (ONNX Runtime's default lets
Ampere and later GPUs use TF32), as the CPU they are checked against and torch with TF32 off do."""

NO_GRAPH = "-1"
"""``gpu_graph_id`` of every run that must neither capture nor replay a CUDA graph."""
TRT_CACHE = Path.home() / ".cache" / "dfstream" / "tensorrt"


def graphs_allowed(providers: Sequence[str]) -> bool:
    """CUDA graphs capture only when every node runs on the CUDA provider: never beside TensorRT."""
    return CUDA in providers and TENSORRT not in providers


def plain_run_options(cuda_graphs: bool) -> ort.RunOptions | None:
    """Options for a run outside the bound buckets (probes, warm-up, ``--explain``): graph id -1."""
    if not cuda_graphs:
        return None
    options = ort.RunOptions()
    options.add_run_config_entry("gpu_graph_id", NO_GRAPH)
    return options


@dataclass(frozen=True)
class GraphInputs:
    """A graph's first input and whether its weights are fp16, read without a GPU."""

    name: str
    row_shape: tuple[int, ...] | None
    """Every axis but the batch, when all are fixed (None: no profile can be set)."""
    inputs: int
    fp16: bool


def read_graph_inputs(path: Path) -> GraphInputs:
    session = ort.InferenceSession(str(path), providers=[CPU])
    first = session.get_inputs()[0]
    rest = first.shape[1:]
    fixed = all(isinstance(d, int) and d > 0 for d in rest)
    return GraphInputs(first.name, tuple(rest) if fixed else None, len(session.get_inputs()),
                       first.type == "tensor(float16)"
                       or session.get_modelmeta().custom_metadata_map.get("dfstream.precision") == "fp16")


def tensorrt_options(graph: GraphInputs, buckets: Sequence[int] = BUCKETS,
                     cache: Path = TRT_CACHE) -> dict[str, str]:
    """Engine and timing caches (folder made with its parents), fp16 for fp16 graphs only, and one
    profile from the smallest to the largest bucket, so no batch size rebuilds an engine."""
    cache.mkdir(parents=True, exist_ok=True)
    options = {
        "trt_engine_cache_enable": "1",
        "trt_engine_cache_path": str(cache),
        "trt_timing_cache_enable": "1",
        "trt_timing_cache_path": str(cache),
        "trt_fp16_enable": "1" if graph.fp16 else "0",
    }
    if graph.row_shape is not None and graph.inputs == 1:
        def shape(n: int) -> str:
            return f"{graph.name}:" + "x".join(str(d) for d in (n, *graph.row_shape))  # type: ignore[misc]

        options |= {"trt_profile_min_shapes": shape(min(buckets)),
                    "trt_profile_opt_shapes": shape(sorted(buckets)[len(buckets) // 2]),
                    "trt_profile_max_shapes": shape(max(buckets))}
    return options


def provider_entries(path: Path, providers: Sequence[str],
                     cuda_graphs: bool) -> list[str | tuple[str, dict[str, str]]]:
    """The ``providers`` argument of the session for ``path``."""
    entries: list[str | tuple[str, dict[str, str]]] = []
    for p in providers:
        if p == CUDA:
            graphs = {"enable_cuda_graph": "1"} if cuda_graphs and graphs_allowed(providers) else {}
            entries.append((CUDA, CUDA_FP32 | graphs))
        elif p == TENSORRT:
            options = tensorrt_options(read_graph_inputs(path))
            log.info("%s: TensorRT builds its engines on the first run (minutes; cached in %s)", path.name,
                     options["trt_engine_cache_path"])
            entries.append((TENSORRT, options))
        else:
            entries.append(p)
    return entries


def tensorrt_loads() -> bool:
    """The TensorRT provider is in every onnxruntime-gpu wheel but needs TensorRT's libraries
    (``tensorrt-cu13``); importing the package loads libnvinfer for ONNX Runtime to find."""
    try:
        import tensorrt  # noqa: F401
    except Exception as exc:  # ImportError, or an OSError from a library that does not load
        log.debug("TensorRT not usable: %s", exc)
        return False
    return True
