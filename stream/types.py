"""Shapes and names every stage agrees on: declared once, imported everywhere."""

from typing import Final

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
