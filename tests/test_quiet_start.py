"""A run's first screen: one line per model and per source, no MediaPipe chatter unless --debug."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from dfstream.stream.native_logs import QuietHold, is_chatter, native_quiet

GLOG_LINE = "W0000 00:00:1795929179.745885    4003 inference_feedback_manager.cc:114] Feedback manager requires...\n"


def _run(*args: str, run_args: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "dfstream.cli", *args, "run", "--duration", "2", "--no-window", *run_args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_native_chatter_is_dropped_and_everything_else_kept(capfd: pytest.CaptureFixture[str]) -> None:
    with native_quiet():
        os.write(2, GLOG_LINE.encode())
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"E0000 00:00:1.0 1 calculator.cc:1] a real native error\n")
        print("a python line", file=sys.stderr)
    err = capfd.readouterr().err
    assert sorted(err.splitlines()) == ["E0000 00:00:1.0 1 calculator.cc:1] a real native error", "a python line"]


def test_a_hold_covers_other_threads_until_released(capfd: pytest.CaptureFixture[str]) -> None:
    hold = QuietHold(max_s=60)
    thread = threading.Thread(target=lambda: os.write(2, GLOG_LINE.encode() + b"kept\n"))
    thread.start()
    thread.join()
    hold.release()
    hold.release()  # idempotent
    assert capfd.readouterr().err == "kept\n"


@pytest.mark.parametrize("run_args", [(), ("--realtime",)], ids=["file", "paced"])
def test_first_screen_is_one_line_per_model_and_source(run_args: tuple[str, ...]) -> None:
    """Paced, the face stage swaps in a graph for one face and starts its detector mid-run: quiet too."""
    result = _run(run_args=run_args)
    assert result.returncode == 0, result.stderr
    start = result.stderr.splitlines()  # the summary goes to stdout
    assert result.stdout.startswith("dfstream summary")
    assert not [x for x in start if is_chatter(x)], start
    assert [x.split(" ", 1)[1].split(":")[0] for x in start] == [
        "model frame_cnn", "model clip_encoder", "model clip_head", "source sample_face.mp4"
    ]


def test_debug_shows_the_native_lines() -> None:
    result = _run("--debug")
    assert result.returncode == 0, result.stderr
    assert any(is_chatter(x) for x in result.stderr.splitlines())
