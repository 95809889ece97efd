"""Binary detection metrics, the F1-optimal threshold, and the report files both evaluations write."""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BinaryReport:
    threshold: float
    n: int
    n_fake: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    auc: float | None
    confusion: tuple[tuple[int, int], tuple[int, int]]
    """Rows true real/fake, columns predicted real/fake."""
    auc_interval: tuple[float, float] | None = None
    """95 % interval of the AUC with whole people resampled (``auc_interval``); None where the sample
    names do not say whose face each sample is, or fewer than ``MIN_PEOPLE`` people are scored."""

    @property
    def auc_text(self) -> str:
        """The AUC as the commands print it, with its interval where there is one."""
        if self.auc is None:
            return "n/a"
        if self.auc_interval is None:
            return f"{self.auc:.4f}"
        low, high = self.auc_interval
        return f"{self.auc:.4f} (95 % {low:.3f}–{high:.3f}, people resampled)"


def f1_optimal_threshold(y_true: np.ndarray, p_fake: np.ndarray, max_fpr: float | None = None) -> float:
    """Threshold on P(fake) maximising F1 for the 'fake' class, kept strictly inside (0, 1).

    With ``max_fpr``, only thresholds that flag at most that share of the genuine samples count.
    A weak model's unconstrained F1 optimum is "everything is fake" (F1 = 2/3 at even classes),
    which turns every genuine stream red; the cap keeps false alarms bounded instead.
    """
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(y_true, p_fake)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    if max_fpr is not None:
        genuine = np.sort(p_fake[y_true == 0])
        if len(genuine):
            fpr = 1.0 - np.searchsorted(genuine, thresholds, side="left") / len(genuine)
            f1 = np.where(fpr <= max_fpr + 1e-12, f1, -1.0)
            if f1.max() < 0:  # no threshold below the cap flags anything: flag only above every genuine
                return float(np.clip(np.nextafter(genuine[-1], 1.0), 1e-6, 1 - 1e-6))
    best = float(thresholds[int(np.argmax(f1))])
    return float(np.clip(best, 1e-6, 1 - 1e-6))


def binary_report(
    y_true: np.ndarray, p_fake: np.ndarray, threshold: float, names: Sequence[str] | None = None
) -> BinaryReport:
    """``names`` (a data build's sample names) add the AUC's interval by person."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score, roc_auc_score

    y_pred = (p_fake >= threshold).astype(int)
    auc = float(roc_auc_score(y_true, p_fake)) if len(set(y_true.tolist())) == 2 else None
    interval = None
    if auc is not None and names is not None:
        interval = auc_interval(y_true, p_fake, [person_of(n) for n in names])
    cm = confusion_matrix(y_true, y_pred, labels=[0, 1])
    return BinaryReport(
        threshold=float(threshold),
        n=len(y_true),
        n_fake=int(y_true.sum()),
        accuracy=float(accuracy_score(y_true, y_pred)),
        precision=float(precision_score(y_true, y_pred, zero_division=0)),
        recall=float(recall_score(y_true, y_pred, zero_division=0)),
        f1=float(f1_score(y_true, y_pred, zero_division=0)),
        auc=auc,
        confusion=((int(cm[0, 0]), int(cm[0, 1])), (int(cm[1, 0]), int(cm[1, 1]))),
        auc_interval=interval,
    )


VIDEO_NAME = re.compile(r"^(?P<face>(?P<person>.+?)-f\d{3})-")
"""A data build's video is named ``{person}-f{face:03d}-{kind}-{k:02d}``, an imported one
``{group}-f{face:03d}-{video}`` (frame files add ``{kind}__`` before and ``_{i}`` after): whose face,
and which of their faces, it was filmed from. The first ``-fNNN-`` counts: a video's own name may hold one."""

MIN_PEOPLE = 3
INTERVAL_ROUNDS = 2000


def _video_name(name: str) -> re.Match[str] | None:
    return VIDEO_NAME.match(Path(name).name.split(KIND_SEPARATOR, 1)[-1])


def person_of(name: str) -> str | None:
    """The person a data build's sample name was filmed from (a swap: the person whose frame it is)."""
    match = _video_name(name)
    return match["person"] if match else None


def face_of(name: str) -> str | None:
    """Which face of that person (``{person}-f{face:03d}``) the sample was filmed from."""
    match = _video_name(name)
    return match["face"] if match else None


