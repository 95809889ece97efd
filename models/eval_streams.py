"""Labels on streams of people never trained on: what an operator would see when a face is
manipulated for a few seconds.

Held-out AUC ranks clips and the false-alarm clips count genuine footage; neither says how much
of a manipulated stretch the label calls fake, how late, or whether it calls the genuine seconds
around it real. The sample clip shows that for one *training* person. Here every face of a data
build's split gets three clips made the sample's way (camera motion over the face, 8 s, manipulated
from 3.0 to 5.5 s): the sample's self-blend (its pasted copy softened), the same self-blend with
the pasted copy sharpened instead (a sharp source on softer video), and a Poisson-blended swap with
another person of the split (the data build's swap recipe). Each clip runs through the real stream once; its
records keep both models' calibrated P(fake), so each label rule (smoothing, hysteresis band) is
replayed on the same scores. Rules are chosen on the validation people and reported on the test
people.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

from dfstream.models.data.bank import FaceBank
from dfstream.models.data.manipulate import BlendParams, self_blend
from dfstream.models.data.sample_clip import SAMPLE_TIMING, ClipTiming, Manipulation, write_motion_clip
from dfstream.models.data.swap import face_swap
from dfstream.models.false_alarms import model_thresholds, read_records, settled, stream_records
from dfstream.stream.contract.types import CLIP_LEN
from dfstream.stream.scoring import ScoringConfig, TrackScorer

STREAM_KINDS = ("sbi", "sbi-sharp", "swap")
SHARP_PASTE = BlendParams(blur=1, sharpen=2.0)
"""The sample's self-blend with its pasted copy sharpened rather than softened."""


@dataclass(frozen=True)
class LabelRule:
    ema_alpha: float
    band: float

    @property
    def name(self) -> str:
        return f"ema {self.ema_alpha:g}, band {self.band:g}"


RULES = tuple(LabelRule(a, b) for a in (0.3, 0.5, 1.0) for b in (0.02, 0.05, 0.1))
"""The grid replayed on every clip: the stream's smoothing and hysteresis band."""


@dataclass(frozen=True)
class ClipLabels:
    clip: str
    kind: str
    frames: int
    fake_on_manipulated: float
    """Share of the manipulated stretch's scored frames labelled fake."""
    real_on_genuine: float
    """Share of genuine frames after the track's first second labelled real."""
    fake_on_genuine: float
    """Share of all genuine scored frames labelled fake (including those just after the stretch)."""
    first_fake: int | None
    """Frames from the stretch's start to the first frame labelled fake inside it."""
    score_auc: float | None
    """Manipulated against genuine frames of this clip, ranked by the fused score."""
    changes: int
    """Label changes over the clip (an ideal one: uncertain → real → fake → real)."""
    clip_score_genuine: float | None
    """Model B's mean calibrated P(fake) on frames whose 16-frame window holds no manipulated frame."""
    clip_score_manipulated: float | None
    """Model B's mean calibrated P(fake) on frames whose window lies wholly inside the manipulated stretch."""


@dataclass(frozen=True)
class RuleSummary:
    rule: LabelRule
    clips: int
    fake_on_manipulated: float
    real_on_genuine: float
    fake_on_genuine: float
    median_first_fake: float | None
    flagged_clips: float
    """Share of manipulated clips whose stretch was labelled fake on at least one frame."""
    mean_changes: float


def relabel(records: Sequence[dict[str, object]], config: ScoringConfig) -> list[tuple[float, str]]:
    """(score, label) per record, the stream's scorer replayed on the recorded P(fake) of each track."""
    scorers: dict[object, TrackScorer] = {}
    out = []
    for r in records:
        scorer = scorers.setdefault(r["track_id"], TrackScorer(config))
        s = scorer.update(r["score_frame"], r["score_clip"])  # type: ignore[arg-type]
        out.append((s.score, s.label))
    return out


