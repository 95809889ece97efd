"""``dfstream data build``: real faces from packages → genuine and manipulated clips, split by
identity, written in both origin notebooks' layouts.

* ``OUT/frames/{train,val,test}/{real,fake}/{kind}__{video}_{i}.jpg`` — model A (notebook A);
* ``OUT/clips/{train,val,test}/{original,sbi,swap}/{video}_{i}.jpg + .npy`` — model B (notebook
  B's class folders, one root per split so the splits stay identity-disjoint).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from tqdm import tqdm

from dfstream.models.configs import BuildConfig
from dfstream.models.data import clips
from dfstream.models.data.bank import write_bank
from dfstream.models.data.manipulate import BlendParams, self_blend
from dfstream.models.data.packages import FetchReport, fetch_all
from dfstream.models.data.photos import FaceIndex, Photo, SourceFace, index_faces, read_photo
from dfstream.models.data.splits import SPLITS, Split, assign_splits
from dfstream.models.data.swap import face_swap
from dfstream.models.metrics import KIND_SEPARATOR
from dfstream.stream.contract.exceptions import DatasetError
from dfstream.stream.landmarks import lmk5

log = logging.getLogger(__name__)

Kind = Literal["original", "sbi", "swap"]
THUMBNAILS_BANK = "thumbnails.npz"
"""Thumbnail faces for training fakes only (``train --faces faces/train.npz --faces faces/thumbnails.npz``);
a file of its own, so that ``faces/train.npz`` and what is trained on it stay as they were."""


@dataclass(frozen=True)
class ClipPlan:
    video: str
    split: Split
    kind: Kind
    face: int
    donor: int | None
    seed: int
    """Seeds the manipulation."""
    camera_seed: int
    """Seeds camera, light, noise and codec. A fake clip shares it with one genuine clip of the same
    face, so the pair differs only by the manipulation: what the models must learn, nothing else."""


@dataclass(frozen=True)
class BuildSummary:
    faces: int
    photos: int
    unlandmarked: int
    too_small: int
    at_edge: int
    failed_packages: tuple[str, ...]
    identities: dict[str, int]
    clips: dict[str, dict[str, int]]
    frames_a: dict[str, dict[str, int]]
    fallback_frames: int
    swaps_without_donor: int = 0
    unseen: tuple[str, ...] = ()
    """Files kept apart for false-alarm checks (never trained on)."""
    bank_only_faces: int = 0
    """Thumbnail faces in the training face bank only (no fixed clips)."""
    softer_pastes_only: bool = False
    webrtc_share: float = 0.0


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


def plan_clips(faces: Sequence[SourceFace], cfg: BuildConfig) -> tuple[list[ClipPlan], int]:
    """Every clip to render, with its split, kind and (for swaps) a donor of another identity
    in the same split with the closest head yaw. Returns the plans and swaps left without donor."""
    # bank-only faces (thumbnails) feed training fakes only: never a clip, a donor or a split group
    clip_faces = [(i, f) for i, f in enumerate(faces) if not f.bank_only]
    groups = Counter(f.group for _, f in clip_faces)
    held_out = frozenset(f.group for _, f in clip_faces if f.test_only)
    # validation-only people are placed apart, so that every other group lands where it did without them
    val_only = frozenset(f.group for _, f in clip_faces if f.val_only)
    others = {g: n for g, n in groups.items() if g not in val_only}
    split_of = assign_splits(others, cfg.seed, cfg.fractions, held_out) | dict.fromkeys(val_only, "val")
    yaw = {i: float(lmk5(f.points)[3]) for i, f in clip_faces}
    counts: tuple[tuple[Kind, int], ...] = (
        ("original", cfg.genuine_per_face),
        ("sbi", cfg.sbi_per_face),
        ("swap", cfg.swap_per_face),
    )
    rng = np.random.default_rng(cfg.seed)
    plans: list[ClipPlan] = []
    orphans = 0
    for i, face in clip_faces:
        split = split_of[face.group]
        # validation-only people lend their faces to each other only: every other clip stays as it was
        donors = [
            j for j, g in clip_faces
            if split_of[g.group] == split and g.identity != face.identity and (face.val_only or not g.val_only)
        ]
        donors.sort(key=lambda j: abs(yaw[j] - yaw[i]))
        cameras = [int(c) for c in rng.integers(0, 2**31 - 1, max(cfg.genuine_per_face, 1))]
        fakes = 0
        for kind, n in counts:
            for k in range(n):
                donor = None
                if kind == "swap":
                    if not donors:
                        orphans += 1
                        continue
                    donor = donors[int(rng.integers(0, min(3, len(donors))))]
                if kind == "original":
                    camera = cameras[k]
                else:
                    camera, fakes = cameras[fakes % len(cameras)], fakes + 1
                video = f"{slug(face.identity)}-f{i:03d}-{kind}-{k:02d}"
                plans.append(ClipPlan(video, split, kind, i, donor, int(rng.integers(0, 2**31 - 1)), camera))
    return plans, orphans


def draw_blend(rng: np.random.Generator, both_ways: bool = True) -> BlendParams:
    """Ranges after the self-blended-images recipe: mild to clear colour and geometry mismatch,
    soft to sharp mask edges, and partial blends. Half the pasted copies are sharpened instead of
    blurred: with blur alone, "a softer face" would separate the fixed clips' classes (training,
    validation and test alike), and a detector that learned it fails a sharp face pasted on soft video."""
    params = BlendParams(
        scale=float(rng.uniform(0.94, 1.08)),
        shift=(float(rng.uniform(-4, 4)), float(rng.uniform(-4, 4))),
        hue=int(rng.integers(-10, 11)),
        saturation=float(rng.uniform(0.8, 1.25)),
        brightness=float(rng.uniform(0.85, 1.15)),
        blur=int(rng.choice([1, 3, 5, 7])),
        feather=float(rng.uniform(0.02, 0.15)),
        opacity=float(rng.choice([0.5, 0.75, 1.0, 1.0, 1.0])),
    )
    if both_ways and rng.random() < 0.5:
        return replace(params, blur=1, sharpen=float(rng.uniform(1.0, 3.0)))
    return params


class PhotoCache:
    """Decoded photos by path; group photos are used by many clips."""

    def __init__(self) -> None:
        self._images: dict[Path, np.ndarray] = {}

    def __call__(self, path: Path) -> np.ndarray:
        if path not in self._images:
            img = read_photo(path)
            if img is None:
                raise DatasetError(f"{path}: failed to decode")
            self._images[path] = img
        return self._images[path]


def render(plan: ClipPlan, faces: Sequence[SourceFace], photos: PhotoCache, cfg: BuildConfig) -> clips.ClipFrames:
    rng = np.random.default_rng(plan.seed)
    face = faces[plan.face]
    patch, points = clips.face_patch(photos(face.photo), face.points)
    if plan.kind == "sbi":
        patch = self_blend(patch, points, draw_blend(rng, both_ways=not cfg.softer_pastes_only))
    elif plan.kind == "swap" and plan.donor is not None:
        donor = faces[plan.donor]
        d_patch, d_points = clips.face_patch(photos(donor.photo), donor.points)
        patch = face_swap(
            patch, points, d_patch, d_points, seamless=bool(rng.random() < 0.5), feather=float(rng.uniform(0.04, 0.12))
        )
    camera_rng = np.random.default_rng(plan.camera_seed)
    cam = clips.draw_camera(camera_rng, face.size_px, cfg.webrtc_share)
    frames, expected = clips.film(patch, points, cam, cfg.frames, camera_rng)
    return clips.landmark_and_crop(frames, expected, cfg.size_a, cfg.size_b)


def write_clip(plan: ClipPlan, got: clips.ClipFrames, out: Path, frame_every: int) -> int:
    """Both layouts; returns how many frames went to model A's folders."""
    b_dir = out / "clips" / plan.split / plan.kind
    a_dir = out / "frames" / plan.split / ("real" if plan.kind == "original" else "fake")
    b_dir.mkdir(parents=True, exist_ok=True)
    a_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    for i, (crop_b, values) in enumerate(zip(got.crops_b, got.lmks, strict=True)):
        cv2.imwrite(str(b_dir / f"{plan.video}_{i}.jpg"), crop_b, [cv2.IMWRITE_JPEG_QUALITY, 95])
        np.save(b_dir / f"{plan.video}_{i}.npy", values.astype(np.float32))
        if i % frame_every == 0:
            name = f"{plan.kind}{KIND_SEPARATOR}{plan.video}_{i}.jpg"
            cv2.imwrite(str(a_dir / name), got.crops_a[i], [cv2.IMWRITE_JPEG_QUALITY, 95])
            written += 1
    return written