def rank_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """AUC as the Mann-Whitney statistic (ties count half); both classes must be present."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    n_fake = int(y_true.sum())
    n_real = len(y_true) - n_fake
    return float((ranks[y_true == 1].sum() - n_fake * (n_fake + 1) / 2) / (n_fake * n_real))


@dataclass(frozen=True)
class Resampling:
    """How an interval resamples people: how often, its coverage, and the seed (fixed, so a report
    rewritten from the same scores shows the same interval)."""

    rounds: int = INTERVAL_ROUNDS
    level: float = 0.95
    seed: int = 0


def _person_interval(
    statistic: Callable[[np.ndarray], float], y_true: np.ndarray, people: Sequence[str | None], how: Resampling
) -> tuple[float, float] | None:
    """Percentile interval of ``statistic`` (of sample indices) over resamples of whole people with
    replacement; None where a name has no person, too few people are scored, or no resample holds
    both classes."""
    if any(p is None for p in people):
        return None
    labels = np.asarray(people)
    members = [np.flatnonzero(labels == person) for person in sorted(set(labels.tolist()))]
    if len(members) < MIN_PEOPLE:
        return None
    rng = np.random.default_rng(how.seed)
    values = []
    for _ in range(how.rounds):
        picked = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        if 0 < y_true[picked].sum() < len(picked):
            values.append(statistic(picked))
    if not values:
        return None
    low, high = np.quantile(values, [(1 - how.level) / 2, (1 + how.level) / 2])
    return float(low), float(high)


def auc_interval(
    y_true: np.ndarray, p_fake: np.ndarray, people: Sequence[str | None], how: Resampling = Resampling()
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the AUC, resampling people rather than samples.

    One person's clips share a face, a photo and a camera, so they are not independent: resampling
    clips would draw an interval as narrow as if every clip were a new person. With ten held-out
    people this interval is what a difference between two models has to clear.
    """
    return _person_interval(lambda i: rank_auc(y_true[i], p_fake[i]), y_true, people, how)


def auc_difference(
    y_true: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, people: Sequence[str | None], how: Resampling = Resampling()
) -> tuple[float, tuple[float, float] | None]:
    """AUC(b) − AUC(a) on the same samples, and its interval from the same person resamples for both
    (paired: each resample scores both models on the same people, so what the people share cancels)."""

    def difference(i: np.ndarray) -> float:
        return rank_auc(y_true[i], p_b[i]) - rank_auc(y_true[i], p_a[i])

    return difference(np.arange(len(y_true))), _person_interval(difference, y_true, people, how)


KIND_SEPARATOR = "__"
"""Frame files named ``{kind}__{video}_{i}.jpg`` (as ``dfstream data build`` writes them) are
reported per kind."""


def sample_kind(name: str) -> str:
    """The manipulation kind a sample name carries: a frame file's ``{kind}__`` prefix, else the
    clip's class folder (notebook B's folders are named per method: ``sbi/``, ``Deepfakes/``…)."""
    path = Path(name)
    if KIND_SEPARATOR in path.name:
        return path.name.split(KIND_SEPARATOR, 1)[0]
    return path.parent.name or "all"


def kind_masks(names: Sequence[str], y_true: np.ndarray) -> dict[str, np.ndarray]:
    """Per fake kind, the samples that rank it: that kind's fakes and every real sample."""
    kinds = np.array([sample_kind(n) for n in names])
    real = y_true == 0
    return {kind: real | (kinds == kind) for kind in sorted(set(kinds[~real].tolist()))}


def reports_by_kind(
    names: Sequence[str], y_true: np.ndarray, p_fake: np.ndarray, threshold: float
) -> dict[str, BinaryReport]:
    """One report per fake kind: that kind's samples against every real sample."""
    out: dict[str, BinaryReport] = {}
    for kind, keep in kind_masks(names, y_true).items():
        kept = [name for name, k in zip(names, keep, strict=True) if k]
        out[kind] = binary_report(y_true[keep], p_fake[keep], threshold, kept)
    return out


