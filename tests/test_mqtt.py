"""MQTT against a real Mosquitto broker: Home Assistant discovery, state, events, availability, and a
broker that goes away mid-run and comes back."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dfstream.config import MqttConfig, RunConfig
from dfstream.paths import SAMPLE_CLIP
from dfstream.stream.outputs.mqtt import MqttSink
from dfstream.stream.run import run_stream
from tests.mqtt_broker import Broker, Subscriber
from tests.rtsp import free_port

pytestmark = pytest.mark.mqtt


def test_discovery_state_and_events_survive_a_broker_restart(stream_models: Path, tmp_path: Path) -> None:
    broker = Broker(tmp_path)
    broker.start()
    sub = Subscriber(broker.port)
    cfg = RunConfig(sources=(str(SAMPLE_CLIP),), names=("desk",), models_dir=stream_models, window=False,
                    realtime=True, loop=True, duration_s=16, threshold=0.05,
                    mqtt=MqttConfig(url=broker.url, state_interval_s=0.2))
    result: dict[str, Any] = {}
    run = threading.Thread(target=lambda: result.update(zip(("summary", "errors"), run_stream(cfg), strict=True)))
    run.start()
    try:
        binary = sub.wait_for("homeassistant/binary_sensor/dfstream_desk/deepfake/config")[0]
        assert binary["state_topic"] == "dfstream/desk/state" and binary["availability_topic"] == "dfstream/status"
        assert binary["payload_on"] == "ON" and binary["unique_id"] == "dfstream_desk_deepfake"
        score = sub.wait_for("homeassistant/sensor/dfstream_desk/score/config")[0]
        assert score["value_template"] == "{{ value_json.score }}"
        assert "online" in sub.wait_for("dfstream/status")
        state = sub.wait_for("dfstream/desk/state")[-1]
        assert set(state) == {"faces", "label", "score", "deepfake", "ts"} and state["faces"] == 1
        start = sub.wait_for("dfstream/events")[0]
        assert start["state"] == "start" and start["source"] == "desk"

        broker.stop()  # mid-run: the stream goes on, paho reconnects with backoff
        time.sleep(2.0)
        restarted = time.monotonic()
        broker.start()
        sub.wait_for("dfstream/desk/state", since=restarted, timeout=30)
        sub.wait_for("homeassistant/sensor/dfstream_desk/score/config", since=restarted)  # announced again
    finally:
        run.join(timeout=120)
        deadline = time.monotonic() + 10  # the last word reaches the subscriber a moment after the run ends
        while time.monotonic() < deadline and sub.on("dfstream/status")[-1:] != ["offline"]:
            time.sleep(0.05)
        sub_messages = list(sub.messages)
        sub.close()
        broker.stop()
    assert not run.is_alive() and result["errors"] == []
    ends = [p for _, topic, p, _ in sub_messages if topic == "dfstream/events" and p["state"] == "end"]
    assert ends and ends[0]["id"] == start["id"]  # the event that started before the outage ended after it
    stats = result["summary"].outputs[f"mqtt {broker.url}"]
    assert stats["connects"] >= 2 and stats["dropped"] == 0
    assert [p for _, topic, p, _ in sub_messages if topic == "dfstream/status"][-1] == "offline"


def test_without_a_broker_messages_queue_to_the_bound_then_are_dropped_and_counted() -> None:
    sink = MqttSink(MqttConfig(url=f"mqtt://127.0.0.1:{free_port()}", queue=5, discovery=False))
    try:
        for i in range(20):
            sink.event({"type": "event", "state": "start", "id": str(i)})
        assert sink.stats()["published"] == 5 and sink.stats()["dropped"] == 15
    finally:
        sink.close(wait_s=0.1)
