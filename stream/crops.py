"""Square face crops and model inputs, driven by each model's metadata (size, colour, scale, layout).

Training data and the live stream both crop with :func:`crop_face`, so the models see the same
framing in both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from dfstream.stream.contract.crop_policy import BUNDLED_CROP, CropPolicy
from dfstream.stream.contract.metadata import INPUT_MAX, ModelMetadata
from dfstream.stream.contract.types import FaceObs

CROP_SCALE = 1.3
"""Side of the square crop relative to the larger side of the landmark box."""


@dataclass(frozen=True)
class InputSpec:
    """How one image model wants its input: read from its metadata, never assumed."""

    size: int
    rgb: bool
    scale: float
    channels_first: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def of(cls, meta: ModelMetadata) -> InputSpec:
        if meta.input_size is None:
            raise ValueError(f"role {meta.role} has no image input")
        return cls(
            size=meta.input_size,
            rgb=meta.color_order == "RGB",
            scale=INPUT_MAX[meta.input_scale or "0-1"],
            channels_first=meta.input_layout == "NCHW",
            mean=meta.mean,
            std=meta.std,
        )


def square_around(bbox: tuple[float, float, float, float], scale: float = CROP_SCALE) -> tuple[float, float, float]:
    """Centre x, centre y and side of the square crop for a face box."""
    x, y, w, h = bbox
    return x + w / 2.0, y + h / 2.0, max(w, h) * scale


def crop_face(image: np.ndarray, bbox: tuple[float, float, float, float], size: int) -> np.ndarray:
    """BGR uint8 (size, size, 3) square crop; parts outside the frame are black, never shifted."""
    cx, cy, side = square_around(bbox)
    k = size / max(side, 1.0)
    m = np.array([[k, 0.0, size / 2.0 - k * cx], [0.0, k, size / 2.0 - k * cy]], dtype=np.float64)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


DFB5_POINTS = (160, 387, 1, 40, 321)
"""Mesh points standing for the five dlib points DeepfakeBench aligns (68-point indices 37, 44, 30, 49,
55): the upper lid a third in from each eye's outer corner, the nose tip, and the outer lip a third in
from the left corner above and from the right corner below."""
DFB5_TEMPLATE = np.array(
    [[30.2946, 51.6963], [65.5318, 51.5014], [48.0252, 71.7366], [33.5493, 92.3655], [62.7299, 92.2041]],
    dtype=np.float64,
)
"""The five-point face template on a 96×112 canvas (ArcFace's), which DeepfakeBench widens to 112×112."""


def crop_for(image: np.ndarray, face: FaceObs, policy: CropPolicy, size: int) -> np.ndarray:
    """BGR uint8 (size, size, 3) crop of ``face`` as ``policy`` says."""
    if policy == BUNDLED_CROP:
        return crop_face(image, face.bbox, size)
    if policy.align == "dfb5":
        return _aligned(image, face.points[list(DFB5_POINTS)], policy.align_scale, size)
    x, y, w, h = face.bbox
    left, right, top, bottom = policy.margins
    x0, x1, y0, y1 = x - left * w, x + w + right * w, y - top * h, y + h + bottom * h
    if policy.square:
        cx, cy, side = (x0 + x1) / 2.0, (y0 + y1) / 2.0, max(x1 - x0, y1 - y0)
        x0, x1, y0, y1 = cx - side / 2.0, cx + side / 2.0, cy - side / 2.0, cy + side / 2.0
    if policy.edge == "clip":
        height, width = image.shape[:2]
        # int() and the +1 as SBI's crop_face writes them, so the pixels cut are the same
        top_px, bottom_px = max(0, int(y0)), min(height, int(y1) + 1)
        left_px, right_px = max(0, int(x0)), min(width, int(x1) + 1)
        part = image[top_px:bottom_px, left_px:right_px]
        if part.size == 0:
            return np.zeros((size, size, 3), np.uint8)
        return cv2.resize(part, (size, size), interpolation=cv2.INTER_LINEAR)
    kx, ky = size / max(x1 - x0, 1.0), size / max(y1 - y0, 1.0)
    m = np.array([[kx, 0.0, -kx * x0], [0.0, ky, -ky * y0]], dtype=np.float64)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def dfb5_target(size: int, scale: float) -> np.ndarray:
    """Where the five points land in a ``size`` crop: the template widened to 112×112, scaled to
    ``size`` and shrunk about the corner by ``scale`` (DeepfakeBench's margin arithmetic)."""
    dst = DFB5_TEMPLATE.copy()
    dst[:, 0] += 8.0
    dst *= size / 112.0
    margin = size * (scale - 1.0) / 2.0
    return (dst + margin) * size / (size + 2.0 * margin)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2×3 least-squares similarity (rotation, uniform scale, shift) taking ``src`` onto ``dst``
    (Umeyama's closed form, as skimage's SimilarityTransform.estimate computes it)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0
    rot = u @ sign @ vt
    scale = float(np.trace(np.diag(sig) @ sign) / s.var(0).sum())
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def _aligned(image: np.ndarray, points: np.ndarray, scale: float, size: int) -> np.ndarray:
    m = similarity(points, dfb5_target(size, scale))
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def to_model_input(crops: Sequence[np.ndarray], spec: InputSpec) -> np.ndarray:
    """Stack BGR uint8 crops of side ``spec.size`` into the float32 batch the model expects."""
    batch = np.stack(crops).astype(np.float32)
    if spec.rgb:
        batch = batch[..., ::-1]
    batch *= spec.scale / 255.0
    if spec.mean != (0.0, 0.0, 0.0) or spec.std != (1.0, 1.0, 1.0):
        batch = (batch - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    if spec.channels_first:
        batch = batch.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(batch)
