"""Run settings resolved once: defaults, then the cameras file, then flags, merged into each camera.

The command line and the cameras file are parsed into ``RunConfig`` / ``ServeConfig``; from them
``PipelineOptions`` is built once (``config.pipeline_options()``) and handed whole to the
in-process pipeline, the server and every Ray camera worker. Nothing at run time has defaults of
its own, so the engines cannot drift apart (as ``--engine ray`` once dropped the frame lane).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

DETECT_EVERY = 10
"""Live and paced sources: frames between two looks for new faces while every face in view is tracked
(~330 ms at 30 fps; stream/faces.py). A file read as fast as it is scored looks on every frame."""
DETECT_EVERY_HELP = ("Live and paced sources: frames between two looks for new faces once every face in view is "
                     "tracked (10: a new face is found within ~1/3 s at 30 fps; 1: on every frame, at a third more "
                     "face-stage time). Files read as fast as they are scored look on every frame.")


@dataclass(frozen=True)
class CameraSettings:
    """What one camera is scored with: the file's camera entry laid over the run's settings."""

    max_faces: int
    stride: int | None
    """Model A on every k-th frame of a track, fixed; None: the deadline scheduler's k."""
    threshold: float | None
    """The fused label's decision point on the centred scale (None: 0.5, the models' thresholds)."""
    detect_every: int
    """Live and paced sources: frames between two looks for new faces once every face in view is tracked."""


@dataclass(frozen=True)
class PipelineOptions:
    """How a pipeline runs: every camera's settings and the modes of the whole process."""

    defaults: CameraSettings
    """For sources the cameras file does not name (command-line sources, browser peers)."""
    cameras: tuple[tuple[str, CameraSettings], ...]
    """Each named camera's resolved settings."""
    explain: bool
    """Records carry model A's attention grid and the views draw it."""
    overlap: bool
    """Find the next frame's faces while the models score the last one."""
    frame_lane: bool
    """Model A beside the frames of live and paced sources, on its own thread."""
    model_weights: tuple[tuple[str, float], ...]
    """Fusion weight per imported model name and ``bundled``; unset names weigh 1.0."""
    serve: bool
    """Server mode: keep running with no sources; sources come and go."""

    def camera(self, name: str) -> CameraSettings:
        return dict(self.cameras).get(name, self.defaults)

    @property
    def weights(self) -> Mapping[str, float]:
        return dict(self.model_weights)
