"""Model B per manipulation kind on held-out people, with fakes made on the fly from their faces.

The data build's fixed test clips hold two kinds (a self-blend and a swap), each made one way. The
trainers make many more: self-blends at full or partial opacity, swaps under three warps and four
blends. Each is scored here on clips of the test people, against all of their genuine clips (plain
and retouched), with the AUC and the direction of the scores. Scored with a model trained with
``--exclude KIND``, that kind's row is its leave-one-kind-out AUC: a method never trained on.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import asdict, dataclass

import numpy as np
import torch

from dfstream.models import clip_lstm
from dfstream.models.configs import EvalKindsConfig
from dfstream.models.data.bank import read_bank
from dfstream.models.data.fakes import BLENDS, WARPS
from dfstream.models.data.onthefly import FakeMaker
from dfstream.models.train_onthefly import to_tensor

log = logging.getLogger(__name__)

KIND_GROUPS: tuple[str, ...] = ("sbi", *(f"swap/{w}" for w in WARPS))
"""What ``--exclude`` can leave out; one row each (every blend is drawn inside every warp)."""
MAX_DRAWS_PER_CLIP = 12
"""Fakes are drawn at random; a kind that never comes up in this many draws per wanted clip is an error."""


@dataclass(frozen=True)
class KindRow:
    kind: str
    n_fake: int
    auc: float
    """The kind's clips against all genuine clips; under 0.5 the model ranks them as more genuine."""
    mean_fake: float
    """Mean P(fake) (the checkpoint's raw output, before the exported calibration)."""
    mean_real: float


def kind_of(detail: str) -> list[str]:
    """Every row a fake's variant (``swap/affine/poisson``) counts in."""
    parts = detail.split("/")
    rows = ["all", parts[0]]
    if parts[0] == "swap":
        rows += [f"swap/{parts[1]}", f"swap/*/{parts[2]}"]
    return rows


def _auc(real: np.ndarray, fake: np.ndarray) -> float:
    """Probability that a fake clip outscores a genuine one (ties count half)."""
    from sklearn.metrics import roc_auc_score

    labels = np.r_[np.zeros(len(real)), np.ones(len(fake))]
    return float(roc_auc_score(labels, np.r_[real, fake]))


def _logits(model: clip_lstm.ClipDetector, clips: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Ranked on logits: a confident model's probabilities tie at 1.0 in float32."""
    with torch.no_grad():
        out = [
            model.logit(torch.stack([to_tensor(f) for f, _ in clips[i : i + 8]]),
                        torch.from_numpy(np.stack([m for _, m in clips[i : i + 8]]))).double().numpy()
            for i in range(0, len(clips), 8)
        ]
    return np.concatenate(out).reshape(-1)


def _p(logits: np.ndarray) -> float:
    return float(np.mean(1.0 / (1.0 + np.exp(-logits))))


def evaluate_kinds(cfg: EvalKindsConfig) -> list[KindRow]:
    """Writes ``kinds.json`` (rows and every clip's score) into ``cfg.out_dir``."""
    model = clip_lstm.load_state(cfg.model)
    bank = read_bank(cfg.faces)
    maker = FakeMaker(bank)
    rng = np.random.default_rng(cfg.seed)
    real_clips, real_details = [], []
    for _ in range(cfg.genuine_clips):
        frames, lmks, _, detail = maker.clip(rng, cfg.img_size, fake=False)
        real_clips.append((frames, lmks))
        real_details.append(detail)
    fakes: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    fake_details: dict[str, list[str]] = defaultdict(list)
    for _ in range(MAX_DRAWS_PER_CLIP * cfg.clips_per_kind * len(KIND_GROUPS)):
        if all(len(fakes[g]) >= cfg.clips_per_kind for g in KIND_GROUPS):
            break
        frames, lmks, _, detail = maker.clip(rng, cfg.img_size, fake=True)
        group = next((g for g in KIND_GROUPS if detail.startswith(g)), None)
        if group is not None and len(fakes[group]) < cfg.clips_per_kind:
            fakes[group].append((frames, lmks))
            fake_details[group].append(detail)
    short = [g for g in KIND_GROUPS if len(fakes[g]) < cfg.clips_per_kind]
    if short:
        raise ValueError(f"too few fakes of {', '.join(short)} were drawn from {cfg.faces}")
    l_real = _logits(model, real_clips)
    scored: dict[str, list[float]] = defaultdict(list)
    details: list[tuple[str, float]] = []
    for group in KIND_GROUPS:
        for detail, logit in zip(fake_details[group], _logits(model, fakes[group]), strict=True):
            details.append((detail, float(logit)))
            for row in kind_of(detail):
                scored[row].append(float(logit))
    order = ["all", "sbi", "swap", *(f"swap/{w}" for w in WARPS), *(f"swap/*/{b}" for b in BLENDS)]
    rows = [
        KindRow(k, len(scored[k]), _auc(l_real, np.array(scored[k])), _p(np.array(scored[k])), _p(l_real))
        for k in order
        if scored[k]
    ]
    retouched = np.array([d == "real/retouched" for d in real_details])
    if retouched.any() and (~retouched).any():  # retouching is not a fake: its row should sit near 0.5
        rows.append(KindRow("real/retouched vs real", int(retouched.sum()), _auc(l_real[~retouched], l_real[retouched]),
                            _p(l_real[retouched]), _p(l_real[~retouched])))
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    (cfg.out_dir / "kinds.json").write_text(json.dumps({
        "model": str(cfg.model), "faces": str(cfg.faces), "people": bank.people(), "seed": cfg.seed,
        "rows": [asdict(r) for r in rows],
        "genuine": [{"detail": d, "logit": float(v)} for d, v in zip(real_details, l_real, strict=True)],
        "fake": [{"detail": d, "logit": v} for d, v in details],
    }, indent=2) + "\n")
    log.info("scored %d genuine and %d fake clips of %d people", len(l_real), len(details), len(bank.people()))
    return rows


def markdown(rows: list[KindRow]) -> str:
    lines = ["| kind | AUC vs genuine | mean P(fake) | n (fake) |", "|---|---|---|---|"]
    lines += [f"| {r.kind} | {r.auc:.3f} | {r.mean_fake:.3f} (genuine {r.mean_real:.3f}) | {r.n_fake} |" for r in rows]
    return "\n".join(lines)
