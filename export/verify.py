"""Self-checks every export runs before it reports success. A failed check is an error."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort

from dfstream.stream.contract.exceptions import ExportCheckError

log = logging.getLogger(__name__)

FP32_TOL = 1e-4
FP16_TOL = 2e-2
MIN_SPREAD = 1e-4
"""Reference outputs must differ across probe inputs by at least this much, or parity proves nothing."""


def run_onnx(path: Path, feeds: Mapping[str, np.ndarray], output: str | None = None) -> np.ndarray:
    """One output of a graph on CPU: the first, or the one named ``output``."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    name = output or session.get_outputs()[0].name
    return np.asarray(session.run([name], dict(feeds))[0], dtype=np.float32)


def check_informative(name: str, reference: np.ndarray, hint: str = "is the model trained?") -> None:
    """Refuse probe outputs that are constant or vanishing (e.g. an untrained EfficientNet)."""
    ref = np.asarray(reference, dtype=np.float64)
    if not np.all(np.isfinite(ref)):
        raise ExportCheckError(f"{name}: framework output has NaN/inf on the probe inputs")
    spread = float(ref.max() - ref.min())
    if spread < MIN_SPREAD:
        raise ExportCheckError(
            f"{name}: framework outputs are degenerate on the probe inputs (spread {spread:.2e} < {MIN_SPREAD}); "
            f"parity cannot be shown — {hint}"
        )


def check_parity(name: str, reference: np.ndarray, got: np.ndarray, tol: float) -> float:
    """Max abs diff between framework and ONNX Runtime; raises when above ``tol`` scaled by the
    reference's magnitude when that exceeds 1 (float32 sums of large features differ in the last
    bits by an amount proportional to their size: a trained encoder's features reach tens)."""
    reference = np.asarray(reference, dtype=np.float32)
    got = np.asarray(got, dtype=np.float32).reshape(reference.shape)
    diff = float(np.max(np.abs(reference - got)))
    scale = max(1.0, float(np.max(np.abs(reference))))
    limit = tol * scale
    line = f"{name}: max abs diff {diff:.3e} (tolerance {tol:.0e} × {scale:.3g})"
    if not diff <= limit:
        raise ExportCheckError(line + " — parity check failed")
    print(line)
    return diff
