"""``dfstream run``: build everything in the order that fails fast, then stream until done.

Order: sources are opened (a missing file, a non-video, a webcam that does not open fail here),
output paths are created (an unwritable path fails here), models are loaded and warmed up, and
only then do capture threads start. Whatever was scored is flushed and the video finalised on
every exit path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from dfstream.stream.contract.exceptions import DfstreamError
from dfstream.stream.event_store import EventSink
from dfstream.stream.face_models import FaceModelStage, face_model_files, load_face_models
from dfstream.stream.model_set import ModelSet
from dfstream.stream.outputs.settings import EventsConfig, MqttConfig, WebhookConfig
from dfstream.stream.pipeline import Pipeline
from dfstream.stream.prometheus import MetricsServer
from dfstream.stream.run_config import RunConfig, ServeConfig
from dfstream.stream.sinks import JsonlSink, Sink, SinkSet, VideoSink, WindowSink
from dfstream.stream.sources import RetryPolicy, SourceOptions, ThreadedSource, open_source
from dfstream.stream.sources.base import Policy
from dfstream.stream.summary import RunSummary

log = logging.getLogger(__name__)


def video_paths(video: Path, count: int) -> list[Path]:
    """One path per source: ``video`` itself for one source, ``name-<i>.mp4`` for several."""
    if count == 1:
        return [video]
    return [video.with_name(f"{video.stem}-{i}{video.suffix}") for i in range(count)]


def open_sources(config: RunConfig | ServeConfig, options: SourceOptions | None = None) -> list[ThreadedSource]:
    """Every source, named as the config names it; ``options`` default to the run's pacing and retry."""
    if options is None:
        if not isinstance(config, RunConfig):
            raise TypeError("serve feeds need explicit SourceOptions")
        options = SourceOptions(realtime=config.realtime, loop=config.loop, rtsp_transport=config.rtsp_transport,
                                retry=RetryPolicy(attempts=config.retry))
    sources: list[ThreadedSource] = []
    names: set[str] = set()
    for i, spec in enumerate(config.sources):
        source = open_source(spec, options, name=config.names[i] if i < len(config.names) else None)
        if source.name in names:
            raise DfstreamError(f"source {source.name} is given twice")
        names.add(source.name)
        sources.append(source)
    return sources


def event_outputs(
    events: EventsConfig | None,
    webhooks: Sequence[WebhookConfig],
    mqtt: MqttConfig | None,
    sources: Sequence[ThreadedSource],
) -> list[Sink]:
    """The event store (first, so its last events reach the others at close), webhooks and MQTT.

    Events are a stage of every run: detected whether or not an output is configured (the page and
    the records file list them); without an events folder they are published but not stored. Each
    output works off the scoring thread, bounded and counted."""
    from dfstream.stream.outputs.webhook import WebhookSink

    fps = {s.name: s.fps or 30.0 for s in sources}
    out: list[Sink] = [EventSink(events, lambda name: fps.get(name, 30.0))]
    out += [WebhookSink(w, i) for i, w in enumerate(webhooks)]
    if mqtt is not None:
        from dfstream.stream.outputs.mqtt import MqttSink

        out.append(MqttSink(mqtt, [s.name for s in sources]))
    return out


def connect_events(sinks: SinkSet) -> None:
    """Events the event store detects go to every sink (records file, webhooks, MQTT, the page)."""
    for sink in sinks.all:
        if isinstance(sink, EventSink):
            sink.attach(sinks.event)


def build_sinks(config: RunConfig, sources: list[ThreadedSource]) -> SinkSet:
    sinks = event_outputs(config.events, config.webhooks, config.mqtt, sources)
    if config.out is not None:
        sinks.append(JsonlSink(config.out))
    if config.video is not None:
        for path, source in zip(video_paths(config.video, len(sources)), sources, strict=True):
            sinks.append(VideoSink(path, source.name, source.fps or 30.0))
    if config.window is None:
        if WindowSink.available():
            sinks.append(WindowSink())
    elif config.window:
        if WindowSink.available():
            sinks.append(WindowSink())
        else:
            log.warning("no display: the live window is off")
    sink_set = SinkSet(sinks)
    connect_events(sink_set)
    return sink_set


def load_detectors(config: RunConfig | ServeConfig, on_lanes: bool) -> FaceModelStage:
    """The imported detectors of a run or server, loaded and warmed up (none: an empty stage)."""
    files = face_model_files(config.detectors)
    stage = FaceModelStage(load_face_models(files, config.device, config.ort, on_lanes))
    unknown = sorted(set(config.model_weights) - {"bundled", *stage.names})
    if unknown:
        raise DfstreamError(f"models.weights names {unknown[0]!r}, which is neither 'bundled' nor a loaded "
                            f"detector ({', '.join(stage.names) or 'none loaded'})")
    return stage


def have_deadline(sources: Sequence[ThreadedSource]) -> bool:
    """Whether a source is live or paced: lanes serve those (imported detectors always, model A unless
    ``--no-frame-lane``)."""
    return any(s.policy is Policy.DROP_OLDEST for s in sources)


def frame_model_on_lane(config: RunConfig, sources: Sequence[ThreadedSource]) -> bool:
    """Whether model A will run on its frame lane."""
    return config.frame_lane and have_deadline(sources)


def run_stream(
    config: RunConfig,
    stop: threading.Event | None = None,
    options: SourceOptions | None = None,
) -> tuple[RunSummary, list[str]]:
    """Run until the sources end, ``duration`` passes or ``stop`` is set; returns summary and source errors."""
    sources = open_sources(config, options)
    sinks = build_sinks(config, sources)
    metrics = None
    try:
        metrics = None if config.metrics_port is None else MetricsServer(config.metrics_port)
        if config.metrics_port is not None:
            log.info("metrics: http://127.0.0.1:%d/metrics", config.metrics_port)
        models = ModelSet.load(config.models_dir, config.device, config.precision, config.ort,
                               frame_on_lane=frame_model_on_lane(config, sources))
        face_models = load_detectors(config, on_lanes=have_deadline(sources))
    except BaseException:
        sinks.close()
        if metrics is not None:
            metrics.close()
        raise
    for source in sources:
        log.info("source %s", source.describe())
    pipeline = Pipeline(models, sources, sinks, config.pipeline_options(), face_models)
    if metrics is not None:
        metrics.show(pipeline.summary.metrics.registry)
    try:
        summary = pipeline.run(config.duration_s, stop)
    finally:
        if metrics is not None:
            metrics.close()
    summary.outputs = sinks.stats()
    if pipeline.dispatch.dropped:
        summary.outputs["sinks"] = pipeline.dispatch.stats()
    errors = pipeline.errors + [f"sink {e}" for e in sinks.failed]
    return summary, errors

