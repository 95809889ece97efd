"""``dfstream data import``: a data set's videos → both notebooks' layouts, resumable.

The first run fixes a plan (``import-plan.json``: every video, its split and its group) and every
finished video is a line of ``import-log.jsonl``. A second run with the same options reads both and
imports only what is missing, so an interrupted import goes on where it stopped and writes no file
twice; different options on the same folder are refused rather than mixed.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from dfstream.models.configs import ImportConfig
from dfstream.models.data import footage_layouts as layouts
from dfstream.models.data.footage_layouts import Discovery, Video
from dfstream.models.data.footage_video import STAGING, VideoResult, VideoTask, import_video
from dfstream.models.data.splits import SPLITS, Split, assign_splits
from dfstream.stream.contract.exceptions import DatasetError
from dfstream.stream.event_store import append_line, drop_cut_line

log = logging.getLogger(__name__)

PLAN_FILE = "import-plan.json"
LOG_FILE = "import-log.jsonl"
SUMMARY_FILE = "import-summary.json"
FRACTIONS = (0.7, 0.15, 0.15)
FRACTIONS_BESIDE_TEST = (0.8, 0.2, 0.0)
"""Where the data set names its own test videos, the rest goes to train and validation only."""
PLAN_OPTIONS = ("kind", "frames_per_video", "clips_per_video", "max_faces", "min_face", "seed", "compression",
                "methods", "class_map", "group_by")
"""What the files depend on: a second run must match them to go on (workers and limit may change)."""


def discover(cfg: ImportConfig) -> Discovery:
    if not cfg.root.is_dir():
        raise DatasetError(f"{cfg.root}: no such folder")
    if cfg.kind == "faceforensics":
        return layouts.faceforensics(cfg.root, cfg.compression, cfg.methods, cfg.splits)
    if cfg.kind == "celebdf":
        return layouts.celebdf(cfg.root)
    if cfg.kind == "dfdc":
        return layouts.dfdc(cfg.root)
    return layouts.folders(cfg.root, layouts.class_map_of(cfg.class_map), cfg.group_by)


@dataclass(frozen=True)
class Plan:
    videos: tuple[tuple[Video, Split], ...]
    split_by: str
    skipped: dict[str, int]
    shared_with_test: int
    """Groups (people) with videos in test and in train or val: the data set's own test list did that."""


def _unique_keys(videos: tuple[Video, ...]) -> list[Video]:
    seen: Counter[str] = Counter()
    out = []
    for v in videos:
        seen[v.key] += 1
        out.append(v if seen[v.key] == 1 else replace(v, key=f"{v.key}.{seen[v.key]}"))
    return out


def plan_splits(found: Discovery, seed: int) -> Plan:
    """Each video's split: the data set's own where it has one, else its whole group's, drawn by size;
    a fake showing a person of another split (a swap's pasted face) is left out."""
    videos = _unique_keys(found.videos)
    free = Counter(v.group for v in videos if v.split is None)
    has_test = any(v.split == "test" for v in videos)
    drawn = assign_splits(dict(free), seed, FRACTIONS_BESIDE_TEST if has_test else FRACTIONS)
    skipped = Counter(found.skipped)
    out: list[tuple[Video, Split]] = []
    for v in videos:
        split = v.split or drawn[v.group]
        if v.split is None and any(drawn.get(p, split) != split for p in v.partner_groups):
            skipped["shows a person of another split"] += 1
            continue
        out.append((v, split))
    splits_of: dict[str, set[str]] = defaultdict(set)
    for v, split in out:
        splits_of[v.group].add(split)
    shared = sum(1 for s in splits_of.values() if "test" in s and len(s) > 1)
    order = np.random.default_rng(seed).permutation(len(out))  # a --limit trial gets every class
    return Plan(tuple(out[i] for i in order), found.split_by, dict(skipped), shared)


def _plan_options(cfg: ImportConfig) -> dict[str, Any]:
    """The options the files depend on, as the plan file stores them (tuples as lists)."""
    options: dict[str, Any] = json.loads(json.dumps({k: getattr(cfg, k) for k in PLAN_OPTIONS}))
    return options


def _plan_json(cfg: ImportConfig, plan: Plan) -> dict[str, Any]:
    return {
        "root": str(cfg.root.resolve()),
        "options": _plan_options(cfg),
        "split_by": plan.split_by,
        "skipped": plan.skipped,
        "shared_with_test": plan.shared_with_test,
        "videos": [
            {"path": str(v.path), "key": v.key, "method": v.method, "group": v.group, "split": s}
            for v, s in plan.videos
        ],
    }


def _plan_from_json(data: dict[str, Any]) -> Plan:
    videos = tuple((Video(Path(d["path"]), d["key"], d["method"], d["group"], d["split"]), d["split"])
                   for d in data["videos"])
    return Plan(videos, data["split_by"], data["skipped"], data["shared_with_test"])


