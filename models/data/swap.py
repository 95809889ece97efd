"""Landmark face swap: another person's face warped onto the target's landmarks, colour-matched
and blended in, the way classic face-swap pipelines do it."""

from __future__ import annotations

import cv2
import numpy as np

from dfstream.models.data.manipulate import alpha_blend, face_extent, hull_mask


def colour_transfer(source: np.ndarray, target: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Match the source's Lab mean and spread inside ``region`` to the target's (Reinhard)."""
    src = cv2.cvtColor(source, cv2.COLOR_BGR2LAB).astype(np.float32)
    tgt = cv2.cvtColor(target, cv2.COLOR_BGR2LAB).astype(np.float32)
    inside = region.astype(bool)
    if inside.sum() < 16:
        return source
    s_mean, s_std = src[inside].mean(axis=0), src[inside].std(axis=0) + 1e-3
    t_mean, t_std = tgt[inside].mean(axis=0), tgt[inside].std(axis=0) + 1e-3
    out = (src - s_mean) * (t_std / s_std) + t_mean
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR)


def face_swap(
    target: np.ndarray,
    target_points: np.ndarray,
    donor: np.ndarray,
    donor_points: np.ndarray,
    seamless: bool,
    feather: float = 0.08,
) -> np.ndarray:
    """The donor's face on the target photo: affine fit of all 468 mesh points, Lab colour
    transfer, then Poisson (``seamless``) or feathered alpha blending through the target's hull."""
    m, _ = cv2.estimateAffine2D(donor_points.astype(np.float32), target_points.astype(np.float32))
    if m is None:
        raise ValueError("no affine fit between the two faces' landmarks")
    h, w = target.shape[:2]
    warped = cv2.warpAffine(donor, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    size = face_extent(target_points)[2]
    mask = hull_mask((h, w), target_points, max(3.0, feather * size))
    warped = colour_transfer(warped, target, mask > 0.5)
    if seamless:
        hard = (mask > 0.5).astype(np.uint8) * 255
        ys, xs = np.nonzero(hard)
        if len(xs) and xs.min() > 1 and ys.min() > 1 and xs.max() < w - 2 and ys.max() < h - 2:
            x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
            centre = (int((x0 + x1 + 1) // 2), int((y0 + y1 + 1) // 2))
            return cv2.seamlessClone(warped, target, hard, centre, cv2.NORMAL_CLONE)
    return alpha_blend(warped, target, mask)
