"""MQTT against a real Mosquitto broker: Home Assistant discovery, state, events, availability, and a
broker that goes away mid-run and comes back."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dfstream.stream.contract.exceptions import InputPathError
from dfstream.stream.contract.paths import SAMPLE_CLIP
from dfstream.stream.contract.types import Frame
from dfstream.stream.local_run import run_stream
from dfstream.stream.outputs.mqtt import MqttSink
from dfstream.stream.outputs.settings import MqttConfig
from dfstream.stream.records import ScoreRecord
from dfstream.stream.run_config import RunConfig
from tests.mqtt_broker import Broker, Subscriber
from tests.rtsp import free_port

pytestmark = pytest.mark.mqtt


def _record(label: str) -> ScoreRecord:
    return ScoreRecord(ts=time.time(), source="cam", frame_id=0, track_id=1, bbox=(0, 0, 4, 4), score_frame=0.5,
                       score_clip=None, score=0.9 if label == "fake" else 0.1, label=label,  # type: ignore[arg-type]
                       latency_ms={})


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
        assert binary["state_topic"] == "dfstream/desk/state"
        assert binary["availability"] == [{"topic": "dfstream/status"}, {"topic": "dfstream/desk/availability"}]
        assert binary["payload_on"] == "ON" and binary["unique_id"] == "dfstream_desk_deepfake"
        assert "online" in sub.wait_for("dfstream/desk/availability")
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
    assert stats["connects"] >= 2 and stats["dropped"] == 0 and stats["queued"] == 0
    assert [p for _, topic, p, _ in sub_messages if topic == "dfstream/status"][-1] == "offline"


def test_a_broker_that_never_answers_is_a_warning_and_nothing_counts_as_published(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        sink = MqttSink(MqttConfig(url=f"mqtt://127.0.0.1:{free_port()}", queue=5, discovery=False))
        try:
            for i in range(20):
                sink.event({"type": "event", "state": "start", "id": str(i)})
            assert sink.stats() == {"published": 0, "dropped": 15, "queued": 5, "connects": 0}
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and "broker unreachable" not in caplog.text:
                time.sleep(0.05)
        finally:
            sink.close(wait_s=0.1)
    assert sink.stats() == {"published": 0, "dropped": 20, "queued": 0, "connects": 0}
    assert "broker unreachable" in caplog.text and "5 message(s) never reached the broker" in caplog.text


def test_states_never_crowd_events_out_while_the_broker_is_away(tmp_path: Path) -> None:
    """The broker comes up 4 s into the run: every event queued meanwhile arrives; states kept only
    their latest value."""
    port = free_port()
    sink = MqttSink(MqttConfig(url=f"mqtt://127.0.0.1:{port}", queue=10, discovery=False),
                    ["cam"])
    frame = Frame("cam", 0, time.time(), time.perf_counter_ns(), np.zeros((4, 4, 3), np.uint8))
    broker = Broker(tmp_path, port=port)
    try:
        for i in range(200):  # label changes on every frame: 200 states while nobody listens
            sink.write(frame, [_record("fake" if i % 2 else "real")], "")
            if i % 40 == 0:
                sink.event({"type": "event", "state": "start", "id": f"e{i}"})
        assert sink.stats() == {"published": 0, "dropped": 0, "queued": 5, "connects": 0}  # states took no place
        time.sleep(4.0)
        broker.start()
        deadline = time.monotonic() + 60  # paho's reconnect backoff has grown while the broker was away
        while time.monotonic() < deadline and sink.stats()["published"] < 6:
            time.sleep(0.1)
        # the broker acknowledged the 5 events and the one state kept (the latest), nothing else
        assert sink.stats() == {"published": 6, "dropped": 0, "queued": 0, "connects": 1}
        sub = Subscriber(broker.port)
        state = sub.wait_for("dfstream/cam/state", timeout=30)  # retained: whoever subscribes gets it
        assert len(state) == 1 and state[0]["label"] == "fake"  # frame 199's label
        sub.close()
    finally:
        sink.close(wait_s=5.0)
        broker.stop()


def test_discovery_follows_home_assistant_today_and_calls_share_one_device() -> None:
    from dfstream.stream.outputs.mqtt import check_topic_names, discovery_messages

    cfg = MqttConfig(url="mqtt://h:1883")
    for topic, payload in discovery_messages(cfg, "front.door"):
        assert "object_id" not in payload  # removed in Home Assistant 2026.4
        component = topic.split("/")[1]
        assert payload["default_entity_id"] == f"{component}.{payload['unique_id']}"
        assert payload["origin"]["name"] == "dfstream" and payload["availability_mode"] == "all"
        assert payload["device"]["identifiers"] == ["dfstream_front_door"]
    first, second = discovery_messages(cfg, "peer:1a2b"), discovery_messages(cfg, "peer:9f8e")
    assert first == second  # one device for every browser call, not one left behind per call
    assert first[0][1]["device"]["identifiers"] == ["dfstream_webrtc"]
    with pytest.raises(InputPathError, match=r"sources 'front\.door' and 'front_door' both publish as 'front_door'"):
        check_topic_names(["front.door", "front_door"])
