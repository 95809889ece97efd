"""The model card's metric tables, from the report files ``make models``, ``make ablation``,
``make kinds`` and ``make distill`` write, so the card shows exactly
what the evaluation measured: ``dfstream eval card``."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

COLUMNS = ("AUC", "95 % interval, people resampled", "F1", "accuracy", "n (fake)")


def _row(name: str, r: dict[str, Any]) -> str:
    auc = "n/a" if r["auc"] is None else f"{r['auc']:.3f}"
    interval = r.get("auc_interval")  # reports written before the interval existed have none
    spread = "n/a" if interval is None else f"{interval[0]:.2f}–{interval[1]:.2f}"
    return f"| {name} | {auc} | {spread} | {r['f1']:.3f} | {r['accuracy']:.3f} | {r['n']} ({r['n_fake']}) |"


def _table(title: str, rows: dict[str, dict[str, Any]]) -> list[str]:
    head = [f"**{title}**", "", "| kind | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    return head + [_row(k, r) for k, r in rows.items()] + [""]


def _cells(values: list[float | None]) -> str:
    """A row's numbers, three decimals, "n/a" where a report was missing."""
    return " | ".join("n/a" if c is None else f"{c:.3f}" for c in values)


def _column_means(rows: list[list[float | None]]) -> list[float | None]:
    """Each column's mean over the rows that have it (None where none has)."""
    columns = [[c for c in column if c is not None] for column in zip(*rows, strict=True)]
    return [sum(c) / len(c) if c else None for c in columns]


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def tables(runs: Path) -> list[str]:
    a = runs / "model-a" / "eval"
    b = runs / "model-b" / "test"
    out: list[str] = []
    frame = {"all": _load(a / "metrics.json")} | _load(a / "metrics_by_kind.json")
    if frame["all"]:
        out += _table(f"Model A, frame level (threshold {frame['all']['threshold']:.3f} from val)", frame)
    clip_a = _load(a / "metrics_clip_level.json")
    if clip_a:
        out += _table("Model A, clip level (mean frame P(fake) per 16-frame clip, same threshold)", clip_a)
    clip_b = {"all": _load(b / "metrics.json")} | _load(b / "metrics_by_kind.json")
    if clip_b["all"]:
        out += _table(f"Model B, clip level (threshold {clip_b['all']['threshold']:.3f} from val)", clip_b)
    if (a / "per_sample.csv").is_file() and (b / "per_sample.csv").is_file():
        from dataclasses import asdict

        from dfstream.models.fused import fused_reports

        fused = {k: asdict(r) for k, r in fused_reports(a, b, runs / "model-b" / "val").items()}
        from dfstream.stream.scoring import CLIP_WEIGHT

        title = f"Fused stream score, clip level (A's frames and B's clip, centred; B's share {CLIP_WEIGHT:g}; 0.5)"
        out += _table(title, fused)
    alarms = sorted((runs / "false-alarms").glob("*/false_alarms.json"))
    if alarms:
        out += [
            "**False alarms on genuine footage of people never trained on**",
            "",
            "| clip | frames scored | model A ≥ threshold | model B ≥ threshold | labelled fake "
            "| labelled real after 1 s | mean fused score |",
            "|---|---|---|---|---|---|---|",
        ]
        for path in alarms:
            fa = _load(path)
            clip_rate = "n/a" if fa["clip_model_rate"] is None else f"{fa['clip_model_rate']:.1%}"
            settled = fa.get("label_real_rate_after_1s")
            real = "n/a" if settled is None else f"{settled:.1%}"
            out.append(
                f"| {Path(fa['source']).name} | {fa['frames_scored']} | {fa['frame_model_rate']:.1%} | {clip_rate} "
                f"| {fa['label_fake_rate']:.1%} | {real} | {fa['mean_score']:.3f} |"
            )
        out.append("")
    return out


