"""Model A distilled from model B's fine-tuned encoder, on fakes made on the fly.

The small CBAM CNN learns from scratch on a CPU; the ImageNet-initialised encoder has learned far
more from the same faces. So model A trains on a pool of on-the-fly samples (genuine, retouched,
self-blended, swapped, each with drawn parameters) whose target mixes the hard label with the
teacher's frame-level P(fake) (encoder + linear probe). The pool is made in torch, before
TensorFlow starts, and handed over as arrays.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dfstream.models.data.bank import read_banks
from dfstream.models.data.onthefly import FakeConfig, FakeMaker, Sample
from dfstream.models.datasets import ImageSplit

_NO_POINTS = np.zeros((0, 2), np.float32)

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class DistillPool:
    images: np.ndarray
    """(N, S, S, 3) BGR uint8 crops at model A's size."""
    hard: np.ndarray
    """(N,) 0 genuine / 1 fake."""
    soft: np.ndarray
    """(N,) the teacher's P(fake)."""

    def targets(self, hard_weight: float) -> np.ndarray:
        return (hard_weight * self.hard + (1.0 - hard_weight) * self.soft).astype(np.float32)


def teacher_size(teacher_dir: Path) -> int:
    """The crop side the teacher was trained at (from its history.json)."""
    history = teacher_dir / "history.json"
    try:
        return int(json.loads(history.read_text())["config"]["img_size"])
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{history}: no training config to read the teacher's crop size from ({exc})") from None


def _fixed_frames(paths: list[Path], labels: list[int], size: int, rng: np.random.Generator, n: int) -> list[Sample]:
    picks = rng.integers(len(paths), size=n)
    out = []
    for j in picks:
        img = cv2.imread(str(paths[int(j)]))
        if img is None:
            raise ValueError(f"{paths[int(j)]}: failed to decode")
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        out.append(Sample(img[:, ::-1].copy() if rng.random() < 0.5 else img, int(labels[int(j)]), "fixed", _NO_POINTS))
    return out


def make_pool(
    faces: Sequence[Path], teacher_dir: Path, n: int, size: int, seed: int, fixed: ImageSplit | None = None,
    fixed_share: float = 0.0,
) -> DistillPool:
    """``n`` samples at ``size`` with the teacher's P(fake) for each: made on the fly, and a share
    ``fixed_share`` taken from fixed training frames (the data build's, filmed through its codec)."""
    import torch

    from dfstream.models import clip_lstm
    from dfstream.models.clip_checkpoints import LAST_NAME, read_probe
    from dfstream.models.train_onthefly import to_tensor

    checkpoint = teacher_dir / LAST_NAME
    model = clip_lstm.load_state(checkpoint).eval()
    probe = read_probe(checkpoint)
    side = teacher_size(teacher_dir)
    maker = FakeMaker(read_banks(faces), FakeConfig())
    images = np.empty((n, size, size, 3), np.uint8)
    hard = np.empty(n, np.float32)
    soft = np.empty(n, np.float32)
    chunk = 64
    with torch.no_grad():
        for start in range(0, n, chunk):
            rng = np.random.default_rng([seed, start])
            count = min(chunk, n - start)
            n_fixed = round(count * fixed_share) if fixed is not None and len(fixed) else 0
            got = [maker.frame(rng, size) for _ in range(count - n_fixed)]
            if n_fixed and fixed is not None:
                got += _fixed_frames(list(fixed.paths), list(fixed.labels), size, rng, n_fixed)
            crops = np.stack([s.image for s in got])
            small = np.stack([cv2.resize(c, (side, side), interpolation=cv2.INTER_AREA) for c in crops])
            p = torch.sigmoid(probe(model.encode(to_tensor(small)))).squeeze(1).numpy()
            images[start : start + len(got)] = crops
            hard[start : start + len(got)] = [s.label for s in got]
            soft[start : start + len(got)] = p
            if (start // chunk) % 20 == 0:
                log.info("distillation pool: %d/%d", start + len(got), n)
    agree = float(np.mean((soft > 0.5) == (hard > 0.5)))
    log.info("distillation pool: %d samples, teacher agrees with the label on %.1f%%", n, 100 * agree)
    return DistillPool(images, hard, soft)