def clip_labels(
    clip: str, kind: str, records: Sequence[dict[str, object]], config: ScoringConfig, timing: ClipTiming
) -> ClipLabels:
    scores = [r for r in records if r.get("type") == "score"]
    labelled = relabel(scores, config)
    truth = [timing.manipulated(int(r["frame_id"])) for r in scores]  # type: ignore[call-overload]
    fake = [lab == "fake" for _, lab in labelled]
    manip = [f for f, t in zip(fake, truth, strict=True) if t]
    genuine_real = [lab == "real" for (_, lab), t, s in zip(labelled, truth, settled(scores), strict=True)
                    if not t and s]  # fmt: skip
    start, _ = timing.stretch
    first = next((int(r["frame_id"]) - start for r, f, t in zip(scores, fake, truth, strict=True)  # type: ignore[call-overload]
                  if t and f), None)  # fmt: skip
    y = np.array(truth, dtype=int)
    auc = None
    if 0 < y.sum() < len(y):
        from sklearn.metrics import roc_auc_score

        auc = float(roc_auc_score(y, [s for s, _ in labelled]))
    genuine_b, manipulated_b = _clip_score_means(scores, timing)
    return ClipLabels(
        clip=clip,
        kind=kind,
        frames=len(scores),
        fake_on_manipulated=float(np.mean(manip)) if manip else 0.0,
        real_on_genuine=float(np.mean(genuine_real)) if genuine_real else 0.0,
        fake_on_genuine=float(np.mean([f for f, t in zip(fake, truth, strict=True) if not t])),
        first_fake=first,
        score_auc=auc,
        changes=sum(a != b for (_, a), (_, b) in pairwise(labelled)),
        clip_score_genuine=genuine_b,
        clip_score_manipulated=manipulated_b,
    )


def _clip_score_means(scores: Sequence[dict[str, object]], timing: ClipTiming) -> tuple[float | None, float | None]:
    """Model B's mean P(fake) where its window is wholly genuine, and where it is wholly manipulated."""
    start, end = timing.stretch
    window: dict[bool, list[float]] = {True: [], False: []}
    for r in scores:
        f, p = int(r["frame_id"]), r["score_clip"]  # type: ignore[call-overload]
        if p is not None and (start + CLIP_LEN - 1 <= f < end or not start <= f < end + CLIP_LEN - 1):
            window[start <= f < end].append(float(p))  # type: ignore[arg-type]
    return tuple(float(np.mean(w)) if w else None for w in (window[False], window[True]))  # type: ignore[return-value]


def summarise(rule: LabelRule, clips: Sequence[ClipLabels]) -> RuleSummary:
    firsts = [c.first_fake for c in clips if c.first_fake is not None]
    return RuleSummary(
        rule=rule,
        clips=len(clips),
        fake_on_manipulated=float(np.mean([c.fake_on_manipulated for c in clips])),
        real_on_genuine=float(np.mean([c.real_on_genuine for c in clips])),
        fake_on_genuine=float(np.mean([c.fake_on_genuine for c in clips])),
        median_first_fake=float(np.median(firsts)) if firsts else None,
        flagged_clips=len(firsts) / len(clips),
        mean_changes=float(np.mean([c.changes for c in clips])),
    )


def manipulations(bank: FaceBank, index: int, rng: np.random.Generator) -> dict[str, Manipulation]:
    """The clip's manipulation per kind: the sample's self-blend, softened and sharpened, and a swap
    with another person."""
    others = [j for j, who in enumerate(bank.identities) if who != bank.identities[index]]
    kinds: dict[str, Manipulation] = {
        "sbi": self_blend,
        "sbi-sharp": lambda frame, points: self_blend(frame, points, SHARP_PASTE),
    }
    if others:
        d = int(rng.choice(others))
        donor, donor_points = bank.images[d], bank.points[d]
        kinds["swap"] = lambda frame, points: face_swap(frame, points, donor, donor_points, seamless=True)
    return kinds


Clip = tuple[str, str, list[dict[str, object]]]
"""A clip's name, its kind and its stream records."""


def stream_clips(bank: FaceBank, models: Path, out: Path, device: str = "cpu", seed: int = 0,
                 timing: ClipTiming = SAMPLE_TIMING, reuse: bool = False) -> list[Clip]:
    """Make each face's clips, run each through the stream; (clip name, kind, records) per clip.
    With ``reuse``, a clip whose records ``out`` already holds is not made or run again."""
    rng = np.random.default_rng(seed)
    results = []
    for i, who in enumerate(bank.identities):
        for kind, manipulation in manipulations(bank, i, rng).items():
            name = f"{i:02d}-{who.replace('/', '_')}-{kind}"  # an identity is package/person
            saved = out / "records" / f"{name}.jsonl"
            if reuse and saved.is_file():
                results.append((name, kind, read_records(saved)))
                continue
            video = out / "clips" / f"{name}.mp4"
            write_motion_clip(bank.images[i], bank.points[i], video, manipulation, timing, seed=seed + i)
            results.append((name, kind, stream_records(video, models, saved, device)))
    return results


