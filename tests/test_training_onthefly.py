"""Model B trained on fakes made on the fly from an ImageNet start, then model A distilled from it (tiny sizes)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from dfstream.config import TrainClipConfig, TrainCnnConfig
from dfstream.models import imagenet_init
from dfstream.models.clip_lstm import ClipDetector, load_state
from dfstream.models.distill import make_pool
from dfstream.models.train_clip import train_clip
from tests.test_imagenet_init import lite0_state

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory, clip_dataset: Path, face_bank_path: Path) -> Path:
    root = tmp_path_factory.mktemp("teacher")
    torch.save(lite0_state(), root / "lite0.pth")
    weights = imagenet_init.write_converted(root / "lite0.pth", root / imagenet_init.CONVERTED_NAME)
    cfg = TrainClipConfig(
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
    train_clip(cfg)
    return cfg.out_dir


def test_onthefly_run_writes_a_relu6_checkpoint_probe_and_history(teacher: Path) -> None:
    model = load_state(teacher / "last_model.pth")
    assert model.cnn.activation == "relu6"
    history = json.loads((teacher / "history.json").read_text())
    assert [r["step"] for r in history["encoder"]] == [1, 2, 3]
    assert len(history["head"]) == 2 and all(np.isfinite(r["loss"]) for r in history["head"])
    assert (teacher / "probe.pth").is_file()


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


def _finetuned(clip_dataset: Path, face_bank_path: Path, out: Path, **options: float) -> dict[str, torch.Tensor]:
    """The encoder state finetune_encoder keeps, from one fixed start (tiny sizes, 3 steps)."""
    model = _finetuned_model(clip_dataset, face_bank_path, out, **options)
    return {k: v.clone() for k, v in model.cnn.state_dict().items()}


def _finetuned_model(clip_dataset: Path, face_bank_path: Path, out: Path, **options: float) -> ClipDetector:
    from dfstream.models import clip_lstm
    from dfstream.models.data.bank import read_bank
    from dfstream.models.data.onthefly import FakeMaker
    from dfstream.models.datasets import scan_clip_folders
    from dfstream.models.train_onthefly import finetune_encoder

    torch.manual_seed(0)
    model = clip_lstm.ClipDetector("relu6")
    cfg = TrainClipConfig(
        data_dir=clip_dataset, out_dir=out, img_size=64, faces=face_bank_path, activation="relu6",
        steps=3, frame_batch=4, eval_every=1, lr=1e-2, **options,
    )
    finetune_encoder(model, FakeMaker(read_bank(face_bank_path)), scan_clip_folders(clip_dataset), cfg)
    return model


def test_frozen_blocks_keep_their_start_weights_and_statistics(
    clip_dataset: Path, face_bank_path: Path, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    from dfstream.models import clip_lstm

    start = clip_lstm.ClipDetector("relu6").cnn.state_dict()
    kept = _finetuned(clip_dataset, face_bank_path, tmp_path, freeze_blocks=5)
    for key, value in kept.items():
        block = int(key.split(".")[1])
        if key.endswith("num_batches_tracked"):
            continue
        if block < 5:
            assert torch.equal(value, start[key]), key  # weights and BatchNorm statistics alike
    assert not torch.equal(kept["features.8.0.weight"], start["features.8.0.weight"])


def test_the_weight_average_is_what_is_validated_and_kept(
    clip_dataset: Path, face_bank_path: Path, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    from dfstream.models import clip_lstm

    start = clip_lstm.ClipDetector("relu6").cnn.state_dict()
    plain = _finetuned(clip_dataset, face_bank_path, tmp_path)
    # an average that barely moves: whatever step is kept, it is still the start
    averaged = _finetuned(clip_dataset, face_bank_path, tmp_path, weight_average=0.999999)
    key = "features.8.0.weight"
    moved = float((plain[key] - start[key]).abs().max())
    assert moved > 1e-3
    assert float((averaged[key] - start[key]).abs().max()) < moved * 1e-3


def test_the_blend_map_loss_shapes_the_encoder_and_leaves_no_trace_in_it(
    clip_dataset: Path, face_bank_path: Path, tmp_path: Path
) -> None:
    from dfstream.models.train_onthefly import BLEND_MAP_BLOCK

    plain = _finetuned(clip_dataset, face_bank_path, tmp_path)
    model = _finetuned_model(clip_dataset, face_bank_path, tmp_path, boundary_weight=1.0)
    located = model.cnn.state_dict()
    assert located.keys() == plain.keys()  # the head is training-only: the encoder's state is the same layout
    key = "features.4.0.block.0.0.weight"  # a block under the one the head reads gets its gradient
    assert not torch.equal(located[key], plain[key])
    assert not model.cnn.features[BLEND_MAP_BLOCK]._forward_hooks  # the head let go of the encoder


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


def test_a_soup_run_averages_its_members_encoders_and_probes_and_trains_the_head(
    clip_dataset: Path, face_bank_path: Path, tmp_path: Path
) -> None:

    members = [_member(tmp_path / f"m{s}", "relu6", s) for s in (1, 2)]
    cfg = TrainClipConfig(
        data_dir=clip_dataset, val_dir=clip_dataset, out_dir=tmp_path / "soup", img_size=64, faces=face_bank_path,
        activation="relu6", head_clips=4, epochs=2, encoder_soup=tuple(members),
    )
    train_clip(cfg)
    souped = load_state(cfg.out_dir / "last_model.pth")
    a, b = (load_state(m) for m in members)
    key = "features.8.0.weight"
    assert not torch.equal(a.cnn.state_dict()[key], b.cnn.state_dict()[key])
    for k, v in souped.cnn.state_dict().items():
        if v.is_floating_point():  # weights and BatchNorm statistics alike
            assert torch.allclose(v, (a.cnn.state_dict()[k] + b.cnn.state_dict()[k]) / 2, atol=1e-6), k
    trained, start = souped.fc.state_dict(), a.fc.state_dict()
    assert any(not torch.equal(trained[k], start[k]) for k in start)  # the head was trained, not a member's
    probes = [torch.load(m.parent / "probe.pth", weights_only=True) for m in members]
    probe = torch.load(cfg.out_dir / "probe.pth", weights_only=True)
    assert torch.allclose(probe["weight"], (probes[0]["weight"] + probes[1]["weight"]) / 2)
    history = json.loads((cfg.out_dir / "history.json").read_text())
    assert history["encoder"][0]["soup_of"] == 2 and 0.0 <= history["encoder"][0]["val_frame_auc"] <= 1.0
    assert souped.cnn.activation == "relu6"


def test_a_soup_refuses_mixed_activations_a_missing_probe_and_a_single_member(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from dfstream.exceptions import ModelLoadError
    from dfstream.models import clip_lstm
    from dfstream.models.encoder_soup import soup_encoder

    relu6, silu = _member(tmp_path / "a", "relu6", 1), _member(tmp_path / "b", "silu", 2)
    with pytest.raises(ModelLoadError, match="activation silu"):
        soup_encoder(clip_lstm.ClipDetector("relu6"), (relu6, silu))
    bare = _member(tmp_path / "c", "relu6", 3, probe=False)
    with pytest.raises(ModelLoadError, match=r"no probe\.pth"):
        soup_encoder(clip_lstm.ClipDetector("relu6"), (relu6, bare))
    with pytest.raises(ValidationError, match="two or more"):
        TrainClipConfig(data_dir=tmp_path, out_dir=tmp_path, encoder_soup=(relu6,))


def test_the_training_device_follows_the_choice_and_names_a_missing_gpu() -> None:
    from dfstream.exceptions import DfstreamError
    from dfstream.models.device import train_device

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
    cfg = TrainClipConfig(
        data_dir=clip_dataset, val_dir=clip_dataset, out_dir=tmp_path / "run", img_size=64, faces=face_bank_path,
        activation="relu6", steps=2, frame_batch=4, eval_every=1, head_clips=2, epochs=1, fixed_share=0.5,
        workers=1, device="cuda",
    )
    train_clip(cfg)
    assert torch.cuda.max_memory_allocated() > 0  # the fine-tune ran on the GPU
    state = torch.load(cfg.out_dir / "last_model.pth", weights_only=True)
    assert all(v.device.type == "cpu" for v in state.values())
    assert load_state(cfg.out_dir / "last_model.pth").cnn.activation == "relu6"
    # evaluated on the GPU, the checkpoint scores the clips as on the CPU
    from dfstream.config import EvalClipConfig
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
