"""Render one short clip of a face photo as a camera would see it, then landmark and crop it the
way the stream does.

Real and manipulated clips go through the same camera (pan, zoom, roll, mirror), the same light
and colour drift, sensor noise and a real codec (JPEG per frame, an H.264 round trip, or a WebRTC
call's VP8/VP9 at its bitrate), so the
only thing that tells them apart is the manipulation itself. A manipulation is made on the photo
before the camera moves, so its region follows the face in every frame.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from typing import Literal

import av
import cv2
import numpy as np

from dfstream.models.data.manipulate import apply_affine, face_extent
from dfstream.models.data.webrtc_codec import WEBRTC_CODECS, CodecRoundTrip, WebrtcCodec
from dfstream.stream.contract.types import FaceObs
from dfstream.stream.crops import crop_face
from dfstream.stream.faces import FaceStage, face_from_points

FRAME_W, FRAME_H = 640, 480
FPS = 30
Codec = Literal["jpeg", "h264"] | WebrtcCodec
CALL_KBPS = (250, 1500)
"""Bitrates of the WebRTC round trips, kbps: aiortc's bounds for a call."""


@dataclass(frozen=True)
class Camera:
    """One clip's look: where the face sits, how the camera drifts, the light and the codec."""

    face_px: float
    pan: tuple[float, float]
    zoom: float
    roll: float
    phase: tuple[float, float, float, float]
    mirror: bool
    gains: tuple[float, float, float]
    gamma: float
    drift: float
    noise: float
    codec: Codec
    quality: int
    """JPEG quality (higher is better), H.264 CRF (lower is better) or a WebRTC call's kbps."""


def draw_camera(rng: np.random.Generator, face_in_photo_px: float, webrtc_share: float = 0.0) -> Camera:
    """Random camera for a face of the given size; upscaling is capped at 2.5× so faces stay sharp-ish.

    ``webrtc_share`` of the clips go through VP8 or VP9 as a browser call sends them; at 0 no number
    is drawn for it, so a build without them is the build it was before they existed."""
    face_px = float(min(rng.uniform(130, 300), face_in_photo_px * 2.5))
    codec: Codec = "jpeg" if rng.random() < 0.5 else "h264"
    quality = int(rng.integers(35, 96)) if codec == "jpeg" else int(rng.integers(18, 36))
    gains = rng.uniform(0.85, 1.15, 3)
    cam = Camera(
        face_px=face_px,
        pan=(float(rng.uniform(-30, 30)), float(rng.uniform(-20, 20))),
        zoom=float(rng.uniform(0.0, 0.08)),
        roll=float(rng.uniform(0.0, 5.0)),
        phase=(
            float(rng.uniform(0, 6.3)),
            float(rng.uniform(0, 6.3)),
            float(rng.uniform(0, 6.3)),
            float(rng.uniform(0, 6.3)),
        ),
        mirror=bool(rng.random() < 0.5),
        gains=(float(gains[0]), float(gains[1]), float(gains[2])),
        gamma=float(rng.uniform(0.8, 1.25)),
        drift=float(rng.uniform(0.0, 0.12)),
        noise=float(rng.uniform(0.0, 6.0)),
        codec=codec,
        quality=quality,
    )
    if webrtc_share > 0 and rng.random() < webrtc_share:  # drawn last: the rest of the camera is unchanged
        call: Codec = WEBRTC_CODECS[int(rng.integers(len(WEBRTC_CODECS)))]
        cam = replace(cam, codec=call, quality=int(rng.integers(CALL_KBPS[0], CALL_KBPS[1] + 1)))
    return cam


