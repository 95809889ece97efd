"""A real RTSP server that dies, comes back, freezes, or never answers (GStreamer rtsp-server, loopback)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dfstream.stream.contract.paths import SAMPLE_CLIP
from dfstream.stream.local_run import run_stream
from dfstream.stream.run_config import RunConfig
from dfstream.stream.sources import RetryPolicy, SourceError, SourceOptions, open_source
from tests.jsonl import lines_of
from tests.rtsp import RtspServer, free_port, write_frames

pytestmark = pytest.mark.rtsp


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_frames(SAMPLE_CLIP, tmp_path_factory.mktemp("rtsp_frames"))


@pytest.fixture
def server(frames: str) -> Iterator[RtspServer]:
    srv = RtspServer(frames)
    srv.start()
    yield srv
    srv.thaw() if srv.proc is not None else None
    srv.stop()


def _run_in_thread(cfg: RunConfig, options: SourceOptions) -> tuple[threading.Thread, threading.Event, dict]:
    stop = threading.Event()
    result: dict = {}

    def body() -> None:
        result["summary"], result["errors"] = run_stream(cfg, stop, options)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, stop, result


def _wait_for(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_server_killed_and_restarted_five_times(server: RtspServer, stream_models: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.jsonl"
    cfg = RunConfig(sources=(server.url,), models_dir=stream_models, out=str(out), retry=None)
    options = SourceOptions(retry=RetryPolicy(attempts=None, base_s=0.25, cap_s=2.0), open_timeout_s=3.0,
                            read_timeout_s=2.0)
    thread, stop, result = _run_in_thread(cfg, options)
    scored_before: list[int] = []
    try:
        for _ in range(5):
            assert _wait_for(lambda: out.exists() and out.stat().st_size > 0 and
                             sum(r["type"] == "score" for r in lines_of(out)) > (scored_before[-1] if scored_before
                                                                                else 0) + 10, 30.0)
            scored_before.append(sum(r["type"] == "score" for r in lines_of(out)))
            server.stop()
            time.sleep(1.0)
            server.start()
        assert _wait_for(lambda: sum(r["type"] == "score" for r in lines_of(out)) > scored_before[-1] + 10, 30.0)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive() and result["errors"] == []
    records = lines_of(out)
    statuses = [r for r in records if r["type"] == "status"]
    assert len(statuses) == 5, statuses
    assert all(s["up_at"] is not None and s["up_at"] > s["down_at"] and s["attempts"] >= 1 for s in statuses)
    scores = [r for r in records if r["type"] == "score"]
    for s in statuses:
        assert any(r["ts"] > s["up_at"] for r in scores), "scores continue after every outage"
    assert result["summary"].to_dict()["sources"][server.url]["outages"] == 5


def test_frozen_server_is_detected_by_the_read_timeout(server: RtspServer) -> None:
    options = SourceOptions(retry=RetryPolicy(attempts=None, base_s=0.25, cap_s=1.0), open_timeout_s=2.0,
                            read_timeout_s=1.5)
    source = open_source(server.url, options)
    source.start()
    try:
        assert _wait_for(lambda: source.frames_read > 10, 20.0)
        server.freeze()
        time.sleep(2.0)  # frames already in the socket buffers still arrive
        frozen_at = source.frames_read
        time.sleep(3.0)
        assert source.frames_read - frozen_at < 3, "no frames while frozen"
        server.thaw()
        assert _wait_for(lambda: bool(source.statuses), 30.0), "the stall became an outage record"
        assert _wait_for(lambda: source.frames_read > frozen_at + 10, 30.0), "frames again after thawing"
    finally:
        source.close()
    status = source.statuses[0]
    assert status.reason == "read failed or timed out" and status.up_at is not None


def test_url_that_never_answers_gives_up_after_its_budget() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", free_port()))
    silent.listen(8)  # accepts TCP, never speaks RTSP
    port = silent.getsockname()[1]
    options = SourceOptions(retry=RetryPolicy(attempts=2, base_s=0.2), open_timeout_s=1.0, read_timeout_s=1.0)
    source = open_source(f"rtsp://127.0.0.1:{port}/face", options)
    start = time.monotonic()
    source.start()
    try:
        assert _wait_for(lambda: source.exhausted or _raises(source), 30.0)
        with pytest.raises(SourceError, match="RTSP stream did not open; gave up after 2 attempts"):
            source.poll()
    finally:
        source.close()
        silent.close()
    assert time.monotonic() - start < 20.0, "the open timeout bounds each attempt"


def _raises(source) -> bool:  # type: ignore[no-untyped-def]
    try:
        source.poll()
    except SourceError:
        return True
    return False
