"""The face bank: genuine faces with their 468 mesh points, per split, for fakes made on the fly.

The trainers make a new manipulation per sample per epoch from these, so they need each genuine
face with its landmarks, not only finished clips. The data build writes one ``faces/<split>.npz``
per split: each face cut from its photo as a square around it and resized to ``BANK_SIDE``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dfstream.models.data.manipulate import apply_affine, face_extent
from dfstream.stream.contract.exceptions import DatasetError

BANK_SIDE = 320
BANK_CONTEXT = 2.2
"""Side of a bank image relative to the face's span: room for crop jitter and for the surroundings."""


@dataclass(frozen=True, eq=False)
class FaceBank:
    images: np.ndarray
    """(N, side, side, 3) BGR uint8."""
    points: np.ndarray
    """(N, 468, 2) float32 pixels in the bank image."""
    identities: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.identities)

    def people(self) -> list[str]:
        return sorted(set(self.identities))


def cut_face(photo: np.ndarray, points: np.ndarray, side: int = BANK_SIDE) -> tuple[np.ndarray, np.ndarray]:
    """The square around a face, resized to ``side``, and its points in that square."""
    cx, cy, size = face_extent(points)
    k = side / (size * BANK_CONTEXT)
    m = np.array([[k, 0.0, side / 2 - k * cx], [0.0, k, side / 2 - k * cy]])
    image = cv2.warpAffine(photo, m, (side, side), flags=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REFLECT)
    return image, apply_affine(points, m).astype(np.float32)


def write_bank(path: Path, faces: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> Path:
    """Save (identity, photo, points) faces as one bank file."""
    cut = [cut_face(photo, pts) for _, photo, pts in faces]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        images=np.stack([c[0] for c in cut]) if cut else np.zeros((0, BANK_SIDE, BANK_SIDE, 3), np.uint8),
        points=np.stack([c[1] for c in cut]) if cut else np.zeros((0, 468, 2), np.float32),
        identities=np.array([f[0] for f in faces], dtype=str),
    )
    return path


def read_bank(path: Path) -> FaceBank:
    if not path.is_file():
        raise DatasetError(f"face bank not found: {path} (made by 'dfstream data build')")
    with np.load(path, allow_pickle=False) as z:
        bank = FaceBank(z["images"], z["points"].astype(np.float32), tuple(str(s) for s in z["identities"]))
    if not len(bank):
        raise DatasetError(f"{path}: the face bank holds no face")
    return bank


def read_banks(paths: Iterable[Path]) -> FaceBank:
    """Several bank files as one bank, in the order given (the build's train faces, then more)."""
    banks = [read_bank(p) for p in paths]
    if not banks:
        raise DatasetError("no face bank given")
    return FaceBank(
        np.concatenate([b.images for b in banks]),
        np.concatenate([b.points for b in banks]),
        tuple(who for b in banks for who in b.identities),
    )
