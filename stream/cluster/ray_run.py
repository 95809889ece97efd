"""``dfstream run --engine ray``: the run's config turned into cameras, workers and the driver's outputs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from dfstream.stream.cluster.driver import ClusterRun
from dfstream.stream.cluster.placement import ClusterOptions
from dfstream.stream.cluster.worker import Camera, WorkerSettings
from dfstream.stream.contract.exceptions import DfstreamError
from dfstream.stream.prometheus import MetricsServer
from dfstream.stream.run_config import RunConfig
from dfstream.stream.sinks import JsonlSink, Sink, SinkSet
from dfstream.stream.sources import source_name
from dfstream.stream.summary import RunSummary

log = logging.getLogger(__name__)


def cameras_of(config: RunConfig) -> list[Camera]:
    """One camera per source, named as the in-process run would name it (records match)."""
    options = config.pipeline_options()
    cameras: list[Camera] = []
    for i, spec in enumerate(config.sources):
        given = config.names[i] if i < len(config.names) else None
        name = given or source_name(spec)
        if any(c.name == name for c in cameras):
            raise DfstreamError(f"source {name} is given twice")
        cameras.append(Camera(name, spec, options.camera(name)))
    return cameras


def worker_settings(config: RunConfig) -> WorkerSettings:
    return WorkerSettings(
        models_dir=str(config.models_dir.resolve()), precision=config.precision, ort=config.ort,
        pipeline=config.pipeline_options(), realtime=config.realtime, loop=config.loop,
        rtsp_transport=config.rtsp_transport, retry=config.retry,
        events=config.events, detect_events=True,  # events are a stage of every run
    )


def driver_sinks(config: RunConfig, cameras: list[Camera]) -> SinkSet:
    """Records and events of every camera: the JSON lines, webhooks and MQTT (pixels stay on the workers)."""
    from dfstream.stream.outputs.webhook import WebhookSink

    sinks: list[Sink] = [WebhookSink(w, i) for i, w in enumerate(config.webhooks)]
    if config.mqtt is not None:
        from dfstream.stream.outputs.mqtt import MqttSink

        sinks.append(MqttSink(config.mqtt, [c.name for c in cameras]))
    if config.out is not None:
        sinks.append(JsonlSink(config.out))
    return SinkSet(sinks)


def run_cluster(
    config: RunConfig,
    stop: threading.Event | None = None,
    reload: Callable[[], RunConfig] | None = None,
    reload_signal: threading.Event | None = None,
) -> tuple[RunSummary, list[str]]:
    """Run the cameras on Ray until they end, ``duration`` passes or ``stop`` is set.

    With ``reload`` and ``reload_signal``, setting the signal re-reads the config: cameras that
    left it stop, new ones start, and the job keeps running while it has none."""
    if config.video is not None or config.window:
        raise DfstreamError("--engine ray: --video and --window need the frames, which stay on the camera "
                            "workers; use --events-dir for snapshots and clips")
    if config.device == "cuda":
        log.info("--device cuda: scorers on GPU nodes use CUDA")
    cameras = cameras_of(config)
    options = ClusterOptions(address=config.ray_address, connect_timeout_s=config.ray_timeout_s,
                             device=config.device)
    cluster = ClusterRun(worker_settings(config), options, driver_sinks(config, cameras))
    metrics = None
    try:
        metrics = None if config.metrics_port is None else MetricsServer(config.metrics_port)
        cluster.start(cameras)
    except BaseException:
        cluster.sinks.close()
        if metrics is not None:
            metrics.close()
        raise
    if reload is not None and reload_signal is not None:
        threading.Thread(target=_watch_reload, args=(cluster, reload, reload_signal, stop),
                         name="dfstream-config-reload", daemon=True).start()
    summary = cluster.run(config.duration_s, stop, keep_running=reload is not None, metrics=metrics)
    errors = cluster.errors + [f"sink {e}" for e in cluster.sinks.failed]
    return summary, errors


def _watch_reload(cluster: ClusterRun, reload: Callable[[], RunConfig], signal: threading.Event,
                  stop: threading.Event | None) -> None:
    while stop is None or not stop.is_set():
        if not signal.wait(0.5):
            continue
        signal.clear()
        try:
            new = {c.name: c for c in cameras_of(reload())}
        except Exception as exc:  # a broken file keeps the cameras that run
            log.error("config reload refused, cameras unchanged: %s", exc)
            continue
        running = {name: s.camera for name, s in cluster.cameras.items() if not s.done}
        for name, camera in running.items():
            if new.get(name) != camera:
                cluster.remove(name)
        for name, camera in new.items():
            if running.get(name) != camera:
                cluster.add(camera)
        log.info("config reloaded: %d cameras", len(new))
