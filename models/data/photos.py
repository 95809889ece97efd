"""Faces in the fetched photos: MediaPipe face-mesh points per face, and who each face is.

Identity is what the splits are made of, so it is decided here, once: one face per person in a
group photo, and files a package names after a person (``obama2.jpg``) share that person.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from dfstream.models.data.manipulate import face_extent
from dfstream.stream.contract.types import FaceObs
from dfstream.stream.crops import square_around
from dfstream.stream.faces import FaceStage, face_from_points

log = logging.getLogger(__name__)

MIN_FACE_PX = 64
"""Faces smaller than this in the photo would only be upscaled blur in a clip; they are skipped."""
EDGE_MARGIN = 0.15
"""A face must have this share of its size free on every side inside the photo: a face cut by the
photo's edge would show mirrored or blank borders inside its crop."""
MAX_FACES_PER_PHOTO = 16
SHEET_WINDOW = 192
"""A contact sheet of face thumbnails defeats whole-image detection (no face is found in it), so
sheets are searched in windows of this side, overlapping by half."""
SHEET_EDGE_PX = 2
"""A face this close to its window's edge is cut by it: the neighbouring window holds it whole."""
SHEET_SAME_PLACE = 0.3
"""Faces from two windows whose centres are closer than this share of the face size are one face."""
PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".ppm"})
WHOLE_PACKAGE_GROUPS = frozenset({"face-api"})
"""Packages whose photos show some people more than once: all their faces go to one split."""
NAMED_PERSON_SOURCES = frozenset({"face_recognition", "kphotoalbum"})
"""Packages that name a photo after its person (``obama2.jpg``, ``donna_2.jpg``)."""
ONE_PERSON_PHOTOS = frozenset({"menpo3d/james"})
"""Photos that show one person several times (a face scan's two camera views)."""


@dataclass(frozen=True)
class Photo:
    source: str
    path: Path
    test_only: bool = False
    """People kept out of training altogether: their faces go to the test split only."""
    val_only: bool = False
    """People kept for validation only: their faces go to the validation split."""
    bank_only: bool = False
    """Its faces are material for fakes made on the fly only (the thumbnails bank): never a fixed
    clip, a donor or a split."""
    windows: bool = False
    """Searched window by window as well as whole (contact sheets, group photos of small faces)."""


@dataclass(frozen=True, eq=False)
class SourceFace:
    identity: str
    photo: Path
    points: np.ndarray = field(repr=False)
    """468×2 face-mesh pixels in the photo."""
    test_only: bool = False
    bank_only: bool = False
    """In the training face bank only: never in a fixed clip, a split's group count or a donor list."""
    val_only: bool = False

    @property
    def group(self) -> str:
        """The unit of the train/val/test split: no group is in two splits."""
        source = self.identity.split("/", 1)[0]
        return source if source in WHOLE_PACKAGE_GROUPS else self.identity

    @property
    def size_px(self) -> float:
        return face_extent(self.points)[2]


@dataclass(frozen=True)
class FaceIndex:
    faces: tuple[SourceFace, ...]
    photos: int
    unlandmarked: int
    """Photos (or LFW images) in which MediaPipe found no face."""
    too_small: int
    at_edge: int = 0


def inside(bbox: tuple[float, float, float, float], shape: tuple[int, ...]) -> bool:
    x, y, w, h = bbox
    m = EDGE_MARGIN * max(w, h)
    return x - m >= 0 and y - m >= 0 and x + w + m <= shape[1] and y + h + m <= shape[0]


def person_key(source: str, name: str, face_no: int, faces_in_photo: int) -> str:
    """``source/person``: a named file's person, else the face's own slot in its photo."""
    if f"{source}/{name}" in ONE_PERSON_PHOTOS:
        return f"{source}/{name}"
    if source in NAMED_PERSON_SOURCES and faces_in_photo == 1:
        return f"{source}/{re.sub(r'[^a-z]+.*$', '', name.lower())}"
    return f"{source}/{name}" if faces_in_photo == 1 else f"{source}/{name}#{face_no}"


def read_photo(path: Path) -> np.ndarray | None:
    return cv2.imread(str(path), cv2.IMREAD_COLOR)


def _images(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """(name, BGR image) of each picture in a fetched file: one per photo; scikit-image's
    lfw_subset.npy holds 200 grey 25×25 images, of which the first 100 are faces."""
    if path.suffix == ".npy":
        stack = np.load(path, allow_pickle=False)
        for i, img in enumerate(stack[:100]):
            grey = np.clip(np.asarray(img, dtype=np.float32) * (255.0 if img.max() <= 1.0 else 1.0), 0, 255)
            yield f"{path.stem}-{i}", cv2.cvtColor(grey.astype(np.uint8), cv2.COLOR_GRAY2BGR)
        return
    image = read_photo(path) if path.suffix.lower() in PHOTO_SUFFIXES else None
    if image is None:
        log.warning("%s: not a readable photo; skipped", path)
        return
    yield path.stem, image


def _starts(length: int, window: int) -> list[int]:
    """Window origins along one side, overlapping by half, the last flush with the far edge."""
    last = max(length - window, 0)
    starts = list(range(0, last + 1, window // 2))
    return starts if starts[-1] == last else [*starts, last]


def sheet_faces(stage: FaceStage, image: np.ndarray, window: int = SHEET_WINDOW) -> list[FaceObs]:
    """Every face of a contact sheet or a group photo, each once, in its pixels: those a
    whole-image search finds (faces larger than a window), then those of each window."""
    h, w = image.shape[:2]
    found: list[FaceObs] = list(stage(image))
    places = [square_around(f.bbox, 1.0) for f in found]  # centre x, centre y and size of each face
    for y in _starts(h, window):
        for x in _starts(w, window):
            part = image[y : y + window, x : x + window]
            for face in stage(part):
                bx, by, bw, bh = face.bbox
                room = min(bx, by, part.shape[1] - bx - bw, part.shape[0] - by - bh)
                if room < SHEET_EDGE_PX:
                    continue
                whole = face_from_points(face.points + np.array([x, y], np.float32))
                place = square_around(whole.bbox, 1.0)
                if any(np.hypot(place[0] - ox, place[1] - oy) < SHEET_SAME_PLACE * size for ox, oy, size in places):
                    continue
                found.append(whole)
                places.append(place)
    return found


def index_faces(photos: list[Photo]) -> FaceIndex:
    """Landmark every face in the photos with MediaPipe in still-image mode."""
    stage = FaceStage(max_faces=MAX_FACES_PER_PHOTO, video=False)
    faces: list[SourceFace] = []
    read = unlandmarked = too_small = at_edge = 0
    try:
        for photo in photos:
            for name, image in _images(photo.path):
                read += 1
                found = sheet_faces(stage, image) if photo.windows else stage(image)
                if not found:
                    unlandmarked += 1
                    continue
                big = [f for f in found if max(f.bbox[2:]) >= MIN_FACE_PX]
                kept = [f for f in big if inside(f.bbox, image.shape)]
                too_small += len(found) - len(big)
                at_edge += len(big) - len(kept)
                kept.sort(key=lambda f: (f.bbox[0], f.bbox[1]))  # stable face numbers, left to right
                for no, f in enumerate(kept):
                    key = person_key(photo.source, name, no, len(kept))
                    faces.append(
                        SourceFace(key, photo.path, f.points.copy(), photo.test_only, photo.bank_only, photo.val_only)
                    )
    finally:
        stage.close()
    return FaceIndex(tuple(faces), read, unlandmarked, too_small, at_edge)
