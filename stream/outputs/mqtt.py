"""MQTT with Home Assistant discovery (paho-mqtt): each source's state, each event, availability.

Topics under the prefix (``dfstream`` by default):

- ``<prefix>/status``: ``online`` / ``offline`` (retained; ``offline`` is the last will);
- ``<prefix>/<source>/state``: ``{"faces", "label", "score", "deepfake": "ON"|"OFF", "ts"}``
  (retained), at most every ``state_interval_s`` and at once when the label changes;
- ``<prefix>/events``: every event record (start and end).

Home Assistant discovery (``homeassistant/…/config``, retained, sent again on every connect): per
source a binary sensor "Deepfake detected" (entity ``binary_sensor.dfstream_<source>_deepfake``) and a
sensor "Deepfake score" (``sensor.dfstream_<source>_score``), named by ``default_entity_id`` (Home
Assistant 2025.10 deprecated ``object_id`` and 2026.4 removed it), with an ``origin`` block and two
availability topics (the process's and the source's own, both needed). Browser calls share one
``webrtc`` device instead of leaving one per call behind.

Delivery is counted honestly: a message is ``published`` once the broker acknowledged it. While the
broker is away only each source's latest state is kept (states are retained snapshots: an old one
is worth nothing), so events get the whole ``queue``; what cannot be queued or is still unacknowledged
at the end is ``dropped``, and a broker that does not answer is a warning, as is its return.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from dfstream import __version__
from dfstream.stream.contract.exceptions import InputPathError
from dfstream.stream.contract.types import Frame
from dfstream.stream.outputs.settings import MqttConfig
from dfstream.stream.records import ScoreRecord
from dfstream.stream.sources import redact
from dfstream.stream.sources.base import display_name

log = logging.getLogger(__name__)

LABEL_RANK = {"fake": 3, "uncertain": 2, "real": 1}


WEBRTC = "webrtc"
"""The one Home Assistant device that every browser call (source ``peer:<id>``) reports as."""


def topic_name(source: str) -> str:
    """A source's name as one MQTT topic level and HA id: letters, digits, '_' and '-'."""
    if source.startswith("peer:"):
        return WEBRTC
    return re.sub(r"[^A-Za-z0-9_-]+", "_", display_name(source)).strip("_") or "source"


def check_topic_names(sources: Sequence[str]) -> None:
    """Two cameras whose names become the same topic would publish into one entity: refused, naming both."""
    seen: dict[str, str] = {}
    for source in sources:
        name = topic_name(source)
        if name in seen and seen[name] != source:
            raise InputPathError(f"mqtt: sources {display_name(seen[name])!r} and {display_name(source)!r} both "
                                 f"publish as {name!r}; rename one")
        seen[name] = source


def availability_topic(cfg: MqttConfig, source: str) -> str:
    return f"{cfg.prefix}/{topic_name(source)}/availability"


def discovery_messages(cfg: MqttConfig, source: str) -> list[tuple[str, dict[str, Any]]]:
    """(topic, payload) of the two Home Assistant discovery configs for ``source`` (MQTT discovery as Home
    Assistant 2026.4 documents it: ``default_entity_id`` names the entity, ``object_id`` is gone)."""
    name = topic_name(source)
    shown = name if name == WEBRTC else display_name(source)
    device = {"identifiers": [f"dfstream_{name}"], "name": f"dfstream {shown}",
              "manufacturer": "dfstream", "model": "streaming deepfake detector", "sw_version": __version__}
    common = {"state_topic": f"{cfg.prefix}/{name}/state", "device": device,
              "availability": [{"topic": f"{cfg.prefix}/status"}, {"topic": availability_topic(cfg, source)}],
              "availability_mode": "all",
              "origin": {"name": "dfstream", "sw_version": __version__}}
    binary = {**common, "name": "Deepfake detected", "unique_id": f"dfstream_{name}_deepfake",
              "default_entity_id": f"binary_sensor.dfstream_{name}_deepfake",
              "device_class": "problem", "value_template": "{{ value_json.deepfake }}",
              "payload_on": "ON", "payload_off": "OFF"}
    score = {**common, "name": "Deepfake score", "unique_id": f"dfstream_{name}_score",
             "default_entity_id": f"sensor.dfstream_{name}_score",
             "value_template": "{{ value_json.score }}", "state_class": "measurement", "icon": "mdi:face-recognition"}
    base = cfg.discovery_prefix
    return [(f"{base}/binary_sensor/dfstream_{name}/deepfake/config", binary),
            (f"{base}/sensor/dfstream_{name}/score/config", score)]


def source_state(records: Sequence[ScoreRecord], ts: float) -> dict[str, Any]:
    """One source's state on one frame: the most alarming face decides label and score."""
    if not records:
        return {"faces": 0, "label": "none", "score": None, "deepfake": "OFF", "ts": round(ts, 3)}
    worst = max(records, key=lambda r: (LABEL_RANK[r.label], r.score))
    return {"faces": len(records), "label": worst.label, "score": round(worst.score, 4),
            "deepfake": "ON" if worst.label == "fake" else "OFF", "ts": round(ts, 3)}