def face_patch(photo: np.ndarray, points: np.ndarray, margin: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """The photo around one face (``margin``× its size each side, mirrored past the edges) and the
    points in patch pixels; keeps large group photos cheap to work on."""
    cx, cy, size = face_extent(points)
    half = size * margin
    x0, y0 = int(cx - half), int(cy - half)
    side = int(2 * half)
    pad = side
    padded = cv2.copyMakeBorder(photo, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    patch = padded[y0 + pad : y0 + pad + side, x0 + pad : x0 + pad + side]
    return np.ascontiguousarray(patch), (points - np.array([x0, y0], dtype=np.float32)).astype(np.float32)


def camera_at(cam: Camera, centre: tuple[float, float], face_size: float, t: float) -> np.ndarray:
    """2×3 affine from the photo patch to frame pixels at time ``t`` (seconds)."""
    p = cam.phase
    scale = cam.face_px / face_size * (1.0 + cam.zoom * np.sin(2 * np.pi * t / 1.3 + p[0]))
    angle = cam.roll * np.sin(2 * np.pi * t / 1.1 + p[1])
    m = cv2.getRotationMatrix2D(centre, float(angle), float(scale))
    dx = cam.pan[0] * np.sin(2 * np.pi * t / 1.7 + p[2])
    dy = cam.pan[1] * np.sin(2 * np.pi * t / 1.5 + p[3])
    m[0, 2] += FRAME_W / 2 - centre[0] + dx
    m[1, 2] += FRAME_H * 0.45 - centre[1] + dy
    if cam.mirror:
        m[0] = -m[0]
        m[0, 2] += FRAME_W
    return m


def light(frame: np.ndarray, cam: Camera, t: float, rng: np.random.Generator) -> np.ndarray:
    """Colour cast, gamma, a slow brightness drift and sensor noise."""
    x = frame.astype(np.float32) / 255.0
    x = np.power(x, cam.gamma) * np.asarray(cam.gains, dtype=np.float32)
    x *= 1.0 + cam.drift * np.sin(2 * np.pi * t / 2.0 + cam.phase[0])
    x = x * 255.0 + rng.normal(0.0, cam.noise, x.shape).astype(np.float32)
    return np.clip(x, 0, 255).astype(np.uint8)


def jpeg_round_trip(frame: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def h264_round_trip(frames: list[np.ndarray], crf: int) -> list[np.ndarray]:
    """Encode with libx264 at ``crf`` and decode again: the artefacts a real stream carries."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"crf": str(crf), "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = FRAME_W, FRAME_H, "yuv420p"
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="bgr24")))
        out.mux(stream.encode(None))
    buf.seek(0)
    with av.open(buf, mode="r") as src:
        decoded = [f.to_ndarray(format="bgr24") for f in src.decode(video=0)]
    if len(decoded) != len(frames):
        raise RuntimeError(f"H.264 round trip returned {len(decoded)} of {len(frames)} frames")
    return decoded


def film(
    patch: np.ndarray, points: np.ndarray, cam: Camera, n_frames: int, rng: np.random.Generator
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The clip's frames and, per frame, where the face's mesh points went."""
    cx, cy, size = face_extent(points)
    frames, moved = [], []
    for i in range(n_frames):
        t = i / FPS
        m = camera_at(cam, (cx, cy), size, t)
        f = cv2.warpAffine(patch, m, (FRAME_W, FRAME_H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        frames.append(light(f, cam, t, rng))
        moved.append(apply_affine(points, m))
    if cam.codec == "jpeg":
        frames = [jpeg_round_trip(f, int(np.clip(cam.quality + rng.integers(-4, 5), 10, 100))) for f in frames]
    elif cam.codec == "h264":
        frames = h264_round_trip(frames, cam.quality)
    else:
        trip = CodecRoundTrip(cam.codec, cam.quality * 1000, FPS)
        frames = [trip(f) for f in frames]
    return frames, moved


@dataclass(frozen=True)
class ClipFrames:
    crops_a: tuple[np.ndarray, ...]
    crops_b: tuple[np.ndarray, ...]
    lmks: tuple[np.ndarray, ...]
    fallbacks: int
    """Frames where MediaPipe lost the face and the camera's known motion placed the crop."""


def _nearest(faces: list[FaceObs], expected: np.ndarray) -> FaceObs | None:
    cx, cy, size = face_extent(expected)
    best, best_d = None, 0.35 * size
    for f in faces:
        d = float(np.hypot(f.bbox[0] + f.bbox[2] / 2 - cx, f.bbox[1] + f.bbox[3] / 2 - cy))
        if d < best_d:
            best, best_d = f, d
    return best


def landmark_and_crop(frames: list[np.ndarray], expected: list[np.ndarray], size_a: int, size_b: int) -> ClipFrames:
    """MediaPipe in video mode over the clip, as the stream runs it; crops at each model's size."""
    stage = FaceStage(max_faces=4, video=True)
    crops_a, crops_b, lmks = [], [], []
    fallbacks = 0
    try:
        for frame, pts in zip(frames, expected, strict=True):
            face = _nearest(stage(frame), pts)
            if face is None:
                fallbacks += 1
                face = face_from_points(pts)
            crops_a.append(crop_face(frame, face.bbox, size_a))
            crops_b.append(crop_face(frame, face.bbox, size_b))
            lmks.append(face.lmk5.astype(np.float32))
    finally:
        stage.close()
    return ClipFrames(tuple(crops_a), tuple(crops_b), tuple(lmks), fallbacks)
