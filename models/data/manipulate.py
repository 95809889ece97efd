"""Face manipulations made from genuine photos: self-blended images and camera motion.

Self-blending (after the self-blended-images method): the face is blended into a copy of
itself whose colour and geometry are slightly perturbed, through a mask from the face-mesh hull
with a soft edge. The result carries the blending boundary and statistics mismatch that real
face swaps leave, without needing a second identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class BlendParams:
    scale: float = 1.04
    shift: tuple[float, float] = (2.0, -1.5)
    hue: int = 6
    saturation: float = 1.12
    brightness: float = 1.06
    blur: int = 3
    sharpen: float = 0.0
    """Unsharp-mask amount on the perturbed copy: a pasted face sharper than its surroundings, the
    direction a sharp source on soft video has (``blur`` is the other)."""
    feather: float = 0.08
    """Mask edge softness as a share of the face size."""
    opacity: float = 1.0
    """How much of the perturbed copy the mask lets through (partial blends are harder to see)."""


def face_extent(points: np.ndarray) -> tuple[float, float, float]:
    """Centre x, centre y and side (the larger span) of the box around face-mesh points."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    return float(lo[0] + hi[0]) / 2, float(lo[1] + hi[1]) / 2, float(max(hi - lo))


def hull_mask(shape: tuple[int, int], points: np.ndarray, feather_px: float) -> np.ndarray:
    """Float mask in [0, 1]: the convex hull of ``points`` with a Gaussian-softened edge."""
    mask = np.zeros(shape, dtype=np.float32)
    hull = cv2.convexHull(points.astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1.0)
    k = max(3, int(feather_px) | 1)
    mask = cv2.erode(mask, np.ones((k // 2 + 1, k // 2 + 1), np.uint8))
    soft = cv2.GaussianBlur(mask, (k * 2 + 1, k * 2 + 1), feather_px / 2.0)
    return np.clip(soft, 0.0, 1.0, out=soft)  # the blur's rounding can leave 1 + 1e-7


def perturbed(image: np.ndarray, centre: tuple[float, float], p: BlendParams) -> np.ndarray:
    """A colour- and geometry-shifted copy of ``image`` (the 'source' face of a self-blend)."""
    m = cv2.getRotationMatrix2D(centre, 0.0, p.scale)
    m[:, 2] += p.shift
    warped = cv2.warpAffine(image, m, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REFLECT)
    hsv = cv2.cvtColor(warped, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + p.hue) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * p.saturation, 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] * p.brightness, 0, 255)
    out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)
    if p.blur > 1:
        out = cv2.GaussianBlur(out, (p.blur | 1, p.blur | 1), 0)
    if p.sharpen > 0:
        out = cv2.addWeighted(out, 1 + p.sharpen, cv2.GaussianBlur(out, (0, 0), 1.2), -p.sharpen, 0)
    return out


def alpha_blend(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``source`` over ``target`` through a float (H, W) mask in [0, 1], as uint8."""
    m = mask[..., None]
    return np.clip(m * source.astype(np.float32) + (1.0 - m) * target.astype(np.float32), 0, 255).astype(np.uint8)


def self_blend(image: np.ndarray, points: np.ndarray, params: BlendParams | None = None) -> np.ndarray:
    """Blend the face at ``points`` (face-mesh pixels) with a perturbed copy of itself."""
    p = params or BlendParams()
    cx, cy, size = face_extent(points)
    mask = hull_mask(image.shape[:2], points, max(3.0, p.feather * size)) * p.opacity
    return alpha_blend(perturbed(image, (cx, cy), p), image, mask)


def camera_motion(t: float, size: tuple[int, int], photo_shape: tuple[int, int]) -> np.ndarray:
    """2×3 affine from the photo to an output frame at time ``t`` s: slow pan, zoom and roll."""
    w, h = size
    ph, pw = photo_shape
    base = min(w / pw, h / ph) * 1.15
    zoom = base * (1.0 + 0.08 * np.sin(2 * np.pi * t / 7.0))
    angle = 3.0 * np.sin(2 * np.pi * t / 5.0)
    cx = pw / 2 + 0.04 * pw * np.sin(2 * np.pi * t / 6.0)
    cy = ph * 0.45 + 0.03 * ph * np.cos(2 * np.pi * t / 4.5)
    m = cv2.getRotationMatrix2D((cx, cy), angle, zoom)
    m[0, 2] += w / 2 - cx
    m[1, 2] += h / 2 - cy
    return m


def apply_affine(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    return points @ m[:, :2].T + m[:, 2]
