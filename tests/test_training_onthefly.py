"""Model B trained on fakes made on the fly from an ImageNet start, then model A distilled from it (tiny sizes)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from dfstream.models import imagenet_init
from dfstream.models.clip_lstm import load_state
from dfstream.models.configs import TrainCnnConfig, TrainOnTheFlyConfig
from dfstream.models.distill import make_pool
from dfstream.models.train_onthefly import train_clip_onthefly
from tests.test_imagenet_init import lite0_state

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory, clip_dataset: Path, face_bank_path: Path) -> Path:
    root = tmp_path_factory.mktemp("teacher")
    torch.save(lite0_state(), root / "lite0.pth")
    weights = imagenet_init.write_converted(root / "lite0.pth", root / imagenet_init.CONVERTED_NAME)
    cfg = TrainOnTheFlyConfig(
        data_dir=clip_dataset,
        val_dir=clip_dataset,
        out_dir=root / "run",
        img_size=64,
        faces=face_bank_path,
        imagenet_weights=weights,
        activation="relu6",
        steps=3,
        frame_batch=4,
        eval_every=1,
        head_clips=4,
        epochs=2,
        fixed_share=0.5,
    )
    train_clip_onthefly(cfg)
    return cfg.out_dir


def test_onthefly_run_writes_a_relu6_checkpoint_probe_and_history(teacher: Path) -> None:
    model = load_state(teacher / "last_model.pth")
    assert model.cnn.activation == "relu6"
    history = json.loads((teacher / "history.json").read_text())
    assert [r["step"] for r in history["encoder"]] == [1, 2, 3]
    assert len(history["head"]) == 2 and all(np.isfinite(r["loss"]) for r in history["head"])
    assert (teacher / "probe.pth").is_file()
    from dfstream.models.checkpoint_cards import read_card

    card = read_card(teacher / "last_model.pth")
    assert card is not None and card == read_card(teacher / "mediapipe_model.pth")
    assert card["recipe"] == "on the fly" and card["config"]["steps"] == 3 and card["config"]["fixed_share"] == 0.5
    assert card["architecture"] == {"encoder": "EfficientNet-B0", "activation": "relu6", "img_size": 64,
                                    "clip_len": 16, "embed_dim": 1280, "head": "BiLSTM"}
    assert card["metrics"] == {"val_frame_auc": max(r["val_frame_auc"] for r in history["encoder"]),
                               "val_clip_auc": max(r["val_clip_auc"] for r in history["head"])}


def test_a_checkpoint_exports_at_the_size_its_card_names(teacher: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dfstream.cli import app
    from dfstream.stream.ort_sessions import read_metadata

    result = CliRunner().invoke(app, ["export", str(teacher / "last_model.pth"), "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert read_metadata(tmp_path / "clip_encoder.onnx").input_size == 64
    shown = CliRunner().invoke(app, ["inspect", str(teacher / "last_model.pth")])
    assert shown.exit_code == 0 and json.loads(shown.output)["recipe"] == "on the fly"


def test_onthefly_checkpoint_exports_and_runs_in_onnx_runtime(teacher: Path, tmp_path: Path) -> None:
    from dfstream.export.torch_onnx import export_clip_model
    from dfstream.stream.ort_sessions import read_metadata

    files = export_clip_model(teacher / "last_model.pth", tmp_path, 0.4, 64, calibration=(2.0, -0.5))
    assert {f.role for f in files} == {"clip_encoder", "clip_head", "clip_full"}
    assert all(f.max_abs_diff < 1e-3 for f in files)
    assert read_metadata(tmp_path / "clip_head.onnx").calibration == (2.0, -0.5)
    from dfstream.stream.ort_sessions import calibrated, load_model

    head = load_model(tmp_path / "clip_head.onnx", "clip_head", "cpu")
    feats = np.random.default_rng(0).normal(0, 3, (4, 16, 1285)).astype(np.float32)
    raw = head.run(feats).reshape(-1)
    assert np.allclose(head.p_fake(feats), calibrated(raw, (2.0, -0.5)), atol=1e-6)  # the runtime applies it


def test_distillation_pool_carries_teacher_scores_and_trains_model_a(
    teacher: Path, face_bank_path: Path, frame_dataset: Path, tmp_path: Path
) -> None:
    pool = make_pool((face_bank_path,), teacher, 40, 32, seed=0)
    assert pool.images.shape == (40, 32, 32, 3) and set(pool.hard.tolist()) == {0.0, 1.0}
    assert ((pool.soft > 0) & (pool.soft < 1)).all()
    assert np.allclose(pool.targets(1.0), pool.hard) and np.allclose(pool.targets(0.0), pool.soft)
    # the soft targets are the teacher's P(fake) of these very pictures, at the teacher's crop size
    import cv2

    from dfstream.models.clip_checkpoints import read_probe
    from dfstream.models.distill import teacher_size
    from dfstream.models.train_onthefly import to_tensor

    model, probe, side = load_state(teacher / "last_model.pth").eval(), read_probe(teacher / "last_model.pth"), \
        teacher_size(teacher)
    small = np.stack([cv2.resize(c, (side, side), interpolation=cv2.INTER_AREA) for c in pool.images])
    with torch.no_grad():
        expected = torch.sigmoid(probe(model.encode(to_tensor(small)))).squeeze(1).numpy()
    assert np.allclose(pool.soft, expected, atol=1e-5)
    assert not np.allclose(pool.soft, expected[::-1], atol=1e-3)  # each target is its own picture's
    from dfstream.models.train_cnn import train_cnn

    cfg = TrainCnnConfig(
        data_dir=frame_dataset, out_dir=tmp_path / "a", img_size=32, batch_size=8, epochs=1,
        teacher=teacher, faces=face_bank_path, pool=64, fixed_share=0.25,
    )
    best = train_cnn(cfg)
    assert best.is_file() and (cfg.out_dir / "last_model.keras").is_file()


def _member(root: Path, activation: str, seed: int, probe: bool = True) -> Path:
    """A checkpoint as an on-the-fly run leaves it: last_model.pth and probe.pth in one folder."""
    from dfstream.models import clip_lstm
    from dfstream.models.clip_checkpoints import PROBE_NAME

    torch.manual_seed(seed)
    root.mkdir(parents=True)
    clip_lstm.save_state(clip_lstm.ClipDetector(activation), root / "last_model.pth")
    if probe:
        torch.save(torch.nn.Linear(clip_lstm.EMBED_DIM, 1).state_dict(), root / PROBE_NAME)
    return root / "last_model.pth"


def test_the_training_device_follows_the_choice_and_names_a_missing_gpu() -> None:
    from dfstream.models.device import train_device
    from dfstream.stream.contract.exceptions import DfstreamError

    assert train_device("cpu").type == "cpu"
    assert train_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if torch.cuda.is_available():
        assert train_device("cuda").type == "cuda"
    else:
        with pytest.raises(DfstreamError, match="--device cuda: torch sees no CUDA device"):
            train_device("cuda")  # a user's error: the CLI prints it as one line, exit 2


def test_train_clip_with_an_unknown_device_is_a_one_line_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dfstream.cli import app

    result = CliRunner().invoke(app, ["train", "clip", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                                      "--device", "tpu"])
    assert result.exit_code != 0
    assert "device" in result.output and "Traceback" not in result.output


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device for torch")
def test_model_b_trains_on_cuda_and_its_checkpoint_loads_on_the_cpu(
    clip_dataset: Path, face_bank_path: Path, tmp_path: Path
) -> None:
    torch.cuda.reset_peak_memory_stats()
    cfg = TrainOnTheFlyConfig(
        data_dir=clip_dataset, val_dir=clip_dataset, out_dir=tmp_path / "run", img_size=64, faces=face_bank_path,
        activation="relu6", steps=2, frame_batch=4, eval_every=1, head_clips=2, epochs=1, fixed_share=0.5,
        workers=1, device="cuda",
    )
    train_clip_onthefly(cfg)
    assert torch.cuda.max_memory_allocated() > 0  # the fine-tune ran on the GPU
    state = torch.load(cfg.out_dir / "last_model.pth", weights_only=True)
    assert all(v.device.type == "cpu" for v in state.values())
    assert load_state(cfg.out_dir / "last_model.pth").cnn.activation == "relu6"
    # evaluated on the GPU, the checkpoint scores the clips as on the CPU
    from dfstream.models.configs import EvalClipConfig
    from dfstream.models.metrics import read_per_sample
    from dfstream.models.train_clip import evaluate_clip

    scores = {}
    for device in ("cuda", "cpu"):
        evaluate_clip(EvalClipConfig(model=cfg.out_dir / "last_model.pth", data_dir=clip_dataset, split="all",
                                     out_dir=tmp_path / device, img_size=64, device=device))
        scores[device] = read_per_sample(tmp_path / device / "per_sample.csv")
    assert scores["cuda"][0] == scores["cpu"][0]
    assert np.abs(scores["cuda"][2] - scores["cpu"][2]).max() < 1e-3


def test_amp_is_refused_off_cuda_and_workers_follow_the_device(tmp_path: Path, clip_dataset: Path) -> None:
    from typer.testing import CliRunner

    from dfstream.cli import app
    from dfstream.models.device import workers_for

    result = CliRunner().invoke(app, ["train", "clip", "--data", str(clip_dataset), "--out", str(tmp_path / "o"),
                                      "--img-size", "32", "--epochs", "1", "--device", "cpu", "--amp"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == "dfstream: error: --amp: mixed precision is for CUDA; model B " \
        "trains on cpu here"
    assert workers_for(None, torch.device("cpu")) == 0
    assert workers_for(None, torch.device("cuda")) == max(1, (os.cpu_count() or 2) - 1)
    assert workers_for(3, torch.device("cuda")) == 3
