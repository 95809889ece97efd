"""The driver of ``dfstream run --engine ray``: places scorers and camera workers, drains them into
one stream of records and events (the run's JSON lines, webhooks, MQTT, summary and metrics), and
keeps cameras going: a dead worker is restarted by Ray and its camera resumes; cameras can be
added and removed while the job runs (``ClusterRun.add`` / ``remove``; a config reload)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from prometheus_client import Gauge

from dfstream.stream.cluster import import_ray
from dfstream.stream.cluster.placement import ClusterOptions, Scorer, connect, start_scorers, start_worker
from dfstream.stream.cluster.worker import Camera, WorkerBatch, WorkerSettings
from dfstream.stream.contract.exceptions import first_line
from dfstream.stream.contract.types import Frame
from dfstream.stream.prometheus import LiveStats, MetricsServer
from dfstream.stream.records import status_dict
from dfstream.stream.sinks import SinkSet
from dfstream.stream.sources import SourceStatus
from dfstream.stream.summary import RunSummary, stop_reason

log = logging.getLogger(__name__)

_NO_PIXELS = np.zeros((0, 0, 3), np.uint8)
"""Frames do not cross the network: the driver's sinks get records, and the frame's name and time."""


@dataclass
class _CameraState:
    camera: Camera
    handle: Any
    node: str = ""
    done: bool = False
    error: str | None = None


@dataclass
class ClusterRun:
    settings: WorkerSettings
    options: ClusterOptions
    sinks: SinkSet
    provider: str = "ray"
    poll_s: float = 0.05
    cameras: dict[str, _CameraState] = field(default_factory=dict)
    scorers: list[Scorer] = field(default_factory=list)
    summary: RunSummary = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pending_add: list[Camera] = field(default_factory=list)
    _pending_remove: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.summary = RunSummary(provider=self.provider)
        self.sinks.add(self.summary.metrics)
        registry = self.summary.metrics.registry
        self.summary.metrics.bind(self._live_stats)
        self._fallback_gauge = Gauge("dfstream_camera_scorer_fallback", "1 while a camera scores on its worker's "
                                     "CPU because its scorer is unreachable.", ["source"], registry=registry)
        self._node_gauge = Gauge("dfstream_camera_worker_node", "1 for the node that runs a camera's worker.",
                                 ["source", "node"], registry=registry)

    # -- set-up ---------------------------------------------------------------------------------
    def start(self, cameras: Sequence[Camera]) -> None:
        connect(self.options, len(cameras))
        self.scorers = start_scorers(self.settings.models_dir, self.settings.precision, self.settings.ort,
                                     self.options)
        for camera in cameras:
            self._launch(camera)

    def _launch(self, camera: Camera) -> None:
        if camera.name in self.cameras and not self.cameras[camera.name].done:
            raise ValueError(f"camera {camera.name} is already running")
        handle = start_worker(camera, self.settings, self.scorers, self.options)
        self.cameras[camera.name] = _CameraState(camera, handle)
        self.summary.sources[camera.name].frames += 0  # listed from the start, even before a face
        log.info("camera %s: %s", camera.name, camera.spec)

    def add(self, camera: Camera) -> None:
        """Start a camera while running (thread-safe; takes effect at the next poll)."""
        with self._lock:
            self._pending_add.append(camera)

    def remove(self, name: str) -> None:
        """Stop a camera while running (thread-safe); what it produced until then is kept."""
        with self._lock:
            self._pending_remove.append(name)

    # -- the loop -------------------------------------------------------------------------------
    def run(self, duration_s: float | None = None, stop: threading.Event | None = None,
            keep_running: bool = False, metrics: MetricsServer | None = None) -> RunSummary:
        """Drain workers until every camera is done (or ``duration_s`` / ``stop``); ``keep_running``:
        wait for cameras to be added when none is left (a reloadable config); ``metrics``: the
        cluster's one Prometheus endpoint (closed at the end)."""
        ray = import_ray()
        stop = stop or threading.Event()
        start = time.perf_counter()
        if metrics is not None:
            metrics.show(self.summary.metrics.registry)
        try:
            while True:
                self._apply_changes()
                self._drain_all(ray)
                reason = stop_reason(stop, start, duration_s)
                if reason is not None:
                    self.summary.stopped_by = reason
                    break
                if not keep_running and all(c.done for c in self.cameras.values()):
                    break
                time.sleep(self.poll_s)
        finally:
            self.summary.elapsed_s = time.perf_counter() - start
            self._stop_all(ray)
            self.sinks.close()
            if metrics is not None:
                metrics.close()
        return self.summary

    def _apply_changes(self) -> None:
        with self._lock:
            add, self._pending_add = self._pending_add, []
            remove, self._pending_remove = self._pending_remove, []
        for name in remove:
            state = self.cameras.get(name)
            if state is not None and not state.done:
                self._stop_one(import_ray(), state, "removed")
        for camera in add:
            self._launch(camera)

    def _drain_all(self, ray: Any) -> None:
        live = [c for c in self.cameras.values() if not c.done]
        refs = {c.handle.drain.remote(): c for c in live}
        ready, not_ready = ray.wait(list(refs), num_returns=len(refs), timeout=5.0) if refs else ([], [])
        for ref in not_ready:
            ray.cancel(ref)
        for ref in ready:
            state = refs[ref]
            try:
                batch: WorkerBatch = ray.get(ref)
            except ray.exceptions.ActorUnavailableError:
                continue  # restarting: its next instance says so in a status record
            except ray.exceptions.RayActorError as exc:
                self._fail(state, f"camera worker died and was not restarted: {_cause(exc)}")
                continue
            self._take(state, batch)

    def _take(self, state: _CameraState, batch: WorkerBatch) -> None:
        name = state.camera.name
        if batch.node != state.node:
            if state.node:
                self._node_gauge.remove(name, state.node[:12])
            self._node_gauge.labels(name, batch.node[:12]).set(1)
        self._fallback_gauge.labels(name).set(1 if batch.on_fallback else 0)
        state.node = batch.node
        for result in batch.frames:
            records = list(result.records)
            self.summary.add_frame(result.source, records)
            frame = Frame(result.source, result.frame_id, result.ts, 0, _NO_PIXELS)
            self.sinks.write(frame, records, result.source)
        for event in batch.events:
            if event.get("type") == "status":
                self.summary.sources[name].outages += 1
            self.sinks.event(event)
        self.summary.sources[name].dropped = batch.dropped_frames + batch.lost
        if batch.done:
            state.done = True
            if batch.error:
                self._fail(state, batch.error)

    def _fail(self, state: _CameraState, reason: str) -> None:
        log.error("camera %s: %s", state.camera.name, reason)
        state.done, state.error = True, reason
        self.summary.sources[state.camera.name].error = reason
        now = time.time()
        self.sinks.event(status_dict(SourceStatus(state.camera.name, now, None, 1, reason)))

    def _stop_one(self, ray: Any, state: _CameraState, why: str) -> None:
        try:
            ray.get(state.handle.stop.remote(), timeout=15.0)
            self._take(state, ray.get(state.handle.drain.remote(), timeout=15.0))
        except ray.exceptions.RayError as exc:
            log.warning("camera %s did not stop cleanly (%s)", state.camera.name, type(exc).__name__)
        state.done = True
        ray.kill(state.handle, no_restart=True)
        log.info("camera %s %s", state.camera.name, why)

    def _stop_all(self, ray: Any) -> None:
        for state in self.cameras.values():
            if not state.done:
                self._stop_one(ray, state, "stopped")
            else:
                ray.kill(state.handle, no_restart=True)
        for scorer in self.scorers:
            ray.kill(scorer.handle, no_restart=True)

    def _live_stats(self) -> LiveStats:
        sources = self.summary.sources
        return LiveStats(
            frames={name: st.frames for name, st in list(sources.items())},
            dropped={name: st.dropped for name, st in list(sources.items())},
            provider=self.provider,
            outputs=self.sinks.stats(),
        )

    @property
    def errors(self) -> list[str]:
        return [f"{c.camera.name}: {c.error}" for c in self.cameras.values() if c.error]


def _cause(exc: BaseException) -> str:
    """The creation error of an actor that never started, or Ray's one-line reason."""
    text = str(exc)
    for line in text.splitlines():
        if "Error:" in line and "ActorDiedError" not in line:
            return line.strip()
    return first_line(exc)
