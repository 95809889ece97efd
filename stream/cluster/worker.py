"""A camera worker: one camera's source, faces, tracking, crops, clip buffers, clip head, scoring and
event store, with model A and the encoder on a shared scorer. The driver drains what it produced."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dfstream.stream.cluster import NAMESPACE
from dfstream.stream.cluster.remote_models import RemoteModels
from dfstream.stream.contract.metadata import FILE_NAME_OF_ROLE
from dfstream.stream.contract.types import Frame
from dfstream.stream.event_store import EventSink
from dfstream.stream.local_run import connect_events
from dfstream.stream.model_set import ModelSet
from dfstream.stream.ort_sessions import OrtSettings, load_model
from dfstream.stream.outputs.settings import EventsConfig
from dfstream.stream.pipeline import Pipeline
from dfstream.stream.records import ScoreRecord, status_dict
from dfstream.stream.settings import CameraSettings, PipelineOptions
from dfstream.stream.sinks import Sink, SinkSet
from dfstream.stream.sources import RetryPolicy, SourceOptions, SourceStatus, open_source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Camera:
    """One camera of the cluster, as the config or the command line names it."""

    name: str
    spec: str
    settings: CameraSettings
    """Its resolved max faces, stride and threshold (a reloaded file's new camera brings its own)."""


@dataclass(frozen=True)
class WorkerSettings:
    """What every camera worker shares (the run's options, minus what only the driver does)."""

    models_dir: str
    precision: str
    ort: OrtSettings
    pipeline: PipelineOptions
    """The run's resolved settings, as the in-process pipeline takes them (each camera brings its own)."""
    realtime: bool
    loop: bool
    rtsp_transport: str
    retry: int | None
    events: EventsConfig | None
    """The event store runs on the worker (it needs the frames); its folder is on the worker's node."""
    detect_events: bool
    """Detect deepfake events even without a folder (webhooks or MQTT on the driver want them)."""
    queue: int = 20_000
    """Frames' results held between drains; beyond it the oldest are dropped and counted."""


def camera_options(settings: WorkerSettings, camera: Camera) -> PipelineOptions:
    """The run's options with this camera's own settings (a reloaded file's new camera brings them)."""
    return replace(settings.pipeline, cameras=((camera.name, camera.settings),))


@dataclass(frozen=True)
class FrameResult:
    source: str
    frame_id: int
    ts: float
    records: tuple[ScoreRecord, ...]


@dataclass(frozen=True)
class WorkerBatch:
    """What one ``drain`` returns: frames' records and events since the last drain."""

    frames: tuple[FrameResult, ...]
    events: tuple[dict[str, Any], ...]
    done: bool
    node: str
    error: str | None = None
    dropped_frames: int = 0
    """Frames the source skipped because scoring was behind (the live-source policy)."""
    lost: int = 0
    """Results dropped because the driver drained too slowly."""
    on_fallback: bool = False


@dataclass
class _Collector:
    """The worker's sink: keeps results until the driver drains them (bounded)."""

    limit: int
    frames: deque[FrameResult] = field(default_factory=deque)
    events: deque[dict[str, Any]] = field(default_factory=deque)
    lost: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def write(self, frame: Frame, records: Sequence[ScoreRecord], header: str) -> None:
        with self.lock:
            if len(self.frames) >= self.limit:
                self.frames.popleft()
                self.lost += 1
            self.frames.append(FrameResult(frame.source, frame.frame_id, frame.ts, tuple(records)))

    def event(self, data: dict[str, Any]) -> None:
        with self.lock:
            self.events.append(data)

    def close(self) -> None:
        return None

    def take(self) -> tuple[tuple[FrameResult, ...], tuple[dict[str, Any], ...], int]:
        with self.lock:
            frames, events = tuple(self.frames), tuple(self.events)
            self.frames.clear()
            self.events.clear()
            return frames, events, self.lost


class CameraWorker:
    """Ray actor class (made remote in ``placement.py``). Restarted by Ray when its process or node
    dies; the new instance resumes the camera and says so in a status record."""

    def __init__(self, camera: Camera, settings: WorkerSettings, scorers: Sequence[tuple[str, str]]) -> None:
        import ray

        context = ray.get_runtime_context()
        self.node = context.get_node_id()
        self.camera = camera
        self.collector = _Collector(settings.queue)
        self.error: str | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        if context.was_current_actor_reconstructed:
            now = time.time()
            self._status(f"camera worker restarted on node {self.node[:12]}", now, now)
        models_dir = Path(settings.models_dir)
        scorer = _find_scorer(ray, scorers, self.node, camera.name)
        head = load_model(models_dir / FILE_NAME_OF_ROLE["clip_head"], "clip_head", "cpu", settings=settings.ort)
        self.models: RemoteModels = RemoteModels(
            scorer, head,
            fallback=lambda: ModelSet.load(models_dir, "cpu", settings.precision, settings.ort),
            on_status=self._status,
        )
        source_options = SourceOptions(realtime=settings.realtime, loop=settings.loop,
                                rtsp_transport=settings.rtsp_transport,  # type: ignore[arg-type]
                                retry=RetryPolicy(attempts=settings.retry))
        sinks: list[Sink] = []
        if settings.events is not None or settings.detect_events:
            # a restarted worker finds its predecessor's open events in the folder and ends them
            reason = "worker restarted" if context.was_current_actor_reconstructed else "interrupted"
            sinks.append(EventSink(settings.events, lambda _: fps, interrupted_reason=reason))
        sinks.append(self.collector)
        sink_set = SinkSet(sinks)
        connect_events(sink_set)
        try:
            source = open_source(camera.spec, source_options, name=camera.name)
        except Exception as exc:
            self.error = f"source {camera.name}: {exc}"
            self._done.set()
            self.pipeline: Pipeline | None = None
            return
        fps = source.fps or 30.0
        self.pipeline = Pipeline(self.models, [source], sink_set, camera_options(settings, camera))
        self._thread = threading.Thread(target=self._run, name=f"dfstream-camera-{camera.name}", daemon=True)
        self._thread.start()

    def _status(self, reason: str, down_at: float, up_at: float | None) -> None:
        self.collector.event(status_dict(SourceStatus(self.camera.name, down_at, up_at, 1, reason)))

    def _run(self) -> None:
        assert self.pipeline is not None
        try:
            self.pipeline.run(stop=self._stop)
            if self.pipeline.errors:
                self.error = "; ".join(self.pipeline.errors)
        except Exception as exc:  # reported through drain; the driver decides
            log.exception("camera %s failed", self.camera.name)
            self.error = f"camera {self.camera.name}: {exc}"
        finally:
            self._done.set()

    def drain(self) -> WorkerBatch:
        done = self._done.is_set()  # read first: a result written after this is taken by the next drain
        frames, events, lost = self.collector.take()
        dropped = 0
        if self.pipeline is not None:
            dropped = sum(st.source.dropped for st in self.pipeline.streams)
        return WorkerBatch(frames, events, done, self.node, self.error, dropped, lost, self.models.on_fallback)

    def stop(self) -> bool:
        """Stop the camera; the pipeline closes its source and event store. Returns when done (≤ 10 s)."""
        self._stop.set()
        return self._done.wait(10.0)


def scorer_order(scorers: Sequence[tuple[str, str]], node: str, camera: str) -> list[str]:
    """Scorers to try, best first: those on this node (crops stay in shared memory), then the others,
    each group rotated by the camera's name so that cameras spread over the scorers."""
    def rotated(names: list[str]) -> list[str]:
        k = sum(camera.encode()) % len(names) if names else 0
        return names[k:] + names[:k]

    local = [name for name, scorer_node in scorers if scorer_node == node]
    other = [name for name, scorer_node in scorers if scorer_node != node]
    return rotated(local) + rotated(other)


def _find_scorer(ray: Any, scorers: Sequence[tuple[str, str]], node: str, camera: str) -> Any | None:
    """The first scorer that still exists (one whose node died is gone for good); None: none is left."""
    for name in scorer_order(scorers, node, camera):
        try:
            return ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            continue
    return None
