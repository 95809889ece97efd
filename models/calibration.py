"""Calibration of a model's P(fake) on validation, so that 0.5 means even odds.

Platt scaling on the logit: P = sigmoid(a·logit(p) + b), fitted by logistic regression on the
validation scores. It is monotone, so rankings (AUC) and the chosen operating point are kept; the
threshold is mapped through it and both go into the model's metadata, which the runtime applies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dfstream.stream.contract.exceptions import InputPathError
from dfstream.stream.ort_sessions import calibrated, logit


@dataclass(frozen=True)
class Decision:
    """A model's operating point: threshold on calibrated P(fake), the raw one, and the calibration."""

    threshold: float
    threshold_raw: float
    calibration: tuple[float, float] = (1.0, 0.0)
    input_scale: str | None = None
    """Model A's input scale as evaluation found it (export uses it when its own choice is auto)."""


def read_decision(path: Path) -> Decision:
    """A ``threshold.json`` written by ``dfstream eval`` (files from before calibration: identity)."""
    if not path.is_file():
        raise InputPathError(f"threshold file not found: {path}")
    try:
        body = json.loads(path.read_text())
        value = float(body["threshold"])
        raw = float(body.get("threshold_raw", value))
        a, b = (float(v) for v in body.get("calibration", (1.0, 0.0)))
    except (ValueError, KeyError, TypeError) as exc:
        raise InputPathError(f"{path}: no numeric 'threshold' field ({exc})") from None
    scale = body.get("input_scale")
    if scale not in (None, "0-1", "0-255"):
        raise InputPathError(f"{path}: input_scale {scale!r} is neither '0-1' nor '0-255'")
    return Decision(value, raw, (a, b), scale)


def fit_platt(y_true: np.ndarray, p_fake: np.ndarray) -> tuple[float, float]:
    """(a, b) from validation labels and raw scores; identity when one class is missing."""
    from sklearn.linear_model import LogisticRegression

    if len(set(np.asarray(y_true).tolist())) < 2:
        return 1.0, 0.0
    fit = LogisticRegression(C=100.0).fit(logit(p_fake).reshape(-1, 1), np.asarray(y_true).astype(int))
    a, b = float(fit.coef_[0, 0]), float(fit.intercept_[0])
    if a <= 0:  # scores ranked the wrong way round on validation: calibration cannot fix that
        return 1.0, 0.0
    return a, b


def decision_record(
    y_val: np.ndarray, p_val: np.ndarray, raw_threshold: float, chosen_on: str, max_fpr: float | None
) -> dict[str, object]:
    """What ``threshold.json`` holds: the raw and calibrated thresholds and the calibration."""
    calibration = fit_platt(y_val, p_val)
    threshold = float(np.clip(calibrated(np.array([raw_threshold], np.float32), calibration)[0], 1e-6, 1 - 1e-6))
    return {
        "threshold": threshold,
        "threshold_raw": float(raw_threshold),
        "calibration": list(calibration),
        "chosen_on": chosen_on,
        "max_fpr": max_fpr,
    }
