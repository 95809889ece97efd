"""``dfstream run --engine ray`` on a real 3-node Ray cluster on loopback (marked ``ray``; bounded)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dfstream.stream.contract.paths import BUNDLED_MODELS, SAMPLE_CLIP
from dfstream.stream.run_config import RunConfig
from tests.jsonl import lines_of
from tests.ray_cluster import LocalCluster, start_cluster

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[LocalCluster]:
    pytest.importorskip("ray", reason="the dfstream[ray] extra is not installed")
    yield from start_cluster()


def _scores(path: Path) -> dict[tuple[str, int, int], dict[str, Any]]:
    return {(r["source"], r["frame_id"], r["track_id"]): r for r in lines_of(path) if r["type"] == "score"}


def _config(tmp_path: Path, **fields: Any) -> RunConfig:
    base: dict[str, Any] = {"sources": (str(SAMPLE_CLIP),), "models_dir": BUNDLED_MODELS, "window": False,
                            "out": str(tmp_path / "ray.jsonl"), "engine": "ray"}
    return RunConfig(**(base | fields))


def _start(config: RunConfig, metrics_port: int | None = None) -> tuple[Any, threading.Thread, threading.Event,
                                                                         dict[str, Any]]:
    """A cluster run on its own thread (the test acts on the cluster meanwhile)."""
    from dfstream.stream.cluster.driver import ClusterRun
    from dfstream.stream.cluster.placement import ClusterOptions
    from dfstream.stream.cluster.ray_run import cameras_of, driver_sinks, worker_settings
    from dfstream.stream.prometheus import MetricsServer

    cameras = cameras_of(config)
    run = ClusterRun(worker_settings(config), ClusterOptions(), driver_sinks(config, cameras))
    run.start(cameras)
    stop = threading.Event()
    out: dict[str, Any] = {}
    metrics = None if metrics_port is None else MetricsServer(metrics_port)
    thread = threading.Thread(target=lambda: out.update(summary=run.run(config.duration_s, stop, metrics=metrics)),
                              daemon=True)
    thread.start()
    return run, thread, stop, out


def _wait_for(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def test_scores_equal_the_in_process_pipeline(ray_cluster: LocalCluster, tmp_path: Path) -> None:
    from dfstream.stream.cluster.ray_run import run_cluster
    from dfstream.stream.local_run import run_stream

    local = _config(tmp_path, out=str(tmp_path / "local.jsonl"), engine="local")
    run_stream(local)
    summary, errors = run_cluster(_config(tmp_path))
    assert errors == []
    a, b = _scores(tmp_path / "local.jsonl"), _scores(tmp_path / "ray.jsonl")
    assert len(a) >= 200 and set(a) == set(b)
    for key in ("score_frame", "score_clip", "score"):
        diff = max(abs((a[k][key] or 0.0) - (b[k][key] or 0.0)) for k in a)
        assert diff <= 1e-4, (key, diff)
    assert [a[k]["label"] for k in sorted(a)] == [b[k]["label"] for k in sorted(b)]
    assert summary.sources[str(SAMPLE_CLIP)].frames == 240


def test_a_killed_scorer_falls_back_to_cpu_then_returns(ray_cluster: LocalCluster, tmp_path: Path) -> None:
    import ray

    from dfstream.stream.cluster.placement import SCORER_PREFIX

    out = tmp_path / "ray.jsonl"
    port = _free_port()
    run, thread, stop, _ = _start(_config(tmp_path, realtime=True, loop=True), metrics_port=port)
    try:
        _wait_for(lambda: sum(r["type"] == "score" for r in lines_of(out)) >= 20, 120, "first scores")
        names = [n["name"] for n in ray.util.list_named_actors(all_namespaces=True)
                 if n["name"].startswith(SCORER_PREFIX)]
        assert len(names) == 1  # one per GPU: the fake-GPU node's
        ray.kill(run.scorers[0].handle, no_restart=False)  # Ray restarts it (max_restarts=-1)
        _wait_for(lambda: any("scorer back" in r.get("reason", "") for r in lines_of(out)), 120, "the scorer's return")
        seen = len(lines_of(out))
        _wait_for(lambda: sum(r["type"] == "score" for r in lines_of(out)[seen:]) >= 10, 60, "scores after return")
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        stop.set()
        thread.join(60)
    records = lines_of(out)
    statuses = [r for r in records if r["type"] == "status"]
    assert "scorer unreachable" in statuses[0]["reason"] and statuses[0]["up_at"] is None
    back = next(i for i, r in enumerate(records) if "scorer back" in r.get("reason", ""))
    down = next(i for i, r in enumerate(records) if "scorer unreachable" in r.get("reason", ""))
    assert any(r["type"] == "score" for r in records[down:back])  # scored on the worker's CPU meanwhile
    assert not thread.is_alive()
    source = str(SAMPLE_CLIP)
    assert f'dfstream_camera_scorer_fallback{{source="{source}"}} 0.0' in metrics  # back on the scorer
    assert f'dfstream_camera_worker_node{{node="{run.cameras[source].node[:12]}",source="{source}"}} 1.0' in metrics
    frames = re.search(rf'dfstream_frames_total{{source="{re.escape(source)}"}} (\d+)', metrics)
    assert frames is not None and int(frames.group(1)) >= 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_twenty_cameras_all_score_and_a_broken_one_fails_alone(ray_cluster: LocalCluster, tmp_path: Path) -> None:
    out = tmp_path / "ray.jsonl"
    copies = []
    for i in range(20):
        copies.append(tmp_path / f"cam{i:02d}.mp4")
        shutil.copy(SAMPLE_CLIP, copies[-1])
    names = set(map(str, copies))
    sources = (*sorted(names), str(tmp_path / "missing.mp4"))
    run, thread, stop, result = _start(_config(tmp_path, sources=sources, realtime=True, loop=True))

    def stamps() -> dict[str, list[float]]:
        seen: dict[str, list[float]] = {}
        for r in lines_of(out):
            if r["type"] == "score":
                seen.setdefault(r["source"], []).append(r["ts"])
        return seen

    try:
        _wait_for(lambda: len(stamps()) == 20 and min(map(len, stamps().values())) >= 8, 280,
                  "8 scored frames from each of the 20 cameras")
    finally:
        stop.set()
        thread.join(90)
    assert set(stamps()) == names  # every camera scored; the broken one nothing
    assert run.errors == [f"{tmp_path / 'missing.mp4'}: " + run.cameras[str(tmp_path / "missing.mp4")].error]
    assert "missing.mp4" in run.errors[0] and len(run.errors) == 1
    rates = np.array([(len(t) - 1) / (max(t) - min(t)) for t in stamps().values()])
    assert rates.min() >= 0.2 * np.median(rates), rates  # none starves: each over its own span
    assert result["summary"].sources[str(tmp_path / "missing.mp4")].error


def test_a_removed_node_moves_its_camera(ray_cluster: LocalCluster, tmp_path: Path) -> None:
    out = tmp_path / "ray.jsonl"
    run, thread, stop, _ = _start(_config(tmp_path, realtime=True, loop=True))
    name = str(SAMPLE_CLIP)
    try:
        _wait_for(lambda: sum(r["type"] == "score" for r in lines_of(out)) >= 20, 120, "first scores")
        first = run.cameras[name].node
        ray_cluster.replace(ray_cluster.node_of(first))
        _wait_for(lambda: any("restarted on node" in r.get("reason", "") for r in lines_of(out)), 180,
                  "the camera's restart")
        seen = len(lines_of(out))
        _wait_for(lambda: sum(r["type"] == "score" for r in lines_of(out)[seen:]) >= 10, 120, "scores after the move")
        assert run.cameras[name].node != first
    finally:
        stop.set()
        thread.join(60)
    restarted = [r for r in lines_of(out) if "restarted on node" in r.get("reason", "")]
    assert restarted[0]["source"] == name and first[:12] not in restarted[0]["reason"]


def test_an_address_that_does_not_answer_is_one_line_and_exit_2(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the dfstream[ray] extra is not installed")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dfstream"), "run", "--engine", "ray", "--ray-address", "127.0.0.1:9",
         "--ray-timeout", "5", "--no-window"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("dfstream: error:")]
    assert len(errors) == 1 and "127.0.0.1:9" in errors[0] and "did not answer" in errors[0]


def test_without_ray_the_error_names_the_extra() -> None:
    code = ("import sys; sys.modules['ray'] = None; from dfstream.cli import main; "
            "sys.argv = ['dfstream', 'run', '--engine', 'ray', '--no-window']; main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "pip install 'dfstream[ray]'" in proc.stderr.strip().splitlines()[-1]


def test_a_config_reload_adds_and_removes_cameras(ray_cluster: LocalCluster, tmp_path: Path) -> None:
    """Through the command line: SIGHUP re-reads the cameras file while the job runs."""
    import signal

    cams = tmp_path / "cameras.yaml"
    out = tmp_path / "all.jsonl"

    def write(*names: str) -> None:
        cams.write_text("sources:\n" + "".join(f"  - name: {n}\n    url: {SAMPLE_CLIP}\n" for n in names))

    def scored(name: str) -> int:
        return sum(r["type"] == "score" and r["source"] == name for r in lines_of(out))

    write("hall")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dfstream"), "run", "--engine", "ray", "--ray-address",
         ray_cluster.cluster.address, "--config", str(cams), "--out", str(out), "--realtime", "--loop",
         "--no-window", "--duration", "240"], stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: scored("hall") >= 10, 120, "the first camera's scores")
        write("hall", "gate")
        proc.send_signal(signal.SIGHUP)
        _wait_for(lambda: scored("gate") >= 10, 120, "the added camera's scores")
        write("gate")
        proc.send_signal(signal.SIGHUP)
        _wait_for(lambda: proc.poll() is None and _hall_stopped(out), 60,
                  "the removed camera to stop")
        before = scored("gate")
        _wait_for(lambda: scored("gate") >= before + 10, 60, "the kept camera to go on")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    assert "config reloaded: 2 cameras" in err and "config reloaded: 1 cameras" in err


def _hall_stopped(out: Path) -> bool:
    """No score of the removed camera in the last 3 s of records."""
    records = [r for r in lines_of(out) if r["type"] == "score"]
    if not records:
        return False
    latest = records[-1]["ts"]
    return not any(r["source"] == "hall" and r["ts"] > latest - 3.0 for r in records) and latest > 0


@pytest.mark.parametrize(("args", "message"), [
    (["--engine", "ray", "--video", "v.mp4"], "--video and --window need the frames"),
    (["--ray-address", "auto"], "--ray-address needs --engine ray"),
])
def test_options_the_cluster_cannot_honour_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    proc = subprocess.run([str(Path(sys.executable).parent / "dfstream"), "run", "--no-window", *args],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip().splitlines()[-1]]
    assert message in proc.stderr and not (tmp_path / "v.mp4").exists()