def mean_per(key: Callable[[str], str], names: Sequence[str], y_true: np.ndarray,
             p_fake: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Scores averaged over the samples whose names share ``key(name)``: the keys (sorted), their labels
    and mean P(fake)."""
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault(key(name), []).append(i)
    keys = sorted(groups)
    y = np.array([int(y_true[groups[k][0]]) for k in keys])
    p = np.array([float(np.mean(p_fake[groups[k]])) for k in keys])
    return keys, y, p


def _clip_of_frame(name: str) -> str:
    path = Path(name)
    return str(path.with_name(path.stem.rsplit("_", 1)[0]))


def per_clip(names: Sequence[str], y_true: np.ndarray, p_fake: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Frame scores averaged per clip (frames named ``{video}_{i}``): how a frame model does on
    whole clips. Returns clip names (kind prefix kept), labels and mean P(fake)."""
    return mean_per(_clip_of_frame, names, y_true, p_fake)


def write_per_sample(
    path: Path, names: Sequence[str], y_true: np.ndarray, p_fake: np.ndarray, threshold: float
) -> None:
    """One row per sample, P(fake) at full precision: model B's raw outputs crowd just under 1, and
    rounding would tie them and move every AUC read back from the file (``eval compare``)."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sample", "y_true", "p_fake", "y_pred"])
        for name, t, p in zip(names, y_true, p_fake, strict=True):
            w.writerow([name, int(t), f"{float(p):.17g}", int(p >= threshold)])


def read_per_sample(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A ``per_sample.csv``'s names, labels and P(fake)."""
    with path.open() as f:
        rows = list(csv.DictReader(f))
    names = [r["sample"] for r in rows]
    return names, np.array([int(r["y_true"]) for r in rows]), np.array([float(r["p_fake"]) for r in rows])


def write_clip_level(
    out_dir: Path, names: Sequence[str], y_true: np.ndarray, p_fake: np.ndarray, threshold: float
) -> None:
    """``metrics_clip_level.json``: frame scores averaged per clip, reported overall and per kind."""
    clip_names, clip_y, clip_p = per_clip(names, y_true, p_fake)
    clip_level = {"all": asdict(binary_report(clip_y, clip_p, threshold, clip_names))} | {
        k: asdict(r) for k, r in reports_by_kind(clip_names, clip_y, clip_p, threshold).items()
    }
    (out_dir / "metrics_clip_level.json").write_text(json.dumps(clip_level, indent=2) + "\n")


def write_reports(
    out_dir: Path,
    report: BinaryReport,
    names: Sequence[str],
    y_true: np.ndarray,
    p_fake: np.ndarray,
    val_true: np.ndarray | None = None,
    val_p_fake: np.ndarray | None = None,
) -> None:
    """metrics.json, per_sample.csv, classification_report.txt and the ROC / confusion / threshold plots."""
    from sklearn.metrics import classification_report

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
    by_kind = reports_by_kind(names, y_true, p_fake, report.threshold)
    if len(by_kind) > 1:
        body = {k: asdict(r) for k, r in by_kind.items()}
        (out_dir / "metrics_by_kind.json").write_text(json.dumps(body, indent=2) + "\n")
    write_per_sample(out_dir / "per_sample.csv", names, y_true, p_fake, report.threshold)
    text = classification_report(
        y_true, (p_fake >= report.threshold).astype(int), labels=[0, 1], target_names=["real", "fake"], zero_division=0
    )
    (out_dir / "classification_report.txt").write_text(str(text))
    plot_roc(out_dir / "roc.png", y_true, p_fake, report.auc)
    plot_confusion(out_dir / "confusion.png", report)
    if val_true is not None and val_p_fake is not None:
        plot_threshold(out_dir / "threshold.png", val_true, val_p_fake, report.threshold)


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_roc(path: Path, y_true: np.ndarray, p_fake: np.ndarray, auc: float | None) -> None:
    from sklearn.metrics import roc_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    if auc is not None:
        fpr, tpr, _ = roc_curve(y_true, p_fake)
        ax.plot(fpr, tpr, label=f"AUC = {auc:.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set(xlabel="false positive rate (real flagged fake)", ylabel="true positive rate", title="ROC")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_confusion(path: Path, report: BinaryReport) -> None:
    plt = _pyplot()
    cm = np.array(report.confusion)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="black")
    ax.set_xticks([0, 1], ["real", "fake"])
    ax.set_yticks([0, 1], ["real", "fake"])
    ax.set(xlabel="predicted", ylabel="true", title=f"confusion @ {report.threshold:.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_threshold(path: Path, y_true: np.ndarray, p_fake: np.ndarray, chosen: float) -> None:
    from sklearn.metrics import precision_recall_curve

    plt = _pyplot()
    precision, recall, thresholds = precision_recall_curve(y_true, p_fake)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(thresholds, precision[:-1], label="precision")
    ax.plot(thresholds, recall[:-1], label="recall")
    ax.plot(thresholds, f1[:-1], label="F1", linewidth=2)
    ax.axvline(chosen, color="red", linestyle="--", label=f"chosen = {chosen:.3f}")
    ax.set(xlabel="threshold on P(fake) (validation)", ylabel="metric", title="threshold choice")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
