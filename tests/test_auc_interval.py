"""The AUC's interval with whole people resampled, and the paired difference between two models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from dfstream.models.metrics import auc_difference, auc_interval, binary_report, person_of, rank_auc


def _people(n_people: int = 10, per_person: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Half genuine, half fake clips per person; each person's scores carry their own offset."""
    rng = np.random.default_rng(seed)
    y, p, names = [], [], []
    for person in range(n_people):
        offset = rng.normal(0, 1.0)
        for k in range(per_person):
            label = k % 2
            y.append(label)
            p.append(offset + 0.8 * label + rng.normal(0, 0.5))
            kind = "swap" if label else "original"
            names.append(f"{kind}/album-p{person}-f{person:03d}-{kind}-{k:02d}")
    return np.array(y), np.array(p), names


def test_person_of_reads_clip_and_frame_names() -> None:
    assert person_of("original/kphotoalbum-anne-f029-original-00") == "kphotoalbum-anne"
    assert person_of("cache/frames/test/fake/sbi__kphotoalbum-anne-f029-sbi-00_4.jpg") == "kphotoalbum-anne"
    assert person_of("real/video_003") is None


def test_rank_auc_is_sklearns_auc_with_ties() -> None:
    y = np.array([0, 0, 1, 1, 0, 1, 1, 0])
    p = np.array([0.1, 0.4, 0.4, 0.8, 0.4, 0.2, 0.9, 0.3])
    assert rank_auc(y, p) == pytest.approx(roc_auc_score(y, p))


def test_the_interval_resamples_people_not_clips() -> None:
    y, p, names = _people()
    people = [person_of(n) for n in names]
    low, high = auc_interval(y, p, people) or (np.nan, np.nan)
    assert low < rank_auc(y, p) < high
    # Ten copies of every clip add no people: a clip-level bootstrap would narrow the interval
    # about threefold, resampling people leaves it exactly as it was.
    copies = auc_interval(np.repeat(y, 10), np.repeat(p, 10), list(np.repeat(people, 10)))
    assert copies == pytest.approx((low, high))


def test_no_interval_without_people_to_resample() -> None:
    y, p, names = _people(n_people=2)
    assert auc_interval(y, p, [person_of(n) for n in names]) is None
    assert auc_interval(y, p, [None] * len(y)) is None
    assert binary_report(y, p, 0.5).auc_interval is None


def test_binary_report_carries_the_interval_of_a_data_builds_names() -> None:
    y, p, names = _people()
    report = binary_report(y, p, 0.5, names)
    assert report.auc is not None and report.auc_interval is not None
    assert report.auc_interval[0] < report.auc < report.auc_interval[1]
    assert report.auc_text.startswith(f"{report.auc:.4f} (95 % ") and "people resampled" in report.auc_text
    assert binary_report(y, p, 0.5).auc_text == f"{report.auc:.4f}"


def test_the_paired_difference_separates_a_better_model_from_noise() -> None:
    y, p, names = _people()
    people = [person_of(n) for n in names]
    same, interval = auc_difference(y, p, p, people)
    assert same == 0.0 and interval == (0.0, 0.0)
    better = p + 1.5 * y  # every fake raised: better within every person
    diff, (low, high) = auc_difference(y, p, better, people)
    assert diff > 0 and low > 0
    noisy = p + np.random.default_rng(1).normal(0, 0.05, len(p))
    _, (low, high) = auc_difference(y, p, noisy, people)
    assert low < 0.0 < high or (low == high == 0.0)


def test_eval_compare_reports_each_kind_and_refuses_different_samples(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dfstream.cli import app
    from dfstream.models.metrics import write_per_sample

    y, p, names = _people()
    names = [n.replace("swap/", "sbi/").replace("-swap-", "-sbi-") if i % 4 == 1 else n for i, n in enumerate(names)]
    base, other, short = tmp_path / "base", tmp_path / "other", tmp_path / "short"
    for folder in (base, other, short):
        folder.mkdir()
    write_per_sample(base / "per_sample.csv", names, y, p, 0.5)
    order = np.random.default_rng(2).permutation(len(y))  # row order does not matter, names do
    better = p + 1.5 * y
    write_per_sample(other / "per_sample.csv", [names[i] for i in order], y[order], better[order], 0.5)
    result = CliRunner().invoke(app, ["eval", "compare", str(base), str(other), "--rounds", "300"])
    assert result.exit_code == 0, result.output
    rows = {line.split(" | ")[0].strip("| "): line for line in result.output.splitlines() if line.startswith("| ")}
    assert set(rows) >= {"all", "sbi", "swap"}
    assert rows["all"].endswith("| better |") and "| 10 |" in rows["all"]
    same = CliRunner().invoke(app, ["eval", "compare", str(base), str(base / "per_sample.csv"), "--rounds", "300"])
    assert "| +0.000 | +0.000 to +0.000 | within chance |" in same.output

    write_per_sample(short / "per_sample.csv", names[:-1], y[:-1], p[:-1], 0.5)
    refused = CliRunner().invoke(app, ["eval", "compare", str(base), str(short)])
    assert refused.exit_code == 2 and "scored different samples" in refused.output
    missing = CliRunner().invoke(app, ["eval", "compare", str(base), str(tmp_path / "none")])
    assert missing.exit_code == 2 and "no per_sample.csv" in missing.output


def test_per_sample_files_keep_scores_that_crowd_under_one_apart(tmp_path: Path) -> None:
    from dfstream.models.metrics import read_per_sample, write_per_sample

    p = np.array([1 - 1e-9, 1 - 2e-9, 1 - 3e-7, 0.25])
    write_per_sample(tmp_path / "per_sample.csv", ["a", "b", "c", "d"], np.array([1, 0, 1, 0]), p, 0.5)
    names, y, read = read_per_sample(tmp_path / "per_sample.csv")
    assert names == ["a", "b", "c", "d"] and y.tolist() == [1, 0, 1, 0] and np.array_equal(read, p)
