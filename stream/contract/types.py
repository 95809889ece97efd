"""Shapes and names every stage agrees on: declared once, imported everywhere."""

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

CLIP_LEN: Final = 16
"""Frames per clip for model B (ring-buffer length)."""

LMK_DIM: Final = 5
"""Landmark values per frame fed beside the clip embedding."""

LMK_SPEC: Final = "lmk5-v1"
"""Version name of the 5-value landmark feature; recorded in clip model metadata."""

EMBED_DIM: Final = 1280
"""EfficientNet-B0 pooled feature width (model B encoder output)."""

HEAD_FEATURES: Final = EMBED_DIM + LMK_DIM
"""Per-frame input width of the clip head: embedding then landmarks."""

CLIP_CROP: Final = 256
"""Face crop side for model B."""

FRAME_CROP: Final = 224
"""Face crop side for model A."""

ATTENTION_GRID: Final = 14
"""Side of the attention grid that ``--explain`` puts in records (model A's map, area-averaged)."""


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded picture as a source delivers it (BGR uint8, H×W×3)."""

    source: str
    frame_id: int
    ts: float
    """Wall-clock capture time (seconds since the epoch), for records."""
    t_capture_ns: int
    """Monotonic capture time (``time.perf_counter_ns``), for latency."""
    image: np.ndarray
    decode_ms: float = 0.0


@dataclass(frozen=True, eq=False)
class FaceObs:
    """One face in one frame: pixel box, 468 mesh points in pixels, and the lmk5 feature."""

    bbox: tuple[float, float, float, float]
    """x, y, width, height in pixels of the frame."""
    points: np.ndarray
    """(468, 2) float32 pixel coordinates."""
    lmk5: np.ndarray
    """(5,) float32, see ``stream/landmarks.py``."""


Label = Literal["real", "fake", "uncertain"]
LABELS: tuple[str, ...] = ("real", "fake", "uncertain")
