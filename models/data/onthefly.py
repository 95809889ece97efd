"""Training samples made on the fly: a new fake per sample per epoch, framed as the stream frames faces.

A genuine face from the bank is either kept (with a regional texture change half of the time, so
retouching is not a fake) or manipulated (self-blend or swap, every parameter drawn), then
cropped the way ``stream/crops.py`` crops a tracked face (1.3× the landmark box) with jitter, and
passed through the same global changes for both classes. Clips keep one manipulation over all
their frames, under a moving camera, optionally with the blend's opacity flickering per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dfstream.models.data.bank import FaceBank
from dfstream.models.data.fakes import FAKE_KINDS, FakeKind, Manipulated, random_mask, self_blend, swap
from dfstream.models.data.manipulate import apply_affine
from dfstream.models.data.texture import degrade_photo, global_augment, regional_change
from dfstream.stream.contract.types import CLIP_LEN
from dfstream.stream.crops import square_around
from dfstream.stream.faces import face_from_points
from dfstream.stream.landmarks import lmk5


@dataclass(frozen=True)
class FakeConfig:
    p_fake: float = 0.5
    kinds: tuple[FakeKind, ...] = FAKE_KINDS
    exclude: str | None = None
    """A variant prefix never made (e.g. ``swap/piecewise``): train without it, test on it."""
    p_regional_real: float = 0.5
    """Genuine samples with a regional texture change and no change of face."""
    p_degraded: float = 0.5
    """Pictures made low quality before anything else (genuine and fake alike; donors independently)."""
    jitter: float = 1.0
    """Scale of the crop jitter (0: exactly the stream's crop)."""


@dataclass(frozen=True, eq=False)
class Sample:
    image: np.ndarray
    """BGR uint8 square crop."""
    label: int
    detail: str
    points: np.ndarray
    """(468, 2) mesh points in crop pixels."""


def crop_matrix(points: np.ndarray, size: int, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """The stream's square crop around the face, with a random scale, shift and roll."""
    cx, cy, side = square_around(face_from_points(points).bbox)
    side *= 1.0 + jitter * rng.uniform(-0.1, 0.1)
    cx += jitter * rng.uniform(-0.05, 0.05) * side
    cy += jitter * rng.uniform(-0.05, 0.05) * side
    m = cv2.getRotationMatrix2D((cx, cy), jitter * rng.uniform(-8, 8), size / side)
    m[0, 2] += size / 2 - cx
    m[1, 2] += size / 2 - cy
    return m


CROP_INTERPOLATIONS = (cv2.INTER_LINEAR, cv2.INTER_LINEAR, cv2.INTER_LINEAR, cv2.INTER_AREA, cv2.INTER_CUBIC)
"""Mostly the stream's own resampling (``crop_face`` warps with INTER_LINEAR), sometimes others."""


def _interpolation(rng: np.random.Generator) -> int:
    return int(CROP_INTERPOLATIONS[int(rng.integers(len(CROP_INTERPOLATIONS)))])


def _mirrored(sample: Sample) -> Sample:
    width = sample.image.shape[1]
    points = np.stack([width - 1 - sample.points[:, 0], sample.points[:, 1]], axis=1)
    return Sample(np.ascontiguousarray(sample.image[:, ::-1]), sample.label, sample.detail, points)


class FakeMaker:
    """Draws genuine and manipulated faces from a bank; deterministic for a given generator state."""

    def __init__(self, bank: FaceBank, config: FakeConfig | None = None) -> None:
        self.bank = bank
        self.config = config or FakeConfig()
        self.kinds = tuple(k for k in self.config.kinds if k != self.config.exclude)
        if not self.kinds:
            raise ValueError(f"no manipulation kind is left once {self.config.exclude!r} is excluded")
        self._others = {
            i: [j for j, who in enumerate(bank.identities) if who != bank.identities[i]] for i in range(len(bank))
        }

    def _picture(self, i: int, rng: np.random.Generator) -> np.ndarray:
        image = self.bank.images[i]
        return degrade_photo(image, rng) if rng.random() < self.config.p_degraded else image

    def _manipulate(self, i: int, image: np.ndarray, rng: np.random.Generator) -> Manipulated:
        points = self.bank.points[i]
        for _ in range(64):  # an excluded variant is redrawn
            kind = self.kinds[int(rng.integers(len(self.kinds)))]
            donors = self._others[i]
            if kind == "swap" and donors:
                j = donors[int(rng.integers(len(donors)))]
                made = swap(image, points, self._picture(j, rng), self.bank.points[j], rng)
            else:
                made = self_blend(image, points, rng)
            if self.config.exclude is None or not made.detail.startswith(self.config.exclude):
                return made
        raise ValueError(f"every drawn manipulation matched the excluded variant {self.config.exclude!r}")

    def _genuine(self, i: int, picture: np.ndarray, rng: np.random.Generator) -> Manipulated:
        """Genuine, retouched half the time: the face itself is unchanged."""
        if rng.random() < self.config.p_regional_real:
            mask = random_mask(picture.shape[:2], self.bank.points[i], rng)
            return Manipulated(regional_change(picture, mask, rng), "real/retouched")
        return Manipulated(picture, "real")

    def _source(self, rng: np.random.Generator, fake: bool | None) -> tuple[int, Manipulated, np.ndarray, int]:
        """Bank index, the shown picture, the genuine picture it was made from, and the label."""
        i = int(rng.integers(len(self.bank)))
        fake = bool(rng.random() < self.config.p_fake) if fake is None else fake
        picture = self._picture(i, rng)
        if fake:
            return i, self._manipulate(i, picture, rng), picture, 1
        return i, self._genuine(i, picture, rng), picture, 0

    def _framed(
        self, i: int, shown: Manipulated, label: int, m: np.ndarray, size: int, interpolation: int,
        augment: np.random.Generator,
    ) -> Sample:
        crop = cv2.warpAffine(shown.image, m, (size, size), flags=interpolation, borderMode=cv2.BORDER_CONSTANT)
        points = apply_affine(self.bank.points[i], m).astype(np.float32)
        return Sample(global_augment(crop, augment), label, shown.detail, points)

    def frame(self, rng: np.random.Generator, size: int, fake: bool | None = None) -> Sample:
        i, shown, _, label = self._source(rng, fake)
        m = crop_matrix(self.bank.points[i], size, rng, self.config.jitter)
        sample = self._framed(i, shown, label, m, size, _interpolation(rng), rng)
        return _mirrored(sample) if rng.random() < 0.5 else sample

    def clip(
        self, rng: np.random.Generator, size: int, fake: bool | None = None, length: int = CLIP_LEN
    ) -> tuple[np.ndarray, np.ndarray, int, str]:
        """(length, size, size, 3) BGR crops, (length, 5) lmk5, label and variant of one clip."""
        i, shown, genuine, label = self._source(rng, fake)
        image, detail = shown.image, shown.detail
        points = self.bank.points[i]
        flicker = label == 1 and rng.random() < 0.5
        codec_seed = int(rng.integers(2**31 - 1))
        phase = rng.uniform(0, 2 * np.pi, 3)
        base = crop_matrix(points, size, rng, self.config.jitter)
        interpolation = _interpolation(rng)
        frames, lmks = [], []
        for t in range(length):
            m = base.copy()
            m[:, 2] += 2.0 * np.sin(phase[:2] + t / 3.0)  # a slow camera drift, in pixels
            shown = image
            if flicker:
                w = rng.uniform(0.75, 1.0)
                shown = cv2.addWeighted(image, w, genuine, 1.0 - w, 0)
            crop = cv2.warpAffine(shown, m, (size, size), flags=interpolation, borderMode=cv2.BORDER_CONSTANT)
            codec = np.random.default_rng(codec_seed + t)
            frames.append(global_augment(crop, codec))
            lmks.append(lmk5(apply_affine(points, m)))
        return np.stack(frames), np.stack(lmks).astype(np.float32), label, detail
