"""Sources: files, an injected webcam, real FFmpeg RTSP refusal, back-pressure policies, reconnects."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from dfstream.stream.contract.exceptions import InputPathError
from dfstream.stream.contract.paths import SAMPLE_CLIP
from dfstream.stream.sources import (
    FileSource,
    LiveSource,
    Policy,
    RetryPolicy,
    SourceError,
    SourceOptions,
    ThreadedSource,
    open_source,
    redact,
)
from tests.rtsp import free_port  # a port nothing listens on once it is returned


class FakeCamera:
    """A capture that yields numbered frames as fast as asked, then fails after ``fail_after`` reads."""

    def __init__(self, fail_after: int | None = None, opened: bool = True, shape: tuple[int, ...] = (48, 64, 3)):
        self.reads = 0
        self.fail_after = fail_after
        self.opened = opened
        self.shape = shape
        self.released = False

    def isOpened(self) -> bool:
        return self.opened

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.fail_after is not None and self.reads >= self.fail_after:
            return False, None
        self.reads += 1
        time.sleep(0.002)
        return True, np.full(self.shape, self.reads % 256, np.uint8)

    def get(self, prop_id: int) -> float:
        return 30.0

    def release(self) -> None:
        self.released = True


def _drain(source: ThreadedSource, consumer_delay: float, timeout: float = 10.0) -> list[int]:
    """Consume until the source ends; returns the frame ids seen."""
    seen: list[int] = []
    wake = threading.Event()
    source.set_wake(wake)
    source.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        wake.clear()
        frame = source.poll()
        if frame is not None:
            seen.append(frame.frame_id)
            time.sleep(consumer_delay)
        elif source.exhausted:
            break
        else:
            wake.wait(0.05)
    source.close()
    return seen


def test_webcam_through_injected_factory_drops_oldest_for_a_slow_consumer() -> None:
    cams: list[FakeCamera] = []

    def factory() -> FakeCamera:  # the first camera works for 200 frames, later opens fail
        cams.append(FakeCamera(fail_after=200, opened=not cams))
        return cams[-1]

    source = open_source("0", SourceOptions(webcam_factory=factory, retry=RetryPolicy(attempts=1, base_s=0.01)))
    assert isinstance(source, LiveSource) and source.name == "webcam:0" and source.policy is Policy.DROP_OLDEST
    with pytest.raises(SourceError, match="webcam 0 went down; gave up after 1 attempts"):
        _drain(source, consumer_delay=0.01)
    assert source.frames_read == 200
    assert source.dropped > 50, "a consumer 5× slower than capture must see drops counted"
    assert cams[0].released


def test_webcam_that_does_not_open_is_a_one_line_error() -> None:
    options = SourceOptions(webcam_factory=lambda: FakeCamera(opened=False))
    with pytest.raises(SourceError, match=r"^source webcam:3: webcam 3 did not open$"):
        open_source("3", options)


def test_live_source_reconnects_and_reports_the_outage() -> None:
    opens = iter([FakeCamera(fail_after=5), FakeCamera(opened=False), FakeCamera(fail_after=5)])
    source = LiveSource("cam", lambda: next(opens), RetryPolicy(attempts=2, base_s=0.01), "camera")
    with pytest.raises(SourceError, match="gave up after 2 attempts"):
        _drain(source, consumer_delay=0.0)
    assert source.frames_read == 10
    first = source.statuses.popleft()
    assert first.attempts == 1 and first.up_at is not None and first.up_at >= first.down_at
    last = source.statuses.popleft()
    assert last.up_at is None and last.attempts == 2


def test_file_source_waits_and_never_drops() -> None:
    source = open_source(str(SAMPLE_CLIP))
    assert isinstance(source, FileSource) and source.policy is Policy.WAIT
    seen = _drain(source, consumer_delay=0.002)
    assert seen == list(range(source.frame_count)) and source.dropped == 0


def test_realtime_file_is_paced_at_its_fps(tmp_path: Path) -> None:
    source = open_source(str(SAMPLE_CLIP), SourceOptions(realtime=True))
    start = time.monotonic()
    seen = _drain(source, consumer_delay=0.0)
    elapsed = time.monotonic() - start
    assert len(seen) + source.dropped == source.frame_count, "every frame is either delivered or counted"
    assert elapsed >= (source.frame_count - 1) / source.fps * 0.95


def test_bad_files_fail_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(InputPathError, match="file not found"):
        open_source(str(tmp_path / "missing.mp4"))
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(InputPathError, match="file is empty"):
        open_source(str(tmp_path / "empty.mp4"))
    (tmp_path / "notes.mp4").write_text("not a video at all\n" * 50)
    with pytest.raises(SourceError, match="not a readable video"):
        open_source(str(tmp_path / "notes.mp4"))
    with pytest.raises(InputPathError, match="not a file"):
        open_source(str(tmp_path))


def test_unknown_source_kind_is_named() -> None:
    with pytest.raises(InputPathError, match=r"source 'http://cam/x': unknown kind; expected a video file path"):
        open_source("http://cam/x")


def test_truncated_file_ends_cleanly(tmp_path: Path) -> None:
    data = SAMPLE_CLIP.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    seen = _drain(open_source(str(cut)), consumer_delay=0.0)
    assert 0 < len(seen) < 240


def test_rtsp_url_that_refuses_gives_up_after_its_budget() -> None:
    url = f"rtsp://user:secret@127.0.0.1:{free_port()}/stream"
    options = SourceOptions(retry=RetryPolicy(attempts=2, base_s=0.05), open_timeout_s=2.0)
    source = open_source(url, options)
    assert "secret" not in source.name
    with pytest.raises(SourceError, match=r"RTSP stream did not open; gave up after 2 attempts"):
        _drain(source, consumer_delay=0.0, timeout=20.0)


def test_redact_hides_userinfo_and_query_whatever_they_hold() -> None:
    assert redact("rtsp://admin:pw@10.0.0.2:554/s") == "rtsp://***@10.0.0.2:554/s"
    assert redact("rtsp://10.0.0.2/s") == "rtsp://10.0.0.2/s"
    assert redact("rtsp://admin:p@ss/w?rd@10.0.0.2:554/s") == "rtsp://***@10.0.0.2:554/s"  # unescaped / ? @
    assert redact("rtsp://10.0.0.2/s?user=admin&password=pw#x") == "rtsp://10.0.0.2/s"
    assert redact("mqtts://u:pw@broker:8883") == "mqtts://***@broker:8883"
    assert redact("/srv/video/lobby.mp4") == "/srv/video/lobby.mp4" and redact("0") == "0"


def test_a_negative_webcam_index_is_one_line_not_a_missing_file() -> None:
    from dfstream.stream.contract.exceptions import InputPathError

    with pytest.raises(InputPathError, match=r"source '-1': a webcam index is 0 or more"):
        open_source("-1")


def test_a_missing_real_webcam_is_one_line_on_stderr() -> None:
    """OpenCV's own "can't open camera by index" lines stay off the screen; --debug shows them."""
    import subprocess
    import sys

    index = "37"  # no machine running the tests has 38 cameras
    quiet = subprocess.run([sys.executable, "-m", "dfstream.cli", "run", "--source", index, "--no-window"],
                           capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 2
    assert quiet.stderr.strip().splitlines() == [f"dfstream: error: source webcam:{index}: webcam {index} did not open"]
