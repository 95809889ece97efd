"""Model B per manipulation kind, on clips made on the fly from a face bank of unseen people."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dfstream.models.configs import EvalKindsConfig
from dfstream.models.eval_kinds import KIND_GROUPS, _auc, evaluate_kinds, kind_of


def test_auc_counts_ties_half_and_reads_the_direction() -> None:
    real = np.array([0.0, 1.0, 2.0])
    assert _auc(real, np.array([3.0, 4.0])) == 1.0
    assert _auc(real, np.array([-1.0])) == 0.0  # ranked as more genuine than every genuine clip
    assert _auc(np.array([1.0, 1.0]), np.array([1.0])) == 0.5


def test_a_fake_counts_in_its_kind_its_warp_and_its_blend() -> None:
    assert kind_of("swap/piecewise/poisson_mixed") == ["all", "swap", "swap/piecewise", "swap/*/poisson_mixed"]
    assert kind_of("sbi/opacity<1") == ["all", "sbi"]


def test_the_logit_is_the_clip_probability_before_its_sigmoid() -> None:
    from dfstream.models import clip_lstm

    torch.manual_seed(0)
    model = clip_lstm.ClipDetector("relu6").eval()
    frames, lmks = torch.rand(2, 16, 3, 32, 32), torch.rand(2, 16, 5)
    with torch.no_grad():
        assert torch.allclose(torch.sigmoid(model.logit(frames, lmks)), model(frames, lmks), atol=1e-6)


@pytest.mark.slow
def test_every_kind_is_scored_against_the_genuine_clips(face_bank_path: Path, tmp_path: Path) -> None:
    from dfstream.models import clip_lstm

    torch.manual_seed(0)
    clip_lstm.save_state(clip_lstm.ClipDetector("relu6"), tmp_path / "b.pth")
    cfg = EvalKindsConfig(model=tmp_path / "b.pth", faces=face_bank_path, out_dir=tmp_path / "kinds", img_size=32,
                          genuine_clips=4, clips_per_kind=2)
    rows = {r.kind: r for r in evaluate_kinds(cfg)}
    assert set(KIND_GROUPS) <= set(rows) and rows["all"].n_fake == 2 * len(KIND_GROUPS)
    assert all(0.0 <= r.auc <= 1.0 for r in rows.values())
    saved = json.loads((tmp_path / "kinds" / "kinds.json").read_text())
    assert len(saved["genuine"]) == 4 and all(g["detail"].startswith("real") for g in saved["genuine"])
    assert sorted(sum(f["detail"].startswith(k) for f in saved["fake"]) for k in KIND_GROUPS) == [2] * len(KIND_GROUPS)
    fakes = np.array([f["logit"] for f in saved["fake"]])
    genuine = np.array([g["logit"] for g in saved["genuine"]])
    assert rows["all"].auc == pytest.approx(_auc(genuine, fakes))
