"""File identity and naming shared by export and the runtime tools (pure Python: no onnx import)."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["fp16_path", "sha256_of"]


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fp16_path(path: Path) -> Path:
    """Where the fp16 variant of an exported graph lives: ``name.fp16.onnx`` beside ``name.onnx``."""
    return path.with_name(path.stem + ".fp16.onnx")