class MqttSink:
    def __init__(self, cfg: MqttConfig, sources: Sequence[str] = ()) -> None:
        parts = urlsplit(cfg.url)
        if not parts.hostname:
            raise InputPathError(f"mqtt {redact(cfg.url)}: no host")
        check_topic_names(sources)
        self.cfg = cfg
        self.name = f"mqtt {redact(cfg.url)}"
        self.published = self.dropped = self.connects = 0
        self._sources: set[str] = set()
        self._last: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._unacked: set[int] = set()
        """Message ids handed to paho and not yet acknowledged by the broker."""
        self._early_acks: set[int] = set()
        self._held_states: dict[str, dict[str, Any]] = {}
        """Topic → the latest state while the broker is away (sent on connect)."""
        self._unreachable_since: float | None = None
        self._closing = False
        self._queue_full = False
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dfstream-{os.getpid()}-{id(self):x}")
        if parts.username:
            client.username_pw_set(unquote(parts.username), unquote(parts.password or "") or None)
        if parts.scheme == "mqtts":
            client.tls_set()
        client.will_set(f"{cfg.prefix}/status", "offline", qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_queued_messages_set(cfg.queue)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        for source in sources:
            self._sources.add(source)
        client.connect_async(parts.hostname, parts.port or (8883 if parts.scheme == "mqtts" else 1883), keepalive=30)
        client.loop_start()

    # -- paho callbacks (its loop thread) -------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._unreachable(f"connection refused ({reason})")
            return
        self.connects += 1
        self._connected.set()
        with self._lock:
            since, self._unreachable_since = self._unreachable_since, None
            sources = sorted(self._sources)
            held, self._held_states = self._held_states, {}
        if since is not None:
            log.warning("%s: connected after %.0f s unreachable", self.name, time.monotonic() - since)
        else:
            log.info("%s: connected", self.name)
        client.publish(f"{self.cfg.prefix}/status", "online", qos=1, retain=True)
        for source in sources:
            self._announce(source)
        for topic, state in held.items():
            self._publish(topic, state, retain=True)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._unreachable("broker unreachable")

    def _unreachable(self, why: str) -> None:
        with self._lock:
            first = self._unreachable_since is None
            if first:
                self._unreachable_since = time.monotonic()
        if first:
            log.warning("%s: %s; events queue up to %d and go out when it answers", self.name, why, self.cfg.queue)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._connected.clear()
        if not self._closing:
            log.warning("%s: disconnected (%s); reconnecting with backoff", self.name, reason)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._lock:
            if mid in self._unacked:
                self._unacked.discard(mid)
                self.published += 1
            else:  # acknowledged before publish() returned its id to _publish
                self._early_acks.add(mid)

    # -- the sink interface ---------------------------------------------------------------------------
    def write(self, frame: Frame, records: Sequence[ScoreRecord], header: str) -> None:
        source = frame.source
        with self._lock:
            new = source not in self._sources
            self._sources.add(source)
        if new and self._connected.is_set():
            self._announce(source)
        state = source_state(records, frame.ts)
        now = time.monotonic()
        last_t, last_label = self._last.get(source, (-1e9, ""))
        if state["label"] == last_label and now - last_t < self.cfg.state_interval_s:
            return
        self._last[source] = (now, state["label"])
        topic = f"{self.cfg.prefix}/{topic_name(source)}/state"
        if not self._connected.is_set():  # only the latest state is worth sending later
            with self._lock:
                self._held_states[topic] = state
            return
        self._publish(topic, state, retain=True)

    def event(self, data: dict[str, Any]) -> None:
        if data.get("type") == "event":
            self._publish(f"{self.cfg.prefix}/events", data, retain=False)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"published": self.published, "dropped": self.dropped, "queued": len(self._unacked),
                    "connects": self.connects}

    def close(self, wait_s: float = 5.0) -> None:
        """Give queued messages up to ``wait_s`` to be acknowledged, then go offline and stop; what was
        never acknowledged is counted dropped."""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and self._connected.is_set():
            with self._lock:
                if not self._unacked:
                    break
            time.sleep(0.02)
        self._closing = True
        if self._connected.is_set():
            for source in sorted(self._sources):
                self._client.publish(availability_topic(self.cfg, source), "offline", qos=1, retain=True)
            self._client.publish(f"{self.cfg.prefix}/status", "offline", qos=1, retain=True).wait_for_publish(2.0)
        self._client.disconnect()
        self._client.loop_stop()
        with self._lock:
            lost, self._unacked = len(self._unacked), set()
            self.dropped += lost
        if lost:
            log.warning("%s: %d message(s) never reached the broker; counted dropped", self.name, lost)

    def _announce(self, source: str) -> None:
        if self.cfg.discovery:
            for topic, payload in discovery_messages(self.cfg, source):
                self._publish(topic, payload, retain=True)
        self._client.publish(availability_topic(self.cfg, source), "online", qos=1, retain=True)

    def _publish(self, topic: str, payload: dict[str, Any], retain: bool) -> None:
        info = self._client.publish(topic, json.dumps(payload, separators=(",", ":")), qos=1, retain=retain)
        # NO_CONN: queued (qos 1) and sent on reconnect; QUEUE_SIZE: the bounded queue is full.
        with self._lock:
            if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                if info.mid in self._early_acks:
                    self._early_acks.discard(info.mid)
                    self.published += 1
                else:
                    self._unacked.add(info.mid)
                self._queue_full = False
                return
            self.dropped += 1
            first, self._queue_full = not self._queue_full, True
        if first:
            log.warning("%s: queue full (%d); dropping messages until it drains", self.name, self.cfg.queue)
