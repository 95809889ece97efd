"""The 5 landmark values per frame fed to model B beside each crop's embedding (spec ``lmk5-v1``).

Computed from MediaPipe Face Mesh points (468-point topology) in **pixel** coordinates, so
that non-square frames do not distort ratios. Every value is scale-free:

====  ==================  ==========================================================================
idx   name                formula (``|a-b|`` = Euclidean distance of points a and b)
====  ==================  ==========================================================================
0     ``ear_right``       (|160-144| + |158-153|) / (2·|33-133|)   eye aspect ratio, subject's right eye
1     ``ear_left``        (|385-380| + |387-373|) / (2·|362-263|)  eye aspect ratio, subject's left eye
2     ``mar``             |13-14| / |61-291|                        inner-lip opening over mouth width
3     ``yaw``             ((1 - m)·u) / d                           nose tip (1) along the eye axis
4     ``pitch``           ((1 - m)·v) / d                           nose tip (1) across the eye axis
====  ==================  ==========================================================================

where m is the midpoint of the outer eye corners 33 and 263, d = |33-263| (inter-ocular
distance), u = (263-33)/d the unit eye axis and v the unit vector u rotated by +90° (pointing
down the face in an upright image). A frontal face has yaw ≈ 0 and pitch ≈ 0.45-0.6.

Training data (``dfstream data build``) and the live stream both call :func:`lmk5`; the spec name
is ``stream.contract.types.LMK_SPEC`` and is written into model B's metadata.
"""

from __future__ import annotations

import numpy as np

LMK5_NAMES: tuple[str, ...] = ("ear_right", "ear_left", "mar", "yaw", "pitch")
RIGHT_EYE = (33, 160, 158, 133, 153, 144)
LEFT_EYE = (362, 385, 387, 263, 373, 380)
MOUTH_VERTICAL = (13, 14)
MOUTH_CORNERS = (61, 291)
NOSE_TIP = 1
OUTER_EYE_CORNERS = (33, 263)
MESH_POINTS = 468
_EPS = 1e-6


def _dist(p: np.ndarray, a: int, b: int) -> float:
    return float(np.hypot(*(p[a] - p[b])))


def _eye_ratio(p: np.ndarray, eye: tuple[int, int, int, int, int, int]) -> float:
    c0, t1, t2, c1, b2, b1 = eye
    return (_dist(p, t1, b1) + _dist(p, t2, b2)) / (2.0 * max(_dist(p, c0, c1), _EPS))


def lmk5(points: np.ndarray) -> np.ndarray:
    """The lmk5-v1 values of one face from its (≥468, 2) pixel landmarks."""
    p = np.asarray(points, dtype=np.float64)[:, :2]
    if p.shape[0] < MESH_POINTS:
        raise ValueError(f"lmk5 needs {MESH_POINTS} face-mesh points, got {p.shape[0]}")
    a, b = OUTER_EYE_CORNERS
    axis = p[b] - p[a]
    d = max(float(np.hypot(*axis)), _EPS)
    u = axis / d
    v = np.array([-u[1], u[0]])
    nose = p[NOSE_TIP] - (p[a] + p[b]) / 2.0
    values = (
        _eye_ratio(p, RIGHT_EYE),
        _eye_ratio(p, LEFT_EYE),
        _dist(p, *MOUTH_VERTICAL) / max(_dist(p, *MOUTH_CORNERS), _EPS),
        float(nose @ u) / d,
        float(nose @ v) / d,
    )
    return np.asarray(values, dtype=np.float32)
