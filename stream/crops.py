"""Square face crops and model inputs, driven by each model's metadata (size, colour, scale, layout).

Training data and the live stream both crop with :func:`crop_face`, so the models see the same
framing in both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from dfstream.export.metadata import INPUT_MAX, ModelMetadata

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
