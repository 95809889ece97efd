"""Fakes made on the fly: deterministic per seed, new every epoch, confined to the face, every variant reachable."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dfstream.models.data.bank import FaceBank, read_bank
from dfstream.models.data.fakes import random_mask, self_blend, swap
from dfstream.models.data.onthefly import FakeConfig, FakeMaker
from dfstream.models.data.texture import regional_change
from dfstream.models.train_onthefly import FrameStream


@pytest.fixture(scope="module")
def bank(face_bank_path: Path) -> FaceBank:
    return read_bank(face_bank_path)


def _outside(bank: FaceBank, i: int, grow: float) -> np.ndarray:
    """Pixels farther than ``grow`` × the face's span from its hull."""
    pts = bank.points[i]
    centre = pts.mean(axis=0)
    hull = cv2.convexHull((centre + (pts - centre) * grow).astype(np.int32))
    inside = np.zeros(bank.images.shape[1:3], np.uint8)
    cv2.fillConvexPoly(inside, hull, 1)
    return inside == 0


def test_bank_round_trip_keeps_faces_and_points(bank: FaceBank) -> None:
    assert len(bank) == 3 and bank.people() == ["a", "b", "c"]
    assert bank.images.shape == (3, 320, 320, 3) and bank.points.shape == (3, 468, 2)
    assert (bank.points > 0).all() and (bank.points < 320).all()


def test_masks_stay_inside_the_face(bank: FaceBank) -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = random_mask(bank.images.shape[1:3], bank.points[0], rng)
        assert mask.max() > 0.99 and mask.min() >= 0.0
        assert mask[_outside(bank, 0, 1.25)].max() < 1e-2  # Gaussian edge tails only


def test_manipulations_change_the_face_not_the_background(bank: FaceBank) -> None:
    rng = np.random.default_rng(1)
    far = _outside(bank, 0, 1.6)
    for _ in range(6):
        out = self_blend(bank.images[0], bank.points[0], rng).image
        diff = np.abs(out.astype(int) - bank.images[0].astype(int)).sum(axis=2)
        assert diff[~far].mean() > 1.0  # the face changed
        assert np.percentile(diff[far], 99) <= 3  # the surroundings did not (rounding only)
        made = swap(bank.images[0], bank.points[0], bank.images[1], bank.points[1], rng)
        out, detail = made.image, made.detail
        diff = np.abs(out.astype(int) - bank.images[0].astype(int)).sum(axis=2)
        assert detail.startswith("swap/") and diff[~far].mean() > 1.0
        assert np.percentile(diff[far], 99) <= 3, detail


def test_genuine_retouching_leaves_the_face_in_place(bank: FaceBank) -> None:
    rng = np.random.default_rng(2)
    mask = random_mask(bank.images.shape[1:3], bank.points[0], rng)
    out = regional_change(bank.images[0], mask, rng)
    assert out.shape == bank.images[0].shape and not np.array_equal(out, bank.images[0])


def test_same_seed_same_samples_and_each_epoch_new_fakes(bank: FaceBank) -> None:
    maker = FakeMaker(bank)
    first = [maker.frame(np.random.default_rng([7, 0]), 64) for _ in range(1)]
    again = [maker.frame(np.random.default_rng([7, 0]), 64) for _ in range(1)]
    assert all(np.array_equal(a.image, b.image) and a.detail == b.detail for a, b in zip(first, again, strict=True))
    fakes = [maker.frame(np.random.default_rng([7, epoch]), 64, fake=True) for epoch in range(5)]
    assert len({f.image.tobytes() for f in fakes}) == 5
    assert all(f.label == 1 for f in fakes)


def test_every_kind_is_made_and_an_excluded_variant_never(bank: FaceBank) -> None:
    rng = np.random.default_rng(3)
    made = Counter(FakeMaker(bank).frame(rng, 48).detail.split("/")[0] for _ in range(120))
    assert set(made) == {"real", "sbi", "swap"}
    blocked = FakeMaker(bank, FakeConfig(exclude="swap/piecewise", p_fake=1.0))
    details = {blocked.frame(rng, 48).detail for _ in range(60)}
    assert not any(d.startswith("swap/piecewise") for d in details)
    assert any(d.startswith("swap/") for d in details)
    no_swaps = FakeMaker(bank, FakeConfig(exclude="swap", p_fake=1.0))
    assert {no_swaps.frame(rng, 48).detail.split("/")[0] for _ in range(40)} == {"sbi"}


def test_clip_keeps_one_manipulation_and_its_landmarks(bank: FaceBank) -> None:
    frames, lmks, label, detail = FakeMaker(bank).clip(np.random.default_rng(4), 64, fake=True)
    assert frames.shape == (16, 64, 64, 3) and frames.dtype == np.uint8
    assert lmks.shape == (16, 5) and np.isfinite(lmks).all()
    assert label == 1 and detail.split("/")[0] in ("sbi", "swap")
    assert len({f.tobytes() for f in frames}) > 8  # the camera moves and the codec varies per frame


def test_bank_of_a_missing_file_is_a_one_line_error(tmp_path: Path) -> None:
    from dfstream.stream.contract.exceptions import DatasetError

    with pytest.raises(DatasetError, match="face bank not found"):
        read_bank(tmp_path / "none.npz")



def test_a_batch_holds_the_made_frames_then_frames_of_the_fixed_clips(bank: FaceBank, clip_dataset: Path) -> None:
    from dfstream.models.datasets import load_clip_frame, scan_clip_folders
    from dfstream.stream.contract.types import CLIP_LEN

    refs = scan_clip_folders(clip_dataset)
    stream = FrameStream(FakeMaker(bank), 64, batch=8, seed=0, steps=1, fixed=refs, fixed_share=0.5)
    x, y = next(iter(stream))
    again, _ = next(iter(stream))
    assert x.shape == (8, 3, 64, 64) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert torch.equal(x, again), "batch k is not a function of the seed and k"
    frames = [(r.label, load_clip_frame(r, i, 64)) for r in refs for i in range(CLIP_LEN)]
    for image, label in zip(x[4:].numpy(), y[4:].tolist(), strict=True):
        assert any(lab == label and (np.array_equal(image, f) or np.array_equal(image, f[:, :, ::-1]))
                   for lab, f in frames), "a fixed frame that is no clip's frame, or with another label"
    assert not any(np.array_equal(image, f) for image in x[:4].numpy() for _, f in frames)
