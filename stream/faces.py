"""Face stage: MediaPipe Face Mesh (its bundled detector + 468-point mesh), fully offline.

Face Mesh in video mode runs its own short-range face detector when it has fewer faces than
``max_faces`` and otherwise tracks the previous landmarks, which is cheaper than detecting and
meshing apart. One ``FaceStage`` per stream: the graph keeps per-stream tracking state.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dfstream.stream.contract.exceptions import InputPathError
from dfstream.stream.contract.types import FaceObs
from dfstream.stream.landmarks import MESH_POINTS, lmk5
from dfstream.stream.native_logs import QuietHold, native_quiet

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ start-up chatter

QUIET_CALLS = 300
"""Calls kept quiet (``native_quiet``) until the graph has met its first face: its chatter comes then."""
SETTLE_S = 0.03
"""Wait inside the quiet block after the first face (once per graph, off the live path when warmed)."""
LIVE_QUIET_S = 0.5
"""How long fd 2 is held for a graph started or restarted on a live frame."""


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


WARM_FRAME = np.zeros((480, 640, 3), dtype=np.uint8)
"""A blank RGB frame: what a warmed graph sees last, so it starts tracking nothing."""
WARM_FRAME.flags.writeable = False
SETTLE_FRAMES = 15
"""Frames with fewer faces than the graph holds before it is swapped for a smaller one: a face that
turns away for a moment keeps its graph (a graph with room detects by itself on every frame). The
stream's first frame, seen by the graph for ``max_faces``, sizes the graph at once."""


@functools.cache
def _warm_face() -> np.ndarray:
    """The sample clip's first frame (RGB), or a blank one if it cannot be read."""
    from dfstream.stream.contract.paths import SAMPLE_CLIP

    capture = cv2.VideoCapture(str(SAMPLE_CLIP), cv2.CAP_FFMPEG)
    ok, image = capture.read()
    capture.release()
    if not ok:
        return WARM_FRAME
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    rgb.flags.writeable = False
    return rgb


class _Graph:
    """One Face Mesh graph sized for ``faces`` faces; quiet until it meets a face."""

    def __init__(self, faces: int, min_confidence: float, video: bool = True) -> None:
        self._hold = QuietHold()  # until the first frame: the graph's threads log as they start
        self._quiet_calls = QUIET_CALLS
        self.tracked = False
        """Whether it has seen a face since it was built or restarted (its state may be stale)."""
        self.mesh = _face_mesh_module().FaceMesh(
            static_image_mode=not video,
            max_num_faces=faces,
            refine_landmarks=False,
            min_detection_confidence=min_confidence,
            min_tracking_confidence=min_confidence,
        )

    def restart(self) -> None:
        """Forget the faces it tracked (they are stale once another graph has had the frames)."""
        if not self.tracked:
            return
        self.hold_quiet()
        self.tracked = False
        self.mesh.reset()

    def hold_quiet(self) -> None:
        """Keep its start-up chatter off the screen without waiting for it on a live frame: fd 2 is held
        for ``LIVE_QUIET_S`` by a timer (nothing is lost, other lines only come late)."""
        self._hold.release()
        self._hold = QuietHold(max_s=LIVE_QUIET_S)
        self._quiet_calls = 0

    def warm(self) -> None:
        """Build its detector's and mesh's interpreters now rather than on a live frame (20-40 ms each):
        a face of the sample clip, then blank frames until the graph has let go of it."""
        with native_quiet():
            self._hold.release()
            self.mesh.process(_warm_face())
            time.sleep(SETTLE_S)
            for _ in range(3):
                if not self.mesh.process(WARM_FRAME).multi_face_landmarks:
                    break
        self._quiet_calls = 0

    def process(self, rgb: np.ndarray) -> Any:
        if self._quiet_calls <= 0:
            result = self.mesh.process(rgb)
        else:
            with native_quiet():
                self._hold.release()
                result = self.mesh.process(rgb)
                if result.multi_face_landmarks:
                    time.sleep(SETTLE_S)  # the graph's threads log their first face just after process()
            self._quiet_calls = 0 if result.multi_face_landmarks else self._quiet_calls - 1
        self.tracked = self.tracked or bool(result.multi_face_landmarks)
        return result

    def close(self) -> None:
        self._hold.release()
        self.mesh.close()


