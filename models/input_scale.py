"""Which pixel scale a model A file expects: 0..255 (what notebook A's pipeline feeds) or 0..1.

Notebook A's comment says its images are scaled to [0, 1], but the call it makes does not rescale
floats, so a user's ``best_model.keras`` may expect either. Fed the wrong scale, a model saturates
(0..1 model on 0..255 pixels) or sees near-black pictures and answers one constant (0..255 model on
0..1 pixels). ``auto`` feeds both scales real face crops and keeps the one whose answers vary.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from dfstream.stream.contract.exceptions import ExportCheckError
from dfstream.stream.contract.metadata import INPUT_MAX, InputScale

log = logging.getLogger(__name__)

InputScaleChoice = Literal["auto", "0-1", "0-255"]
SCALES: tuple[InputScale, ...] = ("0-255", "0-1")

SATURATED = 1e-3
"""An answer closer than this to 0 or 1 is saturated."""
MAX_SATURATED_SHARE = 0.5
MIN_LOGIT_SPREAD = 1e-3
"""A scale whose answers' logits vary less than this across faces is uninformative."""
MIN_RATIO = 3.0
"""The chosen scale's logit spread must beat the other's by this factor, or the choice is ambiguous."""
PROBE_FACES = 32

OPTION_HINT = "pass --input-scale 0-1 or --input-scale 0-255"


@dataclass(frozen=True)
class ScaleProbe:
    """What one scale's answers on the probe faces looked like."""

    scale: str
    saturated_share: float
    logit_spread: float

    @property
    def informative(self) -> bool:
        return self.saturated_share <= MAX_SATURATED_SHARE and self.logit_spread >= MIN_LOGIT_SPREAD

    def describe(self) -> str:
        return f"{self.scale}: logit spread {self.logit_spread:.2e}, saturated {self.saturated_share:.0%}"


def probe_of(scale: str, p: np.ndarray) -> ScaleProbe:
    q = np.asarray(p, np.float64).reshape(-1)
    saturated = (q < SATURATED) | (q > 1 - SATURATED)
    kept = np.clip(q[~saturated], 1e-7, 1 - 1e-7)
    spread = float(np.std(np.log(kept / (1 - kept)))) if kept.size > 1 else 0.0
    return ScaleProbe(scale, float(saturated.mean()), spread)


def pick_scale(answers: Mapping[str, np.ndarray]) -> tuple[InputScale, list[ScaleProbe]]:
    """The scale whose answers are informative and clearly more varied; ExportCheckError otherwise."""
    probes = sorted((probe_of(s, p) for s, p in answers.items()), key=lambda pr: pr.logit_spread, reverse=True)
    good = [pr for pr in probes if pr.informative]
    seen = "; ".join(pr.describe() for pr in probes)
    if not good:
        raise ExportCheckError(f"model A answers are degenerate at both input scales ({seen}); is it trained? "
                               f"If so, {OPTION_HINT}")
    best = good[0]
    if len(good) > 1 and best.logit_spread < MIN_RATIO * good[1].logit_spread:
        raise ExportCheckError(f"cannot tell model A's input scale ({seen}); {OPTION_HINT}")
    return best.scale, probes  # type: ignore[return-value]


@functools.lru_cache(maxsize=1)
def probe_faces() -> tuple[np.ndarray, ...]:
    """Face crops (BGR uint8) from the bundled sample clip, framed as the stream frames them."""
    from dfstream.stream.contract.paths import SAMPLE_CLIP
    from dfstream.stream.faces import face_crops

    return tuple(face_crops(SAMPLE_CLIP, PROBE_FACES))


def faces_rgb(size: int) -> np.ndarray:
    """The probe faces at side ``size``, RGB float32 in 0..255."""
    crops = [cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA)[..., ::-1] for c in probe_faces()]
    return np.stack(crops).astype(np.float32)


def resolve_input_scale(
    choice: InputScaleChoice,
    size: int,
    predict: Callable[[np.ndarray], np.ndarray],
    where: str,
    known: InputScale | None = None,
) -> InputScale:
    """``choice`` when the model's answers on face crops vary at it; for ``auto`` the ``known`` scale of
    a model built here, else the scale whose answers vary. Logged either way."""
    if choice == "auto" and known is not None:
        log.info("%s: input scale %s (auto: built by dfstream)", where, known)
        return known
    faces = faces_rgb(size)
    if choice != "auto":
        probe = probe_of(choice, predict(faces * (INPUT_MAX[choice] / 255.0)))
        if not probe.informative:
            raise ExportCheckError(f"model A's answers on face crops at the given input scale are degenerate "
                                   f"({probe.describe()}); check --input-scale")
        log.info("%s: input scale %s (given; %s)", where, choice, probe.describe())
        return choice
    answers = {s: predict(faces * (INPUT_MAX[s] / 255.0)) for s in SCALES}
    scale, probes = pick_scale(answers)
    log.info("%s: input scale %s (auto; %s)", where, scale, "; ".join(pr.describe() for pr in probes))
    return scale
