"""Clips of a still face with camera motion, genuine then manipulated then genuine again.

The bundled sample clip is one of them: matplotlib's ``grace_hopper.jpg`` (public domain,
shipped in matplotlib's ``mpl-data/sample_data``) panned, zoomed and rolled with sensor noise,
its face self-blended (``manipulate.self_blend``) from ``fake_from`` to ``fake_to`` seconds, the
mask following the face frame by frame. ``dfstream eval streams`` makes the same kind of clip from
the faces of a data build's split, so the stream's labels can be measured on people the models
never saw. Regenerate the sample with ``dfstream data sample-clip``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from dfstream.models.data.manipulate import apply_affine, camera_motion, self_blend

Manipulation = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(frame, the face's mesh points in that frame) → the manipulated frame."""


@dataclass(frozen=True)
class ClipTiming:
    seconds: float = 8.0
    fps: int = 30
    fake_from: float = 3.0
    fake_to: float = 5.5

    @property
    def stretch(self) -> tuple[int, int]:
        """The manipulated frames: first and one past the last."""
        return round(self.fake_from * self.fps), round(self.fake_to * self.fps)

    def manipulated(self, frame_id: int) -> bool:
        first, end = self.stretch
        return first <= frame_id < end

    @property
    def frames(self) -> int:
        return int(self.seconds * self.fps)


SAMPLE_TIMING = ClipTiming()
"""The sample clip's: 8 s at 30 fps, manipulated from 3.0 to 5.5 s (frames 90–164)."""


def grace_hopper() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def write_motion_clip(
    image: np.ndarray,
    points: np.ndarray,
    out: Path,
    manipulation: Manipulation = self_blend,
    timing: ClipTiming = SAMPLE_TIMING,
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
) -> dict[str, int]:
    """Write an H.264 clip of ``image`` (BGR) whose face has mesh ``points``; returns frame counts per kind."""
    rng = np.random.default_rng(seed)
    counts = {"genuine": 0, "manipulated": 0}
    out.parent.mkdir(parents=True, exist_ok=True)
    # faststart: the index comes first, so a browser streams it and a truncated copy still plays
    with av.open(str(out), mode="w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=Fraction(timing.fps))
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "slow", "crf": "26"}
        for i in range(timing.frames):
            m = camera_motion(i / timing.fps, size, image.shape[:2])
            frame = cv2.warpAffine(image, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            if timing.manipulated(i):
                frame = manipulation(frame, apply_affine(points, m))
                counts["manipulated"] += 1
            else:
                counts["genuine"] += 1
            noisy = frame.astype(np.float32) + rng.normal(0.0, 2.0, frame.shape)
            frame = np.clip(noisy, 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return counts


def make_sample_clip(photo: Path, out: Path) -> dict[str, int]:
    """The sample clip from a portrait: its face found by the stream's own face stage."""
    from dfstream.stream.contract.exceptions import InputPathError
    from dfstream.stream.faces import FaceStage

    image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    if image is None:
        raise InputPathError(f"cannot read {photo} as an image")
    stage = FaceStage(max_faces=1, video=False)
    faces = stage(image)
    stage.close()
    if not faces:
        raise InputPathError(f"no face found in {photo}")
    return write_motion_clip(image, faces[0].points, out)
