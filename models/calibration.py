"""Calibration of a model's P(fake) on validation, so that 0.5 means even odds.

Platt scaling on the logit: P = sigmoid(a·logit(p) + b), fitted by logistic regression on the
validation scores. It is monotone, so rankings (AUC) and the chosen operating point are kept; the
threshold is mapped through it and both go into the model's metadata, which the runtime applies.
"""

from __future__ import annotations

import numpy as np

from dfstream.stream.runtime import calibrated


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    return np.log(q / (1 - q))


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


def calibrate(p_fake: np.ndarray, calibration: tuple[float, float]) -> np.ndarray:
    return calibrated(np.asarray(p_fake, np.float32), calibration)


def decision_record(
    y_val: np.ndarray, p_val: np.ndarray, raw_threshold: float, chosen_on: str, max_fpr: float | None
) -> dict[str, object]:
    """What ``threshold.json`` holds: the raw and calibrated thresholds and the calibration."""
    calibration = fit_platt(y_val, p_val)
    threshold = float(np.clip(calibrate(np.array([raw_threshold]), calibration)[0], 1e-6, 1 - 1e-6))
    return {
        "threshold": threshold,
        "threshold_raw": float(raw_threshold),
        "calibration": list(calibration),
        "chosen_on": chosen_on,
        "max_fpr": max_fpr,
    }
