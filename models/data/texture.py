"""Texture changes that genuine and manipulated samples share, so texture alone separates nothing.

A detector that keys on one direction of a texture difference (for example "the face is smoother
than its surroundings") fails the first tool that goes the other way. So every regional change
here is applied either inside a face mask or outside it, at random: sharper or smoother, noisier
or cleaner, better or worse JPEG, warmer or cooler. Genuine samples get the same regional changes
with no change of face (beauty-filter smoothing, sharpening, local noise); what is left that only
a fake has is the pasting itself: a changed face or geometry and its boundary.

Global changes (codec, blur, noise, colour, resolution drops down to the size of a face in
176×144 video) are applied to genuine and fake samples alike after the crop.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from dfstream.models.data.manipulate import alpha_blend

Op = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else image


def _sharpen(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    sigma = rng.uniform(0.8, 2.0)
    amount = rng.uniform(0.5, 2.0)
    soft = cv2.GaussianBlur(img, (0, 0), sigma)
    return cv2.addWeighted(img, 1 + amount, soft, -amount, 0)


def _smooth(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.5:  # a beauty filter: edge-preserving skin smoothing
        d = int(rng.integers(5, 10))
        return cv2.bilateralFilter(img, d, rng.uniform(20, 60), rng.uniform(3, 9))
    return cv2.GaussianBlur(img, (0, 0), rng.uniform(0.6, 2.2))


def _noise(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = rng.normal(0.0, rng.uniform(3.0, 12.0), img.shape)
    return np.clip(img.astype(np.float32) + n, 0, 255).astype(np.uint8)


def _jpeg(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return jpeg(img, int(rng.integers(15, 60)))


def _temperature(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    lab = cv2.cvtColor(img, cv2.COLOR_BGR2LAB).astype(np.float32)
    lab[..., 2] += rng.uniform(-12, 12)  # blue ↔ yellow
    lab[..., 1] += rng.uniform(-6, 6)  # green ↔ magenta
    lab[..., 0] *= rng.uniform(0.85, 1.15)
    return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR)


def saturation(img: np.ndarray, factor: float) -> np.ndarray:
    """Colour saturation scaled (HSV): above 1 more vivid, below 1 paler."""
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 1] *= factor
    return cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR)


def nl_means(img: np.ndarray, strength: float) -> np.ndarray:
    """A camera's or a call app's noise reduction (non-local means): fine texture out, edges kept."""
    return cv2.fastNlMeansDenoisingColored(img, None, strength, strength, 5, 11)


REGIONAL_OPS: dict[str, Op] = {
    "sharpen": _sharpen,
    "smooth": _smooth,
    "noise": _noise,
    "jpeg": _jpeg,
    "temperature": _temperature,
}


def regional_change(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random texture or colour change, inside ``mask`` or outside it (the direction is random)."""
    changed = texture_shift(image, rng)
    m = mask.astype(np.float32)
    return alpha_blend(changed, image, 1.0 - m if rng.random() < 0.5 else m)


def texture_shift(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A whole-image texture change in a random direction (for a pasted source face)."""
    op = REGIONAL_OPS[str(rng.choice(list(REGIONAL_OPS)))]
    return op(image, rng)


def degrade_photo(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A low-quality photo of the same face: an old or small camera picture, upscaled and recompressed.

    Applied to the genuine picture *before* any manipulation (and, independently, to a swap's donor),
    so genuine faces of every quality exist and "a low-quality picture" never means "fake"."""
    h, w = image.shape[:2]
    k = rng.uniform(0.2, 0.7)
    small = cv2.resize(image, (max(8, int(w * k)), max(8, int(h * k))), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        small = _noise(small, rng)
    if rng.random() < 0.7:
        small = jpeg(small, int(rng.integers(20, 80)))
    interp = int(rng.choice([cv2.INTER_LINEAR, cv2.INTER_CUBIC]))
    out = cv2.resize(small, (w, h), interpolation=interp)
    if rng.random() < 0.3:
        out = _temperature(out, rng)
    return out


def global_augment(crop: np.ndarray, rng: np.random.Generator, min_face_px: int = 28) -> np.ndarray:
    """Changes a camera, a link and a codec make to the whole picture, the same for both classes."""
    out = crop
    size = out.shape[0]
    if rng.random() < 0.4:  # resolution drop: a small face in low-resolution video, upscaled by the crop
        small = int(rng.integers(min_face_px, max(min_face_px + 1, size)))
        interp = int(rng.choice([cv2.INTER_AREA, cv2.INTER_LINEAR]))
        out = cv2.resize(cv2.resize(out, (small, small), interpolation=interp), (size, size))
    if rng.random() < 0.2:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.4, 1.5))
    if rng.random() < 0.5:
        alpha, beta = rng.uniform(0.75, 1.25), rng.uniform(-25, 25)
        out = cv2.convertScaleAbs(out, alpha=alpha, beta=beta)
    if rng.random() < 0.3:
        out = _temperature(out, rng)
    if rng.random() < 0.3:
        out = _noise(out, rng)
    if rng.random() < 0.7:
        out = jpeg(out, int(rng.integers(30, 96)))
    return out