def evaluate_streams(bank: FaceBank, models: Path, out: Path, device: str = "cpu", seed: int = 0,
                     rules: Sequence[LabelRule] = RULES, timing: ClipTiming = SAMPLE_TIMING,
                     reuse: bool = False) -> dict[str, object]:
    """Every rule's summary (and its clips) over the bank's clips; written to ``out/streams.json``."""
    frame_t, clip_t = model_thresholds(models)
    clips = stream_clips(bank, models, out, device, seed, timing, reuse)
    report: dict[str, object] = {"models": str(models), "faces": len(bank), "timing": asdict(timing), "rules": []}
    for rule in rules:
        config = ScoringConfig(frame_threshold=frame_t, clip_threshold=clip_t, ema_alpha=rule.ema_alpha, band=rule.band)
        per_clip = [clip_labels(name, kind, recs, config, timing) for name, kind, recs in clips]
        kinds = {k: asdict(summarise(rule, [c for c in per_clip if c.kind == k]))
                 for k in STREAM_KINDS if any(c.kind == k for c in per_clip)}
        entry = {"summary": asdict(summarise(rule, per_clip)), "kinds": kinds, "clips": [asdict(c) for c in per_clip]}
        report["rules"].append(entry)  # type: ignore[attr-defined]
    out.mkdir(parents=True, exist_ok=True)
    (out / "streams.json").write_text(json.dumps(report, indent=2) + "\n")
    stream_rule = ScoringConfig(frame_threshold=frame_t, clip_threshold=clip_t)
    plot_labels(out / "labels.png", clips, stream_rule, timing)
    return report


LABEL_COLOURS = {"real": "#2e7d32", "uncertain": "#cfcfcf", "fake": "#c62828"}


def plot_labels(path: Path, clips: Sequence[Clip], config: ScoringConfig, timing: ClipTiming) -> None:
    """One row per clip: the label the stream shows on each frame, the manipulated stretch outlined."""
    from matplotlib.colors import ListedColormap

    from dfstream.models.metrics import _pyplot

    codes = {label: i for i, label in enumerate(LABEL_COLOURS)}
    rows = np.full((len(clips), timing.frames), np.nan)
    for r, (_, _, records) in enumerate(clips):
        scored = [x for x in records if x.get("type") == "score"]
        for x, (_, label) in zip(scored, relabel(scored, config), strict=True):
            rows[r, int(x["frame_id"])] = codes[label]  # type: ignore[call-overload]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 0.8 + 0.28 * len(clips)))
    ax.imshow(rows, aspect="auto", interpolation="nearest", cmap=ListedColormap(list(LABEL_COLOURS.values())),
              vmin=0, vmax=len(LABEL_COLOURS) - 1)  # fmt: skip
    for x in timing.stretch:
        ax.axvline(x - 0.5, color="black", linewidth=1.2)
    ax.set_yticks(range(len(clips)), [name for name, _, _ in clips], fontsize=7)
    ax.set_xlabel(f"frame ({timing.fps} fps); manipulated between the black lines")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in LABEL_COLOURS.values()]
    ax.legend(handles, list(LABEL_COLOURS), loc="upper center", bbox_to_anchor=(0.5, 1.0 + 1.2 / len(clips)),
              ncol=3, frameon=False, fontsize=8)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def rule_lines(report: dict[str, object]) -> list[str]:
    """The rules as a markdown table; the stream's own rule in italics."""
    default = ScoringConfig(frame_threshold=0.5, clip_threshold=0.5)
    lines = [
        "| rule | fake on manipulated stretch: all | sbi | sbi, sharper paste | swap | stretches flagged | median "
        "frames to first 'fake' | genuine labelled real after 1 s | genuine labelled fake | label changes per clip |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for entry in report["rules"]:  # type: ignore[attr-defined]
        s, kinds = entry["summary"], entry["kinds"]
        rule = LabelRule(**s["rule"])
        name = rule.name
        if (rule.ema_alpha, rule.band) == (default.ema_alpha, default.band):
            name = f"*{name}* (stream)"
        per_kind = [f"{kinds[k]['fake_on_manipulated']:.0%}" if k in kinds else "—" for k in STREAM_KINDS]
        first = "—" if s["median_first_fake"] is None else f"{s['median_first_fake']:.0f}"
        lines.append(f"| {name} | {s['fake_on_manipulated']:.0%} | {' | '.join(per_kind)} | {s['flagged_clips']:.0%} "
                     f"| {first} | {s['real_on_genuine']:.0%} | {s['fake_on_genuine']:.1%} "
                     f"| {s['mean_changes']:.1f} |")
    return lines
