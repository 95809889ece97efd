"""MQTT with Home Assistant discovery (paho-mqtt): each source's state, each event, availability.

Topics under the prefix (``dfstream`` by default):

- ``<prefix>/status``: ``online`` / ``offline`` (retained; ``offline`` is the last will);
- ``<prefix>/<source>/state``: ``{"faces", "label", "score", "deepfake": "ON"|"OFF", "ts"}``
  (retained), at most every ``state_interval_s`` and at once when the label changes;
- ``<prefix>/events``: every event record (start and end).

Home Assistant discovery (``homeassistant/…/config``, retained, sent again on every connect): per
source a binary sensor "Deepfake detected" (entity ``binary_sensor.dfstream_<source>_deepfake``) and a
sensor "Deepfake score" (``sensor.dfstream_<source>_score``). paho's own loop thread
reconnects with backoff; while the broker is away, messages queue up to ``queue`` and the rest are
dropped and counted.
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

from dfstream.config import MqttConfig
from dfstream.exceptions import InputPathError
from dfstream.stream.records import ScoreRecord
from dfstream.stream.sources import redact
from dfstream.stream.sources.base import display_name
from dfstream.stream.types import Frame

log = logging.getLogger(__name__)

LABEL_RANK = {"fake": 3, "uncertain": 2, "real": 1}


def topic_name(source: str) -> str:
    """A source's name as one MQTT topic level and HA object id: letters, digits, '_' and '-'."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", display_name(source)).strip("_") or "source"


def discovery_messages(cfg: MqttConfig, source: str) -> list[tuple[str, dict[str, Any]]]:
    """(topic, payload) of the two Home Assistant discovery configs for ``source``."""
    name = topic_name(source)
    device = {"identifiers": [f"dfstream_{name}"], "name": f"dfstream {display_name(source)}",
              "manufacturer": "dfstream", "model": "streaming deepfake detector"}
    common = {"state_topic": f"{cfg.prefix}/{name}/state", "availability_topic": f"{cfg.prefix}/status",
              "device": device}
    binary = {**common, "name": "Deepfake detected", "unique_id": f"dfstream_{name}_deepfake",
              "object_id": f"dfstream_{name}_deepfake",
              "device_class": "problem", "value_template": "{{ value_json.deepfake }}",
              "payload_on": "ON", "payload_off": "OFF"}
    score = {**common, "name": "Deepfake score", "unique_id": f"dfstream_{name}_score",
             "object_id": f"dfstream_{name}_score",
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


def _pending(info: mqtt.MQTTMessageInfo) -> bool:
    """Queued or in flight (paho raises instead of answering while it is disconnected)."""
    if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
        return False
    try:
        return not info.is_published()
    except (RuntimeError, ValueError):
        return True


class MqttSink:
    def __init__(self, cfg: MqttConfig, sources: Sequence[str] = ()) -> None:
        parts = urlsplit(cfg.url)
        if not parts.hostname:
            raise InputPathError(f"mqtt {redact(cfg.url)}: no host")
        self.cfg = cfg
        self.name = f"mqtt {redact(cfg.url)}"
        self.published = self.dropped = self.connects = 0
        self._sources: set[str] = set()
        self._last: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._events: list[mqtt.MQTTMessageInfo] = []
        """Event messages not yet acknowledged (close waits for them)."""
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dfstream-{os.getpid()}-{id(self):x}")
        if parts.username:
            client.username_pw_set(unquote(parts.username), unquote(parts.password or "") or None)
        if parts.scheme == "mqtts":
            client.tls_set()
        client.will_set(f"{cfg.prefix}/status", "offline", qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_queued_messages_set(cfg.queue)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        self._client = client
        for source in sources:
            self._sources.add(source)
        client.connect_async(parts.hostname, parts.port or (8883 if parts.scheme == "mqtts" else 1883), keepalive=30)
        client.loop_start()

    # -- paho callbacks (its loop thread) -------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.warning("%s: connection refused (%s)", self.name, reason)
            return
        self.connects += 1
        self._connected.set()
        log.info("%s: connected", self.name)
        client.publish(f"{self.cfg.prefix}/status", "online", qos=1, retain=True)
        with self._lock:
            sources = sorted(self._sources)
        for source in sources:
            self._announce(source)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._connected.clear()
        log.warning("%s: disconnected (%s); reconnecting with backoff", self.name, reason)

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
        self._publish(f"{self.cfg.prefix}/{topic_name(source)}/state", state, retain=True)

    def event(self, data: dict[str, Any]) -> None:
        if data.get("type") == "event":
            info = self._publish(f"{self.cfg.prefix}/events", data, retain=False)
            with self._lock:
                self._events = [i for i in self._events if _pending(i)] + [info]

    def stats(self) -> dict[str, int]:
        return {"published": self.published, "dropped": self.dropped, "connects": self.connects}

    def close(self, wait_s: float = 5.0) -> None:
        """Give queued events up to ``wait_s`` to reach the broker, then go offline and stop."""
        deadline = time.monotonic() + wait_s
        with self._lock:
            pending = list(self._events)
        for info in pending:
            if not _pending(info):
                continue
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                pass
        if self._connected.is_set():
            self._client.publish(f"{self.cfg.prefix}/status", "offline", qos=1, retain=True).wait_for_publish(2.0)
        self._client.disconnect()
        self._client.loop_stop()

    def _announce(self, source: str) -> None:
        if self.cfg.discovery:
            for topic, payload in discovery_messages(self.cfg, source):
                self._publish(topic, payload, retain=True)

    def _publish(self, topic: str, payload: dict[str, Any], retain: bool) -> mqtt.MQTTMessageInfo:
        info = self._client.publish(topic, json.dumps(payload, separators=(",", ":")), qos=1, retain=retain)
        # NO_CONN: queued (qos 1) and sent on reconnect; QUEUE_SIZE: the bounded queue is full.
        if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            self.published += 1
        else:
            self.dropped += 1
        return info
