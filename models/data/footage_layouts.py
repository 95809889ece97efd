"""What ``dfstream data import`` finds in a data set's own folder layout: every video, its label and
method, who is in it (where the data set says), and the split its publishers chose (where they did).

Framework-free and cheap (paths and small JSON/text files only): no video is opened here.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from dfstream.models.data.splits import SPLITS, Split
from dfstream.stream.contract.exceptions import DatasetError

FootageKind = Literal["faceforensics", "celebdf", "dfdc", "folders"]
REAL_METHOD = "original"
"""Model B's class folder of genuine clips (notebook B's), and the kind prefix of genuine frames."""
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
FF_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
"""FaceForensics++'s methods whose originals are its YouTube videos (DeepFakeDetection's are actors)."""
CELEBDF_FOLDERS = {"Celeb-real": "real", "YouTube-real": "real", "Celeb-synthesis": "fake"}
CELEBDF_TEST_LIST = "List_of_testing_videos.txt"
DFDC_METHOD = "dfdc"
"""DFDC does not say which method made a fake: its fakes are one class."""


@dataclass(frozen=True)
class Video:
    """One video to import. ``group`` keeps its videos in one split (a person, a pair or an original
    and its fakes); ``split`` is the data set's own where it has one."""

    path: Path
    key: str
    """Unique within the import, file-name safe: names the output files."""
    method: str
    group: str
    split: Split | None = None
    partner_groups: tuple[str, ...] = ()
    """Other people a fake shows (a swap's pasted face), who must not sit in another split."""

    @property
    def label(self) -> int:
        return 0 if self.method == REAL_METHOD else 1


@dataclass(frozen=True)
class Discovery:
    videos: tuple[Video, ...]
    split_by: str
    """How the splits keep sets apart, in words, for the summary."""
    skipped: dict[str, int] = field(default_factory=dict)
    """Videos left out before any is opened, by reason."""


def safe(text: str) -> str:
    """A file-name piece: letters, digits, ``-`` and ``.``; never ``_`` (the frame index follows the last)."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-.") or "x"


def videos_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())


def _no_layout(root: Path, expected: str) -> DatasetError:
    return DatasetError(f"{root}: not the expected layout (expected {expected})")


# --- FaceForensics++ ---------------------------------------------------------------------------


def _ff_official_splits(root: Path, splits_dir: Path | None) -> dict[str, tuple[Split, str]] | None:
    """Video id → (split, pair group) from the official ``train/val/test.json`` (lists of id pairs)."""
    for folder in [splits_dir] if splits_dir else [root / "splits", root, root / "dataset" / "splits"]:
        if folder is None or not all((folder / f"{s}.json").is_file() for s in SPLITS):
            continue
        out: dict[str, tuple[Split, str]] = {}
        for split in SPLITS:
            path = folder / f"{split}.json"
            try:
                pairs = json.loads(path.read_text())
                for a, b in pairs:
                    group = "-".join(sorted((str(a), str(b))))
                    out[str(a)] = out[str(b)] = (split, group)
            except (ValueError, TypeError) as exc:
                raise DatasetError(f"{path}: not a list of [id, id] pairs ({exc})") from None
        return out
    if splits_dir is not None:
        raise DatasetError(f"{splits_dir}: needs train.json, val.json and test.json (FaceForensics++'s splits)")
    return None


class _Groups:
    """Union-find over ids: a fake ``a_b`` joins ``a`` and ``b``, so a pair never straddles splits."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def join(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def faceforensics(
    root: Path, compression: str, methods: Sequence[str] | None, splits_dir: Path | None
) -> Discovery:
    originals_dir = root / "original_sequences" / "youtube" / compression / "videos"
    if not originals_dir.is_dir():
        raise _no_layout(root, f"original_sequences/youtube/{compression}/videos")
    manipulated = root / "manipulated_sequences"
    found = sorted(p.name for p in manipulated.iterdir() if (p / compression / "videos").is_dir()) if (
        manipulated.is_dir()) else []
    if methods:
        unknown = [m for m in methods if m not in found]
        if "DeepFakeDetection" in methods:
            raise DatasetError("DeepFakeDetection's originals are actors' videos, not the YouTube originals: "
                               "import it with 'folders' and a class map")
        if unknown:
            raise DatasetError(f"{manipulated}: no {compression}/videos for method(s) {', '.join(unknown)} "
                               f"(found: {', '.join(found) or 'none'})")
        chosen = list(methods)
    else:
        chosen = [m for m in found if m != "DeepFakeDetection"]
    raw: list[tuple[Path, str, str, tuple[str, ...]]] = [(p, REAL_METHOD, p.stem, (p.stem,)) for p in videos_under(
        originals_dir)]
    for method in chosen:
        for p in videos_under(manipulated / method / compression / "videos"):
            raw.append((p, method, p.stem, tuple(p.stem.split("_")[:2])))
    official = _ff_official_splits(root, splits_dir)
    videos: list[Video] = []
    skipped: Counter[str] = Counter()
    if official is not None:
        for path, method, stem, ids in raw:
            if ids[0] not in official:
                skipped["outside the official splits"] += 1
                continue
            split, group = official[ids[0]]
            videos.append(Video(path, f"{safe(method)}.{safe(stem)}", method, group, split))
        return Discovery(tuple(videos), "the official pairs (train/val/test.json), each pair in one split",
                         dict(skipped))
    groups = _Groups()
    for _, _, _, ids in raw:
        for other in ids[1:]:
            groups.join(ids[0], other)
    videos = [Video(p, f"{safe(m)}.{safe(stem)}", m, groups.find(ids[0])) for p, m, stem, ids in raw]
    return Discovery(tuple(videos), "by video pair (no train/val/test.json found): a source and a target "
                     "video, and every fake made of them, stay in one split")


