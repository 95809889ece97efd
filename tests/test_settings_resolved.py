"""One resolution of the run's settings: ``run``, ``run --engine ray`` and ``serve`` hand their
pipelines the same per-camera settings from the same cameras file and flags."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dfstream.cli import app
from dfstream.stream.contract.paths import SAMPLE_CLIP
from dfstream.stream.settings import CameraSettings, PipelineOptions
from dfstream.stream.summary import RunSummary

CAMERAS = f"""
sources:
  - name: door
    url: {SAMPLE_CLIP}
    max_faces: 2
    threshold: 0.45
    detect_every: 3
  - name: desk
    url: {SAMPLE_CLIP}
    stride: 3
max_faces: 3
threshold: 0.6
detect_every: 6
explain: true
"""


def _local(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> PipelineOptions:
    """What ``dfstream run`` builds its pipeline with (the loop itself is skipped)."""
    from dfstream.stream.pipeline import Pipeline

    seen: list[PipelineOptions] = []
    monkeypatch.setattr(Pipeline, "_loop", lambda self, *a: seen.append(self.options))
    result = CliRunner().invoke(app, ["run", *args])
    assert result.exit_code == 0, result.output
    (options,) = seen
    return options


def _ray(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> dict[str, PipelineOptions]:
    """What each Ray camera worker builds its pipeline with (no cluster is started)."""
    import dfstream.stream.cluster.ray_run as cluster_run
    from dfstream.stream.cluster.worker import camera_options

    seen: dict[str, PipelineOptions] = {}

    class Cluster:
        def __init__(self, settings: Any, options: Any, sinks: Any) -> None:
            self.settings, self.sinks, self.errors = settings, sinks, []

        def start(self, cameras: Any) -> None:
            seen.update({c.name: camera_options(self.settings, c) for c in cameras})

        def run(self, *args: Any, **kwargs: Any) -> RunSummary:
            self.sinks.close()
            return RunSummary()

    monkeypatch.setattr(cluster_run, "ClusterRun", Cluster)
    result = CliRunner().invoke(app, ["run", "--engine", "ray", *args])
    assert result.exit_code == 0, result.output
    return seen


def _serve(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> PipelineOptions:
    """What ``dfstream serve`` builds its server (and so its pipeline) with (nothing is listened on)."""
    import dfstream.stream.server as server

    seen: list[PipelineOptions] = []
    monkeypatch.setattr(server.web, "run_app", lambda app, **kw: None)
    real = server.Server

    def capture(models: Any, options: Any, pipeline: PipelineOptions, *rest: Any, **kw: Any) -> Any:
        seen.append(pipeline)
        return real(models, options, pipeline, *rest, **kw)

    monkeypatch.setattr(server, "Server", capture)
    result = CliRunner().invoke(app, ["serve", *args])
    assert result.exit_code == 0, result.output
    (options,) = seen
    return options


def test_run_ray_and_serve_resolve_the_same_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "cameras.yaml"
    config.write_text(CAMERAS, encoding="utf-8")
    flags = ["--config", str(config), "--threshold", "0.4", "--max-faces", "5",  # flags over the file's globals
             "--detect-every", "5"]

    local = _local(monkeypatch, flags)
    # the file's camera entries over the flags over the file's globals over the defaults
    assert local.camera("door") == CameraSettings(max_faces=2, stride=None, threshold=0.45, detect_every=3)
    assert local.camera("desk") == CameraSettings(max_faces=5, stride=3, threshold=0.4, detect_every=5)
    assert local.defaults == CameraSettings(max_faces=5, stride=None, threshold=0.4, detect_every=5)
    assert (local.explain, local.frame_lane, local.overlap, local.serve) == (True, True, True, False)

    workers = _ray(monkeypatch, flags)
    assert set(workers) == {"door", "desk"}
    for name, options in workers.items():
        assert options.camera(name) == local.camera(name)
        assert replace(options, cameras=()) == replace(local, cameras=())  # frame lane, explain, weights alike

    served = _serve(monkeypatch, flags)
    assert replace(served, serve=False) == local


def test_no_frame_lane_reaches_the_ray_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    flags = ["--source", str(SAMPLE_CLIP), "--no-frame-lane", "--stride", "2"]
    local = _local(monkeypatch, flags)
    (worker,) = _ray(monkeypatch, flags).values()
    assert not local.frame_lane and not worker.frame_lane
    assert worker.defaults == local.defaults == CameraSettings(max_faces=4, stride=2, threshold=None, detect_every=10)


@pytest.mark.parametrize(("flags", "looks"), [
    (["--realtime", "--detect-every", "4"], 4),  # paced: the camera's setting
    (["--detect-every", "4"], 1),  # a file read as fast as it is scored looks on every frame
], ids=["paced", "file"])
def test_the_face_stage_looks_for_new_faces_as_the_camera_says(
    monkeypatch: pytest.MonkeyPatch, flags: list[str], looks: int
) -> None:
    from dfstream.stream.pipeline import Pipeline

    seen: list[int] = []
    monkeypatch.setattr(Pipeline, "_loop", lambda self, *a: seen.extend(s.faces.detect_every for s in self.streams))
    result = CliRunner().invoke(app, ["run", "--source", str(SAMPLE_CLIP), *flags])
    assert result.exit_code == 0, result.output
    assert seen == [looks]
