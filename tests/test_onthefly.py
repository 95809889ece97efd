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
from dfstream.models.data.texture import global_augment, regional_change
from dfstream.models.train_onthefly import FrameStream, blend_targets


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


def test_a_pair_differs_by_the_manipulation_alone(bank: FaceBank) -> None:
    maker = FakeMaker(bank, FakeConfig(p_regional_real=0.0))
    for seed in range(6):
        genuine, fake = maker.pair(np.random.default_rng(seed), 96)
        again, _ = maker.pair(np.random.default_rng(seed), 96)
        assert np.array_equal(genuine.image, again.image)
        assert (genuine.label, fake.label) == (0, 1) and genuine.detail == "real"
        assert fake.detail.split("/")[0] in ("sbi", "swap")
        np.testing.assert_array_equal(genuine.points, fake.points)  # one framing for both
        centre = genuine.points.mean(axis=0)
        hull = cv2.convexHull((centre + (genuine.points - centre) * 1.6).astype(np.int32))
        far = np.ones((96, 96), np.uint8)
        cv2.fillConvexPoly(far, hull, 0)
        diff = np.abs(fake.image.astype(int) - genuine.image.astype(int)).sum(axis=2)
        assert diff[far == 0].mean() > 1.0, fake.detail  # the face differs
        assert np.percentile(diff[far == 1], 95) <= 6, fake.detail  # camera, codec and mirror are shared


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
    from dfstream.exceptions import DatasetError

    with pytest.raises(DatasetError, match="face bank not found"):
        read_bank(tmp_path / "none.npz")


def test_paired_batches_hold_each_fake_beside_its_genuine_picture(bank: FaceBank) -> None:
    x, y, _, _ = next(iter(FrameStream(FakeMaker(bank), 48, batch=7, seed=3, steps=1, paired=True)))
    assert x.shape == (7, 3, 48, 48) and y[:6].tolist() == [0.0, 1.0] * 3  # 3 pairs, then one single frame
    x2, _, _, _ = next(iter(FrameStream(FakeMaker(bank), 48, batch=7, seed=3, steps=1, paired=False)))
    assert not torch.equal(x, x2)


def test_a_fakes_mask_is_framed_and_mirrored_with_its_crop(bank: FaceBank) -> None:
    """Where a pair's fake differs from its genuine picture is where the fake's mask says it was pasted."""
    maker = FakeMaker(bank, FakeConfig(p_regional_real=0.0, p_degraded=0.0))
    for seed in range(8):
        genuine, fake = maker.pair(np.random.default_rng(seed), 96)
        assert genuine.mask is not None and fake.mask is not None
        assert genuine.mask.shape == (96, 96) and not genuine.mask.any()  # nothing pasted on a genuine face
        assert fake.mask.max() > 0.4, fake.detail
        diff = np.abs(fake.image.astype(int) - genuine.image.astype(int)).sum(axis=2)
        inside, outside = diff[fake.mask > 0.5].mean(), diff[fake.mask < 0.01].mean()
        assert inside > 3 * outside + 1, (fake.detail, inside, outside)


def test_retouched_genuine_faces_have_an_empty_mask(bank: FaceBank) -> None:
    maker = FakeMaker(bank, FakeConfig(p_regional_real=1.0, p_fake=0.0))
    sample = maker.frame(np.random.default_rng(5), 64)
    assert sample.detail == "real/retouched" and sample.mask is not None and not sample.mask.any()


def test_blend_targets_mark_the_region_and_a_band_on_its_edge() -> None:
    mask = np.zeros((128, 128), np.float32)
    mask[32:96, 32:96] = 1.0  # a hard paste
    region, band = blend_targets(mask, 8)
    assert region[3:5, 3:5].min() == 1.0 and region[0, 0] == 0.0
    assert band[1, 4] > 0.4 and band[2, 4] > 0.4 and band.max() == 1.0  # the edge at row 32: map rows 1 and 2
    assert band[4, 4] < 0.05 and band[0, 0] < 0.05  # neither the middle nor far outside
    assert not blend_targets(None, 8).any()


def test_fixed_frames_have_unknown_targets_unless_genuine(bank: FaceBank, clip_dataset: Path) -> None:
    from dfstream.models.datasets import scan_clip_folders

    refs = scan_clip_folders(clip_dataset)
    stream = FrameStream(FakeMaker(bank), 64, batch=8, seed=0, steps=1, fixed=refs, fixed_share=0.5, blend_maps=True)
    _, y, maps, known = next(iter(stream))
    assert maps.shape == (8, 2, 4, 4) and known[:4].all()  # made on the fly: targets known
    assert torch.equal(known[4:], y[4:] == 0)  # a fixed fake's mask is not known; a genuine face has none