class FaceStage:
    """BGR frame in, up to ``max_faces`` FaceObs out (largest first).

    A Face Mesh graph runs its face detector on every frame on which it tracks fewer faces than it
    holds, so a graph for four with one face in view detects on every frame: a third of the stage's
    time (benchmarks/RESULTS.md §5). With ``detect_every`` > 1 the stage runs a graph sized for the
    faces in view, which only tracks, and looks for new faces with the detector alone every
    ``detect_every`` frames; a new face swaps in a larger graph. A tracked face's landmarks are the
    same either way (the graph feeds its mesh the rectangle tracked from the last frame, with or
    without a detection beside it), so model B's landmark inputs keep their meaning.
    """

    def __init__(self, max_faces: int = 4, min_confidence: float = 0.5, video: bool = True,
                 detect_every: int = 1) -> None:
        self.max_faces = max_faces
        self.detect_every = detect_every if video else 1
        self._min_confidence = min_confidence
        self._graphs = {max_faces: _Graph(max_faces, min_confidence, video)}
        self._current = max_faces
        self._fewer = SETTLE_FRAMES - 1
        """Frames in a row with fewer faces than the graph holds; the first frame's count settles at once."""
        self._since_look = 0
        self._detector: Any = None
        if self.detect_every > 1 and max_faces > 1:  # live: what a swap needs is built before frames come
            self._graphs[1] = _Graph(1, min_confidence)
            for graph in self._graphs.values():
                graph.warm()
            self._detect(WARM_FRAME)

    @property
    def graph_faces(self) -> int:
        """How many faces the graph in use holds (``max_faces`` unless ``detect_every`` > 1)."""
        return self._current

    def __call__(self, image: np.ndarray) -> list[FaceObs]:
        h, w = image.shape[:2]
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        rgb.flags.writeable = False
        result = self._graphs[self._current].process(rgb)
        faces: list[FaceObs] = []
        for landmarks in result.multi_face_landmarks or []:
            pts = np.array([(p.x * w, p.y * h) for p in landmarks.landmark[:MESH_POINTS]], dtype=np.float32)
            faces.append(face_from_points(pts))
        faces.sort(key=lambda f: f.bbox[2] * f.bbox[3], reverse=True)
        if self.detect_every > 1:
            self._resize(rgb, faces)
        return faces[: self.max_faces]

    def _resize(self, rgb: np.ndarray, faces: list[FaceObs]) -> None:
        """Choose the graph for the next frame from the faces of this one."""
        found, held = len(faces), self._current
        if found < held:  # the graph detects by itself; shrink it once the count has settled
            self._since_look = 0
            self._fewer += 1
            if self._fewer >= SETTLE_FRAMES:
                self._use(max(found, 1))
            return
        self._fewer = 0
        self._since_look += 1
        if held >= self.max_faces or self._since_look < self.detect_every:
            return
        self._since_look = 0
        new = self._new_faces(rgb, faces)
        if new:
            self._use(min(self.max_faces, found + new))

    def _new_faces(self, rgb: np.ndarray, faces: list[FaceObs]) -> int:
        """Detections whose centre lies in no tracked face's box."""
        h, w = rgb.shape[:2]
        new = 0
        for detection in self._detect(rgb):
            box = detection.location_data.relative_bounding_box
            cx, cy = (box.xmin + box.width / 2) * w, (box.ymin + box.height / 2) * h
            if not any(x <= cx <= x + bw and y <= cy <= y + bh for x, y, bw, bh in (f.bbox for f in faces)):
                new += 1
        return new

    def _detect(self, rgb: np.ndarray) -> list[Any]:
        """MediaPipe's short-range face detector (the one inside Face Mesh) on its own."""
        if self._detector is not None:
            return list(self._detector.process(rgb).detections or [])
        from mediapipe.python.solutions import face_detection

        with native_quiet():  # its threads log on the first frame, just after process()
            self._detector = face_detection.FaceDetection(model_selection=0,
                                                          min_detection_confidence=self._min_confidence)
            detections = list(self._detector.process(rgb).detections or [])
            time.sleep(SETTLE_S)
        return detections

    def _use(self, faces: int) -> None:
        self._fewer = 0
        if faces == self._current:
            return
        graph = self._graphs.get(faces)
        if graph is None:
            self._graphs[faces] = graph = _Graph(faces, self._min_confidence)
            graph.hold_quiet()
        else:
            graph.restart()
        self._current = faces

    def close(self) -> None:
        for graph in self._graphs.values():
            graph.close()
        if self._detector is not None:
            self._detector.close()


def face_crops(video: Path, limit: int = 64) -> list[np.ndarray]:
    """BGR uint8 crops of a face video framed by the stream's crop (side 512; resized per model later), spread
    over the whole video: what ``quantize`` calibrates on and model A's input-scale probe reads."""
    from dfstream.stream.crops import crop_face

    if not video.is_file():
        raise InputPathError(f"calibration video not found: {video}")
    cap = cv2.VideoCapture(str(video))
    step = max(1, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) // limit)  # spread over the whole video
    stage = FaceStage(max_faces=4, video=True)
    crops: list[np.ndarray] = []
    index = 0
    try:
        while len(crops) < limit:
            ok, image = cap.read()
            if not ok:
                break
            faces = stage(image)  # every frame, so the mesh keeps tracking
            if index % step == 0:
                crops += [crop_face(image, f.bbox, 512) for f in faces]
            index += 1
    finally:
        cap.release()
        stage.close()
    if len(crops) < 4:
        raise InputPathError(f"{video}: only {len(crops)} face crops found; calibration needs at least 4")
    return crops[:limit]


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
