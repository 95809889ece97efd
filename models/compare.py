"""Two evaluations of the same samples compared: is one model better, or is the difference what ten
people give by chance?

Every model change on this data was judged against "the seed spread"; this measures the spread a
difference has to clear instead: the AUC difference and its 95 % interval, both models rescored on
the same resamples of whole people (``metrics.auc_difference``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dfstream.models.configs import EvalCompareConfig
from dfstream.models.metrics import (
    Resampling,
    auc_difference,
    kind_masks,
    person_of,
    rank_auc,
    read_per_sample,
)
from dfstream.stream.contract.exceptions import InputPathError

PER_SAMPLE = "per_sample.csv"


@dataclass(frozen=True)
class Comparison:
    """One row: a kind's fakes (or all) against all genuine samples, scored by both evaluations."""

    kind: str
    n: int
    n_fake: int
    people: int
    auc_base: float
    auc_other: float
    difference: float
    interval: tuple[float, float] | None

    @property
    def verdict(self) -> str:
        if self.interval is None:
            return "no interval (sample names carry no person, or fewer than 3 people)"
        low, high = self.interval
        if low > 0:
            return "better"
        if high < 0:
            return "worse"
        return "within chance"


def _per_sample(path: Path) -> Path:
    csv_path = path / PER_SAMPLE if path.is_dir() else path
    if not csv_path.is_file():
        raise InputPathError(f"no {PER_SAMPLE} at {path} (give an evaluation's output folder or the file)")
    return csv_path


def _aligned(base: Path, other: Path) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    names_a, y_a, p_a = read_per_sample(_per_sample(base))
    names_b, y_b, p_b = read_per_sample(_per_sample(other))
    index_b = {name: i for i, name in enumerate(names_b)}
    missing = [n for n in names_a if n not in index_b]
    if missing or len(names_a) != len(names_b):
        raise InputPathError(
            f"the two evaluations scored different samples ({len(missing)} of {len(names_a)} in {base} "
            f"are not in {other}, which has {len(names_b)}; first: {missing[0] if missing else 'none'})"
        )
    order = np.array([index_b[n] for n in names_a])
    if not np.array_equal(y_a, y_b[order]):
        raise InputPathError(f"the two evaluations disagree on labels: {base} and {other}")
    return names_a, y_a, p_a, p_b[order]


def compare(cfg: EvalCompareConfig) -> list[Comparison]:
    """All fakes, then each kind, against all genuine samples."""
    names, y, p_base, p_other = _aligned(cfg.base, cfg.other)
    how = Resampling(rounds=cfg.rounds, seed=cfg.seed)
    rows: list[Comparison] = []
    by_kind = kind_masks(names, y)
    groups = {"all": np.ones(len(y), dtype=bool)} | (by_kind if len(by_kind) > 1 else {})
    for kind, keep in groups.items():
        yk = y[keep]
        if yk.min() == yk.max():
            continue
        people = [person_of(n) for n, k in zip(names, keep, strict=True) if k]
        diff, interval = auc_difference(yk, p_base[keep], p_other[keep], people, how)
        rows.append(
            Comparison(
                kind=kind,
                n=int(keep.sum()),
                n_fake=int(yk.sum()),
                people=len(set(people)) if None not in people else 0,
                auc_base=rank_auc(yk, p_base[keep]),
                auc_other=rank_auc(yk, p_other[keep]),
                difference=diff,
                interval=interval,
            )
        )
    if not rows:
        raise InputPathError(f"{cfg.base}: both genuine and fake samples are needed to compare AUCs")
    return rows


def markdown(rows: list[Comparison]) -> str:
    lines = [
        "| kind | n (fake) | people | AUC base | AUC other | difference | 95 % interval, people resampled | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        spread = "n/a" if r.interval is None else f"{r.interval[0]:+.3f} to {r.interval[1]:+.3f}"
        lines.append(
            f"| {r.kind} | {r.n} ({r.n_fake}) | {r.people or 'n/a'} | {r.auc_base:.3f} | {r.auc_other:.3f} "
            f"| {r.difference:+.3f} | {spread} | {r.verdict} |"
        )
    return "\n".join(lines)
