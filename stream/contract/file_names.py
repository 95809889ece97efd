"""File identity and naming shared by export and the runtime tools (pure Python: no onnx import)."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["fp16_path", "precision_path", "sha256_of"]


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fp16_path(path: Path) -> Path:
    """Where the fp16 variant of an exported graph lives: ``name.fp16.onnx`` beside ``name.onnx``."""
    return precision_path(path, "fp16")


def precision_path(path: Path, precision: str) -> Path:
    """``name.onnx`` for fp32, ``name.<precision>.onnx`` for the fp16 and int8 variants."""
    return path if precision == "fp32" else path.with_name(f"{path.stem}.{precision}.onnx")
