"""dfstream eval sensitivity: model B's clip scores with one whole-picture change on every crop, through
the shipped-graph runtime (tiny untrained models, so the bookkeeping is checked, not the values)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from dfstream.cli import app
from dfstream.models.eval_bundled import clip_scores
from dfstream.models.eval_sensitivity import CHANGES, crop_detail
from dfstream.stream.model_set import ModelSet


def test_every_change_is_scored_and_none_is_the_plain_score(clip_dataset: Path, stream_models: Path,
                                                            tmp_path: Path) -> None:  # fmt: skip
    result = CliRunner().invoke(app, ["eval", "sensitivity", "--clips", str(clip_dataset), "--models",
                                      str(stream_models), "--out", str(tmp_path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads((tmp_path / "sensitivity.json").read_text())
    assert [r["change"] for r in body["changes"]] == list(CHANGES)
    assert sum(line.startswith("|") for line in result.output.splitlines()) == 2 + len(CHANGES)

    models = ModelSet.load(stream_models, device="cpu", precision="auto")
    for row, change in zip(body["changes"], CHANGES.values(), strict=True):  # every row, each its own change
        _, y, p = clip_scores(models, clip_dataset, change)
        assert row["genuine_mean"] == pytest.approx(float(p[y == 0].mean()), abs=1e-6), row["change"]
        assert row["fake_flagged"] == pytest.approx(float((p[y == 1] >= body["threshold"]).mean())), row["change"]
    assert np.isfinite([body["detail"]["genuine"], body["detail"]["fake"]]).all()
    assert f"genuine {body['detail']['genuine']:.2f}" in result.output


def test_crop_detail_falls_with_blur_and_rises_with_sharpening() -> None:
    rng = np.random.default_rng(0)
    crop = cv2.GaussianBlur(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), (0, 0), 1.0)
    assert crop_detail(CHANGES["blur (Gaussian, sigma 1 px)"](crop)) < crop_detail(crop)
    assert crop_detail(CHANGES["sharpen (unsharp mask)"](crop)) > crop_detail(crop)


def test_a_change_reaches_the_encoder(clip_dataset: Path, stream_models: Path) -> None:
    models = ModelSet.load(stream_models, device="cpu", precision="auto")
    _, _, plain = clip_scores(models, clip_dataset)
    _, _, black = clip_scores(models, clip_dataset, np.zeros_like)
    assert not np.array_equal(plain, black)


def test_each_change_keeps_the_crop_and_alters_it() -> None:
    rng = np.random.default_rng(0)
    crop = cv2.GaussianBlur(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), (0, 0), 1.5)
    for name, change in CHANGES.items():
        if change is None:
            continue
        out = change(crop)
        assert out.shape == crop.shape and out.dtype == np.uint8, name
        assert not np.array_equal(out, crop), name


def test_a_missing_clip_folder_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "sensitivity", "--clips", str(tmp_path / "none")])
    assert result.exit_code == 2 and "clip folder not found" in result.output