def _sharpness(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def test_sharpness_both_ways_makes_pictures_crisper_and_softer(bank: FaceBank) -> None:
    """Some pictures come out sharper and some softer than the same draw without it."""
    crop = cv2.resize(bank.images[0], (96, 96))
    plain = [global_augment(crop, np.random.default_rng(s)) for s in range(200)]
    ratios = [_sharpness(global_augment(crop, np.random.default_rng(s), both_ways=True)) / max(_sharpness(p), 1e-6)
              for s, p in enumerate(plain)]  # fmt: skip
    assert sum(r > 1.2 for r in ratios) >= 10 and sum(r < 0.8 for r in ratios) >= 10


def test_a_denoise_share_cleans_grainy_pictures_and_leaves_the_draw_alone_when_zero() -> None:
    rng = np.random.default_rng(0)
    smooth = cv2.GaussianBlur(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8), (0, 0), 3)
    grainy = np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8)
    plain = [global_augment(grainy, np.random.default_rng(s)) for s in range(100)]
    off = [global_augment(grainy, np.random.default_rng(s), denoise_share=0.0) for s in range(100)]
    assert all(np.array_equal(a, b) for a, b in zip(plain, off, strict=True))  # runs without it are unchanged
    cleaned = [global_augment(grainy, np.random.default_rng(s), denoise_share=1.0) for s in range(100)]
    assert np.median([_sharpness(c) for c in cleaned]) < 0.5 * np.median([_sharpness(p) for p in plain])


def test_fixed_frames_get_the_global_changes_only_with_sharpness_both_ways(bank: FaceBank, clip_dataset: Path) -> None:
    from dfstream.models.datasets import scan_clip_folders

    refs = scan_clip_folders(clip_dataset)

    def fixed_half(both: bool) -> torch.Tensor:
        maker = FakeMaker(bank, FakeConfig(sharpness_both_ways=both))
        x, _, _, _ = next(iter(FrameStream(maker, 64, batch=8, seed=0, steps=1, fixed=refs, fixed_share=0.5)))
        assert x.shape == (8, 3, 64, 64) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
        return x[4:]

    assert not torch.equal(fixed_half(True), fixed_half(False))
    assert torch.equal(fixed_half(False), fixed_half(False))


@pytest.mark.parametrize("option", ["denoise_share", "colour_share"])
def test_fixed_frames_change_with_a_denoise_or_colour_share(option: str, bank: FaceBank, clip_dataset: Path) -> None:
    from dfstream.models.datasets import scan_clip_folders

    refs = scan_clip_folders(clip_dataset)

    def fixed_half(share: float) -> torch.Tensor:
        maker = FakeMaker(bank, FakeConfig(**{option: share}))
        x, _, _, _ = next(iter(FrameStream(maker, 64, batch=8, seed=0, steps=1, fixed=refs, fixed_share=0.5)))
        return x[4:]

    assert not torch.equal(fixed_half(1.0), fixed_half(0.0))
    assert torch.equal(fixed_half(0.0), fixed_half(0.0))


def _chroma(img: np.ndarray) -> float:
    return float(cv2.cvtColor(img, cv2.COLOR_BGR2HSV)[..., 1].mean())


def test_a_colour_share_makes_pictures_greyer_and_more_vivid_and_leaves_the_draw_alone_when_zero() -> None:
    rng = np.random.default_rng(0)
    colourful = cv2.GaussianBlur(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8), (0, 0), 2)
    plain = [global_augment(colourful, np.random.default_rng(s)) for s in range(100)]
    off = [global_augment(colourful, np.random.default_rng(s), colour_share=0.0) for s in range(100)]
    assert all(np.array_equal(a, b) for a, b in zip(plain, off, strict=True))  # runs without it are unchanged
    changed = [global_augment(colourful, np.random.default_rng(s), colour_share=1.0) for s in range(100)]
    ratios = [_chroma(c) / max(_chroma(p), 1e-6) for c, p in zip(changed, plain, strict=True)]
    assert sum(r < 0.05 for r in ratios) >= 15  # grey
    assert sum(r > 1.2 for r in ratios) >= 15 and sum(0.1 < r < 0.8 for r in ratios) >= 15  # vivid, paler