def load_or_make_plan(cfg: ImportConfig) -> Plan:
    path = cfg.out / PLAN_FILE
    options = _plan_options(cfg)
    if path.is_file():
        data = json.loads(path.read_text())
        before = data["options"]
        changed = [k for k in PLAN_OPTIONS if before.get(k) != options[k]]
        if changed or data["root"] != str(cfg.root.resolve()):
            what = ", ".join(f"{k} {before.get(k)!r} → {options[k]!r}" for k in changed) or f"root {data['root']}"
            raise DatasetError(f"{cfg.out} holds an import made with other options ({what}); "
                               "use another --out or the same options")
        return _plan_from_json(data)
    plan = plan_splits(discover(cfg), cfg.seed)
    if not plan.videos:
        raise DatasetError(f"{cfg.root}: the {cfg.kind} layout holds no video to import")
    cfg.out.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(_plan_json(cfg, plan), indent=1) + "\n")
    tmp.replace(path)
    return plan


def read_log(out: Path) -> dict[str, VideoResult]:
    """Finished videos; a line cut by an interruption is dropped from the file (that video runs again)."""
    path = out / LOG_FILE
    if not path.is_file():
        return {}
    drop_cut_line(path)
    done: dict[str, VideoResult] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            r = VideoResult(**json.loads(line))
            done[r.key] = r
    return done


def _inline(tasks: list[VideoTask]) -> Iterator[VideoResult]:
    for task in tasks:
        yield import_video(task)


def _pooled(tasks: list[VideoTask], workers: int) -> Iterator[VideoResult]:
    # spawn: MediaPipe's graph threads do not survive a fork
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending: set[Future[VideoResult]] = set()
        queue = iter(tasks)
        try:
            for task in queue:
                pending.add(pool.submit(import_video, task))
                if len(pending) >= 2 * workers:
                    break
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield future.result()
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending.add(pool.submit(import_video, nxt))
        finally:
            for future in pending:
                future.cancel()


def run_import(cfg: ImportConfig, progress: bool = True,
               on_result: Callable[[VideoResult], None] | None = None) -> dict[str, Any]:
    """Import what the plan still lacks; returns (and writes) the summary of the whole import so far."""
    plan = load_or_make_plan(cfg)
    done = read_log(cfg.out)
    todo = [(v, s) for v, s in plan.videos if v.key not in done]
    if cfg.limit is not None:
        todo = todo[: max(0, cfg.limit - len(done))]
    shutil.rmtree(cfg.out / STAGING, ignore_errors=True)  # what an interrupted run left half-made
    tasks = [VideoTask(v, s, cfg.out, cfg.frames_per_video, cfg.clips_per_video, cfg.max_faces, cfg.min_face)
             for v, s in todo]
    results = _inline(tasks) if cfg.workers == 1 else _pooled(tasks, cfg.workers)
    bar = tqdm(results, total=len(tasks), desc="videos", unit="video", disable=not progress)
    for result in bar:
        if not append_line(cfg.out / LOG_FILE, json.dumps(asdict(result))):
            raise DatasetError(f"{cfg.out / LOG_FILE}: cannot append")
        done[result.key] = result
        if on_result is not None:
            on_result(result)
    shutil.rmtree(cfg.out / STAGING, ignore_errors=True)
    summary = summarise(plan, done)
    (cfg.out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def summarise(plan: Plan, done: dict[str, VideoResult]) -> dict[str, Any]:
    per: dict[str, dict[str, Counter[str]]] = {s: defaultdict(Counter) for s in SPLITS}
    for video, split in plan.videos:
        c = per[split][video.method]
        c["videos"] += 1
        r = done.get(video.key)
        if r is None:
            c["not yet"] += 1
            continue
        if r.status == "done":
            c["imported"] += 1
            c["frames"] += r.frames
            c["clips"] += r.clips
            c["faces"] += r.faces
        else:
            c[f"skipped: {r.status}"] += 1
    return {
        "split_by": plan.split_by,
        "skipped_before_import": plan.skipped,
        "groups_in_test_and_training": plan.shared_with_test,
        "splits": {s: {m: dict(c) for m, c in sorted(per[s].items())} for s in SPLITS},
    }


def summary_lines(summary: dict[str, Any]) -> list[str]:
    lines = [f"split: {summary['split_by']}"]
    for split in SPLITS:
        for method, c in summary["splits"][split].items():
            skipped = ", ".join(f"{k.removeprefix('skipped: ')} {n}" for k, n in sorted(c.items())
                                if k.startswith("skipped: "))
            left = f" | not yet {c['not yet']}" if c.get("not yet") else ""
            lines.append(f"{split:5s} {method}: {c.get('imported', 0)}/{c['videos']} videos | model A frames "
                         f"{c.get('frames', 0)} | model B clips {c.get('clips', 0)} | "
                         f"skipped: {skipped or 'none'}{left}")
    for reason, n in sorted(summary["skipped_before_import"].items()):
        lines.append(f"left out before import: {n} video(s), {reason}")
    if summary["groups_in_test_and_training"]:
        lines.append(f"{summary['groups_in_test_and_training']} group(s) have videos in test and in train/val "
                     "(the data set's own test list)")
    return lines