def ablation_table(runs: Path) -> list[str]:
    """One row per ``runs/ablation/<name>``: the encoder's best val frame AUC and held-out clip AUCs."""
    out = [
        "| run | val frame AUC (encoder) | test clip AUC | SBI | swap |",
        "|---|---|---|---|---|",
    ]
    for run in sorted(p for p in (runs / "ablation").glob("*") if p.is_dir()):
        history = _load(run / "history.json").get("encoder", [])
        best = max((r["val_frame_auc"] for r in history), default=float("nan"))
        test = _load(run / "test" / "metrics.json")
        kinds = _load(run / "test" / "metrics_by_kind.json")
        cells = [test.get("auc"), kinds.get("sbi", {}).get("auc"), kinds.get("swap", {}).get("auc")]
        text = _cells(cells)
        out.append(f"| {run.name} | {best:.3f} | {text} |")
    return [*out, ""]


def kinds_table(runs: Path) -> list[str]:
    """One row per ``runs/kinds/<name>``: AUC per kind on clips made from the held-out people's faces
    (``eval kinds``), the kind a run left out in bold: its leave-one-kind-out AUC."""
    from dfstream.models.eval_kinds import KIND_GROUPS

    kinds = ("all", *KIND_GROUPS)
    out = [
        "| run | left out | build's test clips | " + " | ".join(kinds) + " |",
        "|---" * (len(kinds) + 3) + "|",
    ]
    for run in sorted(p for p in (runs / "kinds").glob("*") if p.is_dir()):
        left_out = _load(run / "history.json").get("config", {}).get("exclude")
        aucs = {r["kind"]: r["auc"] for r in _load(run / "kinds" / "kinds.json").get("rows", [])}
        test = _load(run / "test" / "metrics.json").get("auc")
        cells = [
            "n/a" if aucs.get(k) is None else (f"**{aucs[k]:.3f}**" if k == left_out else f"{aucs[k]:.3f}")
            for k in kinds
        ]
        fixed = "n/a" if test is None else f"{test:.3f}"
        out.append(f"| {run.name} | {left_out or '—'} | {fixed} | " + " | ".join(cells) + " |")
    return [*out, ""]


def _best_val_auc(history_csv: Path) -> float | None:
    if not history_csv.is_file():
        return None
    with history_csv.open() as f:
        values = [float(r["val_auc"]) for r in csv.DictReader(f) if r.get("val_auc")]
    return max(values, default=None)


def distill_table(runs: Path) -> list[str]:
    """One row per model A run (``runs/model-a`` and ``runs/distill/<name>``): the share of the hard label
    in its target, its best val frame AUC and its held-out frame AUCs, so distillation's effect shows."""
    out = [
        "| run | target | val frame AUC (best epoch) | test frame AUC | SBI | swap | test clip AUC (mean of frames) |",
        "|---|---|---|---|---|---|---|",
    ]
    candidates = [runs / "model-a", *sorted(p for p in (runs / "distill").glob("*") if p.is_dir())]
    for run in (p for p in candidates if (p / "eval" / "metrics.json").is_file()):
        config = _load(run / "config.json")
        hard = config.get("hard_weight")
        if not config:
            target = "n/a"
        elif config.get("teacher") is None:
            target = "labels (no teacher)"
        else:
            named = {1.0: "labels only, teacher's pool", 0.0: "teacher's P(fake) only"}
            target = named.get(hard, f"{hard:g} label + {1 - hard:g} teacher")
        test = _load(run / "eval" / "metrics.json")
        kinds = _load(run / "eval" / "metrics_by_kind.json")
        clips = _load(run / "eval" / "metrics_clip_level.json").get("all", {})
        cells = [_best_val_auc(run / "history.csv"), test.get("auc"), kinds.get("sbi", {}).get("auc"),
                 kinds.get("swap", {}).get("auc"), clips.get("auc")]
        text = _cells(cells)
        out.append(f"| {run.name} | {target} | {text} |")
    return [*out, ""]


def fusion_table(runs: Path) -> list[str]:
    from dfstream.models.fused import weight_table

    return weight_table(runs)


TABLES = {
    "models": tables,
    "ablation": ablation_table,
    "kinds": kinds_table,
    "distill": distill_table,
    "fusion": fusion_table,
}