# --- Celeb-DF (v1 and v2) -----------------------------------------------------------------------

CELEB_NAME = re.compile(r"^(?P<target>id\d+)_(?:(?P<source>id\d+)_)?\d+$")


def _celebdf_test(root: Path) -> set[str]:
    path = root / CELEBDF_TEST_LIST
    if not path.is_file():
        return set()
    out = set()
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out.add(parts[-1].replace("\\", "/"))
    return out


def celebdf(root: Path) -> Discovery:
    if not any((root / name).is_dir() for name in CELEBDF_FOLDERS):
        raise _no_layout(root, ", ".join(CELEBDF_FOLDERS))
    test = _celebdf_test(root)
    videos: list[Video] = []
    for folder, cls in CELEBDF_FOLDERS.items():
        for p in videos_under(root / folder):
            rel = p.relative_to(root).as_posix()
            match = CELEB_NAME.match(p.stem)
            if match:  # the person whose video it is; a swap also shows its source's face
                group, partners = match["target"], (match["source"],) if match["source"] else ()
            else:  # YouTube-real: no names, each video its own
                group, partners = f"{safe(folder)}.{safe(p.stem)}", ()
            method = REAL_METHOD if cls == "real" else "Celeb-synthesis"
            videos.append(Video(p, f"{safe(folder)}.{safe(p.stem)}", method, group, "test" if rel in test else None,
                                partners))
    how = "by person (Celeb-DF's idN names; YouTube-real by video)"
    how += f"; test is {CELEBDF_TEST_LIST}" if test else f"; no {CELEBDF_TEST_LIST}, so test is drawn too"
    return Discovery(tuple(videos), how)


# --- DFDC ---------------------------------------------------------------------------------------


def dfdc(root: Path) -> Discovery:
    parts = sorted({p.parent for p in root.rglob("metadata.json")})
    video_dirs = sorted({p.parent for p in videos_under(root)})
    if not parts and not video_dirs:
        raise _no_layout(root, "DFDC parts: folders of .mp4 files with a metadata.json")
    skipped: Counter[str] = Counter()
    for folder in video_dirs:
        if folder not in parts:
            skipped["no metadata.json"] += len([p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES])
    videos: list[Video] = []
    for part in parts:
        path = part / "metadata.json"
        try:
            meta = json.loads(path.read_text())
            entries = {str(k): (str(v["label"]).upper(), v.get("original")) for k, v in meta.items()}
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise DatasetError(f"{path}: not DFDC metadata ({{name: {{label, original}}}}): {exc}") from None
        for name, (label, original) in sorted(entries.items()):
            p = part / name
            if not p.is_file():
                skipped["listed, not on disk"] += 1
                continue
            fake = label == "FAKE"
            group = Path(str(original)).stem if fake and original else Path(name).stem
            videos.append(Video(p, safe(Path(name).stem), DFDC_METHOD if fake else REAL_METHOD, safe(group)))
    return Discovery(tuple(videos), "by original video (DFDC names no people): each original and its fakes in "
                     "one split", dict(skipped))


# --- the user's own folders ---------------------------------------------------------------------


def folders(root: Path, class_map: dict[str, str], group_by: Literal["video", "folder"]) -> Discovery:
    mapping = class_map or {"real": "real", "fake": "fake"}
    present = [c for c in mapping if (root / c).is_dir()]
    if not present:
        raise _no_layout(root, " and ".join(f"{c}/" for c in mapping) + " folders of videos")
    videos: list[Video] = []
    for cls in present:
        method = REAL_METHOD if mapping[cls] == "real" else ("fake" if not class_map else safe(cls))
        for p in videos_under(root / cls):
            rel = p.relative_to(root / cls)
            where = rel.parent.as_posix()
            key = safe(f"{cls}/{rel.with_suffix('').as_posix()}".replace("/", "."))
            group = safe(where) if group_by == "folder" and where != "." else key
            videos.append(Video(p, key, method, group))
    how = "by the folder each video is in (--group-by folder)" if group_by == "folder" else (
        "by video: the folders name no people (use --group-by folder where a folder is one person)")
    return Discovery(tuple(videos), how)


def class_map_of(pairs: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, cls = pair.partition("=")
        if not sep or cls not in ("real", "fake") or not name:
            raise DatasetError(f"--class-map {pair!r}: expected FOLDER=real or FOLDER=fake")
        out[name] = cls
    return out