def photos_of(report: FetchReport, cache: Path) -> list[Photo]:
    return [
        Photo(f.source, cache / f.path, f.role == "test", f.role == "val", f.role == "bank", f.windows)
        for f in report.files
        if f.role in ("train", "test", "val", "bank")
    ]


def build(cfg: BuildConfig, report: FetchReport | None = None) -> BuildSummary:
    """Fetch (unless a report is given), index faces, plan, render and write; replaces ``cfg.out``."""
    report = report if report is not None else fetch_all(cfg.cache)
    index: FaceIndex = index_faces(photos_of(report, cfg.cache))
    log.info(
        "%d face(s) in %d photo(s); %d without a landmarkable face, %d too small, %d cut by the photo's edge",
        len(index.faces),
        index.photos,
        index.unlandmarked,
        index.too_small,
        index.at_edge,
    )
    if not index.faces:
        raise DatasetError(
            f"no usable face in {index.photos} photo(s) from {len(report.files)} fetched file(s); nothing to build"
        )
    plans, orphans = plan_clips(index.faces, cfg)
    if cfg.out.exists():
        shutil.rmtree(cfg.out)
    cfg.out.mkdir(parents=True)
    photos = PhotoCache()
    clip_counts: dict[str, Counter[str]] = defaultdict(Counter)
    frame_counts: dict[str, Counter[str]] = defaultdict(Counter)
    fallbacks = 0
    for plan in tqdm(plans, desc="clips", unit="clip"):
        got = render(plan, index.faces, photos, cfg)
        fallbacks += got.fallbacks
        frame_counts[plan.split][plan.kind] += write_clip(plan, got, cfg.out, cfg.frame_every)
        clip_counts[plan.split][plan.kind] += 1
    splits = {s: sorted({index.faces[p.face].identity for p in plans if p.split == s}) for s in SPLITS}
    write_banks(cfg.out, index.faces, {p.face: p.split for p in plans}, photos)
    bank_only = [(f.identity, photos(f.photo), f.points) for f in index.faces if f.bank_only]
    if bank_only:
        write_bank(cfg.out / "faces" / THUMBNAILS_BANK, bank_only)
    convert_weights(report, cfg.cache, cfg.out)
    summary = BuildSummary(
        faces=len(index.faces),
        photos=index.photos,
        unlandmarked=index.unlandmarked,
        too_small=index.too_small,
        at_edge=index.at_edge,
        failed_packages=report.failed,
        identities={s: len(people) for s, people in splits.items()},
        clips={s: dict(clip_counts[s]) for s in SPLITS},
        frames_a={s: dict(frame_counts[s]) for s in SPLITS},
        fallback_frames=fallbacks,
        swaps_without_donor=orphans,
        unseen=tuple(f.path for f in report.files if f.role == "unseen"),
        bank_only_faces=len(bank_only),
        softer_pastes_only=cfg.softer_pastes_only,
        webrtc_share=cfg.webrtc_share,
    )
    (cfg.out / "summary.json").write_text(json.dumps(asdict(summary), indent=2) + "\n")
    (cfg.out / "splits.json").write_text(json.dumps(splits, indent=2) + "\n")
    shutil.copyfile(cfg.cache / "manifest.json", cfg.out / "manifest.json")
    write_preview(cfg.out, cfg.out / "preview.png")
    return summary


