"""Connecting to Ray and placing the actors: a scorer per GPU (or per CPU node when the cluster has
no GPU), pinned to its node; camera workers wherever their CPU request fits."""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dfstream.stream.cluster import NAMESPACE, import_ray
from dfstream.stream.cluster.scorer import BatchingScorer
from dfstream.stream.cluster.worker import Camera, CameraWorker, WorkerSettings
from dfstream.stream.contract.exceptions import DfstreamError, first_line
from dfstream.stream.ort_sessions import OrtSettings

log = logging.getLogger(__name__)

SCORER_PREFIX = "dfstream-scorer"



class ClusterUnreachable(DfstreamError):
    """The Ray address did not answer in time."""


@dataclass(frozen=True)
class ClusterOptions:
    address: str | None = None
    """None: start a local Ray instance; 'auto' or 'ray://host:port' or 'host:port': join a cluster."""
    connect_timeout_s: float = 30.0
    camera_cpus: float = 0.5
    """Logical CPUs each camera worker asks for (its placement, not a limit)."""
    worker_restarts: int = 3
    scorer_max_crops: int = 64
    device: str = "auto"


def connect(options: ClusterOptions, cameras: int) -> None:
    """Join ``options.address`` or start a local instance; bounded wait, one retry of a local start."""
    ray = import_ray()
    if ray.is_initialized():
        return
    if not log.isEnabledFor(logging.DEBUG):  # Ray's start-up notices; --debug shows them
        logging.getLogger("ray").setLevel(logging.ERROR)
    kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False, "include_dashboard": False,
                              "namespace": NAMESPACE}
    if options.address is None:
        kwargs["num_cpus"] = max(os.cpu_count() or 1, math.ceil(cameras * options.camera_cpus) + 1)
        attempts = 2  # a busy machine can time Ray's start-up out once
    else:
        kwargs = {"address": options.address, "log_to_driver": False, "configure_logging": False,
                  "namespace": NAMESPACE}
        attempts = 1
    error = ""
    for attempt in range(attempts):
        if options.address is None:
            # On this thread: Ray ties the processes it starts to the thread that starts them
            # (PR_SET_PDEATHSIG), so a helper thread's exit would kill the local instance.
            found = _init_here(ray, kwargs)
        else:
            found = _init_within(ray, kwargs, options.connect_timeout_s)
        if found is None:
            return
        error = found
        if options.address is not None:
            raise ClusterUnreachable(f"Ray cluster at {options.address} did not answer within "
                                     f"{options.connect_timeout_s:.0f} s: {error}")
        log.warning("local Ray start failed (attempt %d): %s", attempt + 1, error)
    raise DfstreamError(f"could not start a local Ray instance: {error}")


def _init_here(ray: Any, kwargs: dict[str, Any]) -> str | None:
    """ray.init on the main thread, keeping the command's own SIGTERM handling (Ray's exits at once)."""
    previous = signal.getsignal(signal.SIGTERM)
    try:
        ray.init(**kwargs)
    except Exception as exc:  # Ray's own start-up timeout on a busy machine
        return first_line(exc)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return None


def _init_within(ray: Any, kwargs: dict[str, Any], timeout_s: float) -> str | None:
    """ray.init in a thread: an address that never answers would otherwise block for minutes
    (connecting starts no process, so the thread may end)."""
    outcome: list[str | None] = []

    def target() -> None:
        try:
            ray.init(**kwargs)
            outcome.append(None)
        except Exception as exc:  # ConnectionError, RuntimeError, ValueError for a bad address
            outcome.append(first_line(exc))

    thread = threading.Thread(target=target, name="dfstream-ray-init", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        return "no answer"
    return outcome[0]


def alive_nodes() -> list[dict[str, Any]]:
    ray = import_ray()
    return [n for n in ray.nodes() if n.get("Alive")]


@dataclass(frozen=True)
class Scorer:
    name: str
    node: str
    handle: Any
    """Held by the driver for the whole run: Ray collects a named actor nobody holds."""


def start_scorers(models_dir: str, precision: str, ort: OrtSettings, options: ClusterOptions) -> list[Scorer]:
    """One scorer per GPU, or per node with CPUs when no node has a GPU, returned once each has
    loaded its models (a model error surfaces here, before any camera starts)."""
    ray = import_ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = alive_nodes()
    gpu_nodes = [n for n in nodes if n["Resources"].get("GPU", 0) >= 1]
    placements: list[tuple[dict[str, Any], float]] = []
    if gpu_nodes:
        placements = [(n, 1.0) for n in gpu_nodes for _ in range(int(n["Resources"]["GPU"]))]
    else:
        placements = [(n, 0.0) for n in nodes if n["Resources"].get("CPU", 0) > 0]
    if not placements:
        raise DfstreamError("the Ray cluster has no node with a CPU or GPU to run a scorer on")
    actor = ray.remote(BatchingScorer)
    run_id = uuid.uuid4().hex[:8]
    scorers: list[Scorer] = []
    for i, (node, gpus) in enumerate(placements):
        node_id = node["NodeID"]
        name = f"{SCORER_PREFIX}-{run_id}-{i}"
        handle = actor.options(
            name=name, namespace=NAMESPACE, num_cpus=0, num_gpus=gpus, max_restarts=-1, max_concurrency=1000,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        ).remote(models_dir, options.device if gpus else "cpu", precision, ort, options.scorer_max_crops)
        scorers.append(Scorer(name, node_id, handle))
    try:
        infos = ray.get([s.handle.info.remote() for s in scorers])
    except ray.exceptions.RayError as exc:
        raise DfstreamError(f"scorer did not start: {first_line(exc.__cause__ or exc)}") from None
    for scorer, info in zip(scorers, infos, strict=True):
        log.info("scorer %s on node %s (%s)", scorer.name, scorer.node[:12], info.provider)
    return scorers


def start_worker(camera: Camera, settings: WorkerSettings, scorers: Sequence[Scorer],
                 options: ClusterOptions) -> Any:
    ray = import_ray()
    actor = ray.remote(CameraWorker)
    return actor.options(
        num_cpus=options.camera_cpus,
        max_restarts=options.worker_restarts, max_task_retries=0,
    ).remote(camera, settings, [(s.name, s.node) for s in scorers])
