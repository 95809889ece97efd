"""Prometheus metrics of a running pipeline (``GET /metrics``), through prometheus-client.

Each pipeline has its own registry (several servers may share a process, as in the tests):

- observed as they happen: ``dfstream_stage_latency_seconds`` (histogram per stage),
  ``dfstream_events_total{source,state}`` and ``dfstream_source_label{source,dfstream_source_label}``
  (an enum: the most alarming face's label on the source's latest frame, ``none`` without a face);
- read at scrape time from what the pipeline already counts (a collector): frames and drops per
  source, the provider, and per output (event store, webhooks, MQTT) what it sent, retried, dropped
  and holds queued; whoever owns another number registers its own reading (the server: peers).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dfstream.stream.contract.exceptions import DfstreamError
from dfstream.stream.contract.types import Frame
from dfstream.stream.records import ALARM_ORDER, ScoreRecord, most_alarming

BUCKETS_S: tuple[float, ...] = (0.001, 0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)
"""Stage latency buckets in seconds: Prometheus' base unit (the records keep milliseconds)."""

COUNTED = {"sent": "sent", "retried": "retries", "dropped": "dropped", "published": "sent", "events": "events",
           "dropped frames": "dropped", "connects": "connects"}
"""An output's counter name (its ``stats()`` key) → the metric it is exported as."""


@dataclass(frozen=True)
class LiveStats:
    """What the pipeline counts anyway, read when Prometheus scrapes."""

    frames: dict[str, int]
    dropped: dict[str, int]
    provider: str
    outputs: dict[str, dict[str, int]] = field(default_factory=dict)


class _LiveCollector(Collector):  # type: ignore[misc]
    def __init__(self, read: Callable[[], LiveStats]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        live = self._read()
        frames = CounterMetricFamily("dfstream_frames", "Frames processed per source.", labels=["source"])
        dropped = CounterMetricFamily("dfstream_dropped_frames",
                                      "Frames a live source dropped because the pipeline was busy.", labels=["source"])
        for source, n in sorted(live.frames.items()):
            frames.add_metric([source], n)
        for source, n in sorted(live.dropped.items()):
            dropped.add_metric([source], n)
        yield from (frames, dropped)  # no smoothed fps gauge: rate(dfstream_frames_total[1m]) is the fps
        info = GaugeMetricFamily("dfstream_model_info", "The ONNX Runtime provider the models run on.",
                                 labels=["provider"])
        info.add_metric([live.provider], 1)
        yield info
        yield from _output_families(live.outputs)


def _output_families(outputs: dict[str, dict[str, int]]) -> Iterator[Metric]:
    counters: dict[str, CounterMetricFamily] = {}
    queued = GaugeMetricFamily("dfstream_output_queue_depth", "Items an output holds, waiting to be sent.",
                               labels=["output"])
    for output, stats in sorted(outputs.items()):
        for key, value in stats.items():
            if key == "queued":
                queued.add_metric([output], value)
                continue
            name = COUNTED.get(key)
            if name is None:
                continue
            family = counters.setdefault(name, CounterMetricFamily(
                f"dfstream_output_{name}", f"Per output (event store, webhook, MQTT): {name}.", labels=["output"]))
            family.add_metric([output], value)
    yield from counters.values()
    yield queued


class PipelineMetrics:
    """The pipeline's registry; also a sink, so it sees every frame's records and every event."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.stage_latency = Histogram("dfstream_stage_latency_seconds",
                                       "Per-frame latency of each pipeline stage (seconds).",
                                       ["stage"], buckets=BUCKETS_S, registry=self.registry)
        self.events = Counter("dfstream_events", "Deepfake events per source and state (start, end).",
                              ["source", "state"], registry=self.registry)
        self.frame_model_every = Gauge("dfstream_frame_model_every",
                                       "Model A runs on every k-th frame of a track (the deadline scheduler's k).",
                                       registry=self.registry)
        self.frame_model_every.set(1)
        self.label = Enum("dfstream_source_label", "Label of the most alarming face on a source's latest frame.",
                          ["source"], states=list(ALARM_ORDER), registry=self.registry)
        self._event_labels: set[tuple[str, str]] = set()
        self._lock = threading.Lock()  # forget (the pipeline's thread) against write and event (the sinks')
        self._gone: set[str] = set()
        """Sources forgotten: the sinks' thread may still bring their last records and events (a few
        bytes per peer that ever left; peer names are never reused)."""

    def bind(self, read: Callable[[], LiveStats]) -> None:
        """Export the pipeline's own counters, read at scrape time."""
        self.registry.register(_LiveCollector(read))

    def observe(self, stage: str, ms: float) -> None:
        self.stage_latency.labels(stage).observe(ms / 1000.0)

    def text(self) -> bytes:
        return bytes(generate_latest(self.registry))

    # -- the sink interface ---------------------------------------------------------------------------
    def write(self, frame: Frame, records: Sequence[ScoreRecord], header: str) -> None:
        worst = most_alarming(records)
        with self._lock:
            if frame.source not in self._gone:
                self.label.labels(frame.source).state("none" if worst is None else worst.label)

    def event(self, data: dict[str, Any]) -> None:
        if data.get("type") != "event":
            return
        labels = (str(data.get("source")), str(data.get("state")))
        with self._lock:
            if labels[0] not in self._gone:
                self.events.labels(*labels).inc()
                self._event_labels.add(labels)

    def forget(self, source: str) -> None:
        """Remove a source's series (a browser peer that left a server): per-peer series must not pile up."""
        with self._lock:
            self._gone.add(source)
            try:
                self.label.remove(source)
            except KeyError:
                pass
            for labels in [lb for lb in self._event_labels if lb[0] == source]:
                self.events.remove(*labels)
                self._event_labels.discard(labels)

    def close(self) -> None:
        return None


class Reading(Collector):  # type: ignore[misc]
    """A gauge read at scrape time from whoever owns the number (the server's connected peers)."""

    def __init__(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        self._family = (name, documentation)
        self._read = read

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(*self._family, value=self._read())


class MetricsServer:
    """``GET /metrics`` on ``host:port`` for ``dfstream run`` (serve has its own). Bound at start-up, so a
    taken port fails before any work; it serves whichever registry :meth:`show` gives it."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self._registry: CollectorRegistry | None = None
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=self)  # type: ignore[arg-type]
        except OSError as exc:
            raise DfstreamError(f"--metrics-port {port}: {exc.strerror or exc}") from None

    def collect(self) -> Iterator[Metric]:
        if self._registry is not None:
            yield from self._registry.collect()

    def show(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