def write_banks(out: Path, faces: Sequence[SourceFace], split_of: dict[int, Split], photos: PhotoCache) -> None:
    """``faces/<split>.npz``: each split's genuine faces with mesh points, for fakes made on the fly."""
    for split in SPLITS:
        chosen = [(faces[i].identity, photos(faces[i].photo), faces[i].points)
                  for i, s in split_of.items() if s == split]
        write_bank(out / "faces" / f"{split}.npz", chosen)


def convert_weights(report: FetchReport, cache: Path, out: Path) -> Path | None:
    """The fetched EfficientNet-Lite0 ImageNet weights in model B's encoder layout, or None (logged)."""
    from dfstream.models.imagenet_init import CONVERTED_NAME, write_converted

    files = [f for f in report.files if f.role == "weights"]
    if not files:
        log.warning("no ImageNet weights fetched: model B's encoder will start from random weights")
        return None
    path = write_converted(cache / files[0].path, out / "weights" / CONVERTED_NAME)
    log.info("ImageNet weights converted to %s", path)
    return path


def write_preview(out: Path, path: Path, faces: Sequence[str] | None = None, size: int = 160) -> Path:
    """One row per face: frame 0 of its first genuine, self-blended and swapped clip, to eyeball
    what the models learn from. ``faces`` picks video-name prefixes; default: the first six."""
    rows = []
    originals = sorted((out / "clips").glob("*/original/*-original-00_0.jpg"))
    for first in originals:
        prefix = first.name.removesuffix("-original-00_0.jpg")
        if faces is not None and not any(prefix.startswith(f) for f in faces):
            continue
        tiles = []
        for kind in ("original", "sbi", "swap"):
            tile = first.parent.parent / kind / f"{prefix}-{kind}-00_0.jpg"
            img = cv2.imread(str(tile)) if tile.is_file() else np.zeros((size, size, 3), np.uint8)
            tiles.append(cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA))
        rows.append(np.hstack(tiles))
        if faces is None and len(rows) == 6:
            break
    if not rows:
        raise DatasetError(f"{out}: no genuine clip to preview")
    cv2.imwrite(str(path), np.vstack(rows))
    return path


def summary_lines(s: BuildSummary) -> list[str]:
    lines = [
        f"faces: {s.faces} from {s.photos} photo(s); skipped {s.unlandmarked} not landmarked, "
        f"{s.too_small} too small, {s.at_edge} at the photo's edge; "
        f"{s.fallback_frames} frame(s) placed by camera motion"
    ]
    for split in SPLITS:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(s.clips[split].items()))
        frames = sum(s.frames_a[split].values())
        lines.append(f"{split:5s}: {s.identities[split]} identities | clips: {kinds} | model-A frames: {frames}")
    if s.softer_pastes_only:
        lines.append("self-blends: every pasted copy blurred (--softer-pastes-only), none sharpened")
    lines.append(f"codecs: {s.webrtc_share:.0%} of the clips through a browser call's VP8/VP9 (--webrtc-share), "
                 "the rest JPEG or H.264")
    if s.bank_only_faces:
        lines.append(
            f"faces/{THUMBNAILS_BANK}: {s.bank_only_faces} face(s) of people in no split, for training fakes only"
        )
    lines += [f"failed: {line}" for line in s.failed_packages]
    if s.unseen:
        lines.append(f"kept apart (never trained on): {', '.join(s.unseen)}")
    return lines
