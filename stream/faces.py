"""Face stage: MediaPipe Face Mesh (its bundled detector + 468-point mesh), fully offline.

Face Mesh in video mode runs its own short-range face detector when it has fewer faces than
``max_faces`` and otherwise tracks the previous landmarks, which is cheaper than detecting and
meshing apart. One ``FaceStage`` per stream: the graph keeps per-stream tracking state.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dfstream.stream.landmarks import MESH_POINTS, lmk5
from dfstream.stream.native_logs import QuietHold, native_quiet
from dfstream.stream.types import FaceObs

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ start-up chatter

QUIET_CALLS = 300
"""Calls kept quiet (``native_quiet``) until the graph has met its first face: its chatter comes then."""
SETTLE_S = 0.03
"""Wait inside the quiet block after the first face (once per graph)."""


@contextlib.contextmanager
def _tensorflow_hidden() -> Iterator[None]:
    """mediapipe.tasks imports TensorFlow when it is installed (only for its doc generator).

    The streaming runtime must not load TensorFlow, so the import is made to fail the way
    mediapipe expects (ModuleNotFoundError) while mediapipe loads, unless TF is already loaded.
    """
    if "tensorflow" in sys.modules:
        yield
        return
    sys.modules["tensorflow"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        del sys.modules["tensorflow"]


def _face_mesh_module() -> Any:
    with _tensorflow_hidden():
        from mediapipe.python.solutions import face_mesh

    return face_mesh


def face_from_points(points: np.ndarray) -> FaceObs:
    """A face from its mesh pixels: the box around them and their lmk5 values."""
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    box = (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
    return FaceObs(bbox=box, points=np.asarray(points, dtype=np.float32), lmk5=lmk5(points))


class FaceStage:
    """BGR frame in, up to ``max_faces`` FaceObs out (largest first)."""

    def __init__(self, max_faces: int = 4, min_confidence: float = 0.5, video: bool = True) -> None:
        self.max_faces = max_faces
        self._quiet_calls = QUIET_CALLS
        self._hold = QuietHold()  # until the first frame: the graph's threads log as they start
        self._mesh = _face_mesh_module().FaceMesh(
            static_image_mode=not video,
            max_num_faces=max_faces,
            refine_landmarks=False,
            min_detection_confidence=min_confidence,
            min_tracking_confidence=min_confidence,
        )

    def __call__(self, image: np.ndarray) -> list[FaceObs]:
        h, w = image.shape[:2]
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        rgb.flags.writeable = False
        if self._quiet_calls > 0:
            with native_quiet():
                self._hold.release()
                result = self._mesh.process(rgb)
                if result.multi_face_landmarks:
                    time.sleep(SETTLE_S)  # the graph's threads log their first face just after process()
            self._quiet_calls = 0 if result.multi_face_landmarks else self._quiet_calls - 1
        else:
            result = self._mesh.process(rgb)
        faces: list[FaceObs] = []
        for landmarks in result.multi_face_landmarks or []:
            pts = np.array([(p.x * w, p.y * h) for p in landmarks.landmark[:MESH_POINTS]], dtype=np.float32)
            faces.append(face_from_points(pts))
        faces.sort(key=lambda f: f.bbox[2] * f.bbox[3], reverse=True)
        return faces[: self.max_faces]

    def close(self) -> None:
        self._hold.release()
        self._mesh.close()


def first_face(video: Path, within: int = 30) -> tuple[int, np.ndarray, FaceObs]:
    """The first frame of ``video`` (among its first ``within``) in which a face is found: its index,
    the BGR picture and the face. RuntimeError names what failed (open, decode, or no face)."""
    capture = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        raise RuntimeError(f"OpenCV cannot open {video} through FFmpeg")
    stage = FaceStage(max_faces=1)
    try:
        for index in range(within):
            ok, image = capture.read()
            if not ok:
                raise RuntimeError(f"OpenCV read only {index} frames of {video}")
            if faces := stage(image):
                return index, image, faces[0]
    finally:
        stage.close()
        capture.release()
    raise RuntimeError(f"MediaPipe found no face in the first {within} frames of {video}")
