"""Deepfake events: the rule, a real file run with a low threshold (snapshot, clip with pre-roll,
index), retention, a full disk and an unwritable folder."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from dfstream.stream.contract.paths import SAMPLE_CLIP
from dfstream.stream.event_store import INDEX, prune, read_index
from dfstream.stream.events import MISSING_FRAMES_TO_END, EventDetector
from dfstream.stream.local_run import run_stream
from dfstream.stream.outputs.settings import EventsConfig
from dfstream.stream.records import ScoreRecord
from dfstream.stream.run_config import RunConfig
from tests.conftest import read_frames

PRE_ROLL_S, POST_ROLL_S = 1.0, 0.5


def _record(frame: int, label: str, track: int = 1, score: float = 0.7) -> ScoreRecord:
    return ScoreRecord(100.0 + frame / 30, "cam", frame, track, (10, 10, 50, 50), 0.6, None, score, label, {})  # type: ignore[arg-type]


def test_an_event_spans_the_fake_label_and_ends_when_it_leaves_or_the_track_goes() -> None:
    detector = EventDetector()
    labels = ["real", "fake", "fake", "uncertain", "fake"]
    seen = [(i, t.state) for i, lab in enumerate(labels) for t in detector.update("cam", i, 0.0, [_record(i, lab)])]
    assert seen == [(1, "start"), (3, "end"), (4, "start")]
    ended = []
    for i in range(5, 5 + MISSING_FRAMES_TO_END):  # the track no longer appears on its source
        ended += detector.update("cam", i, 0.0, [])
    assert [(t.state, t.event.end_frame, t.event.frames) for t in ended] == [("end", 4 + MISSING_FRAMES_TO_END, 1)]
    assert detector.update("other", 0, 0.0, [_record(0, "fake", track=1)])[0].event.source == "cam"  # record's own


@pytest.fixture(scope="module")
def event_run(stream_models: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("events")
    cfg = RunConfig(sources=(str(SAMPLE_CLIP),), models_dir=stream_models, out=str(out / "s.jsonl"), window=False,
                    threshold=0.05, events=EventsConfig(dir=out / "ev", pre_roll_s=PRE_ROLL_S, post_roll_s=POST_ROLL_S))
    _, errors = run_stream(cfg)
    assert errors == []
    return out / "s.jsonl", out / "ev"


def test_a_low_threshold_run_writes_events_with_snapshot_and_clip(event_run: tuple[Path, Path]) -> None:
    jsonl, folder = event_run
    events = read_index(folder)
    assert events, "threshold 0.05 must flag the sample clip"
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    published = [x for x in lines if x["type"] == "event"]
    for e in events:  # the alert first, with no file yet; the files follow as an update; then the end
        mine = [x for x in published if x["id"] == e["id"]]
        assert [x["state"] for x in mine] == ["start", "update", "end"]
        assert mine[0]["snapshot"] is None and mine[1]["snapshot"] == e["snapshot"]
    for e in events:
        assert e["state"] == "end" and e["clip_status"] == "done" and e["frames"] >= 1
        assert e["end_frame"] >= e["start_frame"] and 0 <= e["mean_score"] <= e["peak_score"] <= 1
        assert (folder / e["snapshot"]).stat().st_size > 1000
        assert e["scores"]["frame_model"] is not None


def test_faces_on_disk_are_readable_by_this_user_only(event_run: tuple[Path, Path]) -> None:
    _, folder = event_run
    assert folder.stat().st_mode & 0o777 == 0o700
    files = [p for p in folder.iterdir() if p.is_file()]
    assert {p.suffix for p in files} >= {".jpg", ".mp4", ".jsonl"}
    assert {p.name: p.stat().st_mode & 0o777 for p in files} == {p.name: 0o600 for p in files}


def test_the_clip_plays_holds_the_pre_roll_and_its_length_matches(event_run: tuple[Path, Path]) -> None:
    _, folder = event_run
    event = read_index(folder)[-1]  # the first event
    with av.open(str(folder / event["clip"])) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
        fps = float(stream.average_rate)
        duration = float(container.duration) / av.time_base
    pre = round(PRE_ROLL_S * 30)
    first = max(0, event["start_frame"] - pre)
    last = min(239, event["end_frame"] + round(POST_ROLL_S * 30))
    assert len(frames) == last - first + 1
    assert duration == pytest.approx(len(frames) / fps, abs=1.5 / fps)
    source = read_frames(SAMPLE_CLIP, last + 1)
    # the clip's first picture is the source frame `pre` frames before the event (annotations aside)
    diffs = [float(np.mean(np.abs(frames[0].astype(int) - source[i].astype(int)))) for i in range(first, first + 10)]
    assert int(np.argmin(diffs)) == 0


def test_retention_removes_whole_events_oldest_first(tmp_path: Path) -> None:
    now = time.time()
    lines = []
    for i, age_days in enumerate((30, 2, 1, 0)):
        for ext in ("jpg", "mp4"):
            (tmp_path / f"e{i}.{ext}").write_bytes(b"x" * 1000)
        lines.append({"type": "event", "state": "end", "id": f"e{i}", "start_ts": now - age_days * 86400,
                      "snapshot": f"e{i}.jpg", "clip": f"e{i}.mp4"})
    (tmp_path / INDEX).write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert prune(tmp_path, days=7, gb=1.0) == ["e0"]  # too old
    assert prune(tmp_path, days=7, gb=4500 / 1e9) == ["e1"]  # 3 events of 2,000 bytes: over 4,500 bytes
    assert [e["id"] for e in read_index(tmp_path)] == ["e3", "e2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([INDEX, "e2.jpg", "e2.mp4", "e3.jpg", "e3.mp4"])


def _cli(*args: str, file_limit: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    return subprocess.run([sys.executable, "-m", "dfstream.cli", "run", "--no-window", *args], capture_output=True,
                          text=True, timeout=600, preexec_fn=limit if file_limit else None)


def test_a_full_disk_stops_clips_with_a_status_record_and_the_stream_goes_on(
    stream_models: Path, tmp_path: Path
) -> None:
    out = tmp_path / "s.jsonl"
    result = _cli("--models", str(stream_models), "--events-dir", str(tmp_path / "ev"), "--threshold", "0.05",
                  "--out", str(out), file_limit=150_000)  # the records and the snapshot fit, a clip does not
    assert result.returncode == 0, result.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert sum(x["type"] == "score" for x in lines) == 240  # every frame still scored
    status = [x for x in lines if x["type"] == "status" and x["source"] == "events"]
    assert len(status) == 1 and "event clips stopped" in status[0]["reason"] and "too large" in status[0]["reason"]
    ends = [x for x in lines if x["type"] == "event" and x["state"] == "end"]
    assert ends and ends[0]["clip_status"].startswith("event clips stopped")


def test_an_unwritable_events_folder_is_refused_before_models_load(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = _cli("--events-dir", str(tmp_path / "file" / "ev"))
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"dfstream: error: events folder {tmp_path / 'file' / 'ev'}: cannot write")
    assert "model frame_cnn" not in result.stderr


def test_the_index_stays_whole_lines_when_the_disk_fills(tmp_path: Path) -> None:
    """Writes past a file-size limit fail with EFBIG as on a full disk; a line either lands whole or not."""
    index = tmp_path / INDEX
    script = (
        "import resource, signal, sys\n"
        "from pathlib import Path\n"
        "from dfstream.stream.event_store import append_line\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))\n"
        "ok = [append_line(Path(sys.argv[1]), '{\"type\":\"event\",\"id\":\"e%03d\",\"pad\":\"%s\"}' % (i, 'x' * 60))"
        " for i in range(40)]\n"
        "print(sum(ok), ok.index(False))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(index)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    written, first_failure = map(int, done.stdout.split())
    assert 0 < written == first_failure < 40  # every line up to the limit, none after
    raw = index.read_bytes()
    assert raw.endswith(b"\n") and len(raw) <= 1000
    assert [json.loads(line)["id"] for line in raw.decode().splitlines()] == [f"e{i:03d}" for i in range(written)]


def test_a_killed_run_leaves_no_open_event_and_no_unnamed_file(stream_models: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ev"
    run = subprocess.Popen([sys.executable, "-m", "dfstream.cli", "run", "--no-window", "--models", str(stream_models),
                            "--events-dir", str(folder), "--threshold", "0.05", "--realtime", "--loop"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(e.get("snapshot") for e in read_index(folder)):
            time.sleep(0.1)  # an event has started and its snapshot is written
        assert any(e["state"] != "end" for e in read_index(folder)), "no open event to interrupt"
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
    with (folder / INDEX).open("a") as fh:
        fh.write('{"type":"event","state":"upd')  # as if killed mid-line
    (folder / "unnamed.jpg").write_bytes(b"x")  # as if killed between a file and its line
    again = _cli("--models", str(stream_models), "--events-dir", str(folder), "--duration", "1")
    assert again.returncode == 0, again.stderr
    lines = (folder / INDEX).read_text().splitlines()
    assert all(json.loads(line) for line in lines)  # the cut line is gone, nothing glued to it
    events = read_index(folder)
    assert all(e["state"] == "end" for e in events)
    interrupted = [e for e in events if e.get("end_reason") == "interrupted"]
    assert interrupted and all(e["clip_status"] in ("interrupted", "done", "none") for e in interrupted)
    named = {e.get(k) for e in events for k in ("snapshot", "clip")}
    assert {p.name for p in folder.iterdir() if p.suffix in (".jpg", ".mp4")} <= named


def test_events_are_detected_with_no_output_configured(stream_models: Path, tmp_path: Path) -> None:
    """Events are a stage of every run: the records file (and the page) list them with no folder,
    webhook or broker set."""
    out = tmp_path / "s.jsonl"
    result = _cli("--models", str(stream_models), "--threshold", "0.05", "--out", str(out))
    assert result.returncode == 0, result.stderr
    events = [json.loads(x) for x in out.read_text().splitlines() if '"type":"event"' in x]
    assert {e["state"] for e in events} == {"start", "end"} and all(e["snapshot"] is None for e in events)


def test_a_restarted_worker_ends_its_predecessors_open_events_with_the_reason(tmp_path: Path) -> None:
    """The Ray camera worker passes 'worker restarted' when Ray rebuilt it (``stream/cluster/worker.py``)."""
    from dfstream.stream.event_store import EventSink

    folder = tmp_path / "ev"
    folder.mkdir()
    (folder / "e1.jpg").write_bytes(b"x")
    now = time.time()
    (folder / INDEX).write_text(json.dumps({"type": "event", "state": "update", "id": "e1", "start_ts": now,
                                            "snapshot": "e1.jpg", "clip": None, "clip_status": "none"}) + "\n")
    sink = EventSink(EventsConfig(dir=folder), lambda _: 30.0, interrupted_reason="worker restarted")
    sink.close()
    [event] = read_index(folder)
    assert event["state"] == "end" and event["end_reason"] == "worker restarted" and event["end_ts"] == now
    assert (folder / "e1.jpg").exists()  # named by its event: kept
