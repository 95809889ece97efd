"""Model B: torchvision-compatible EfficientNet-B0, notebook B's state-dict layout, strict loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dfstream.models.clip_lstm import ClipDetector, load_state
from dfstream.models.efficientnet_b0 import EfficientNetB0Features, load_imagenet_weights
from dfstream.stream.contract.exceptions import InputPathError, ModelLoadError
from tests.effnet_reference import deterministic_state, reference_input

DATA = Path(__file__).parent / "data"


def test_keys_and_shapes_equal_torchvision_manifest() -> None:
    manifest = json.loads((DATA / "efficientnet_b0_torchvision_manifest.json").read_text())
    expected = {k: tuple(s) for k, s in manifest["keys"]}
    ours = {k: tuple(v.shape) for k, v in EfficientNetB0Features().state_dict().items()}
    assert list(ours) == list(expected)  # same names in the same order
    assert ours == expected
    assert sum(p.numel() for p in EfficientNetB0Features().parameters()) == 4_007_548


def test_outputs_equal_torchvision_on_reference_weights() -> None:
    ref = json.loads((DATA / "efficientnet_b0_torchvision_reference.json").read_text())
    model = EfficientNetB0Features().eval()
    model.load_state_dict(deterministic_state(model.state_dict()), strict=True)
    with torch.no_grad():
        out = model(reference_input())
    assert out.shape == (2, 1280)
    got = out[:, ref["indices"]]
    assert torch.allclose(got, torch.tensor(ref["values"]), atol=1e-4)
    assert torch.allclose(out.sum(1), torch.tensor(ref["row_sums"]), rtol=1e-4)


def test_notebook_b_state_dict_layout_loads_strictly(tmp_path: Path) -> None:
    model = ClipDetector()
    keys = list(model.state_dict())
    assert {k.split(".")[0] for k in keys} == {"cnn", "lstm", "fc"}
    assert any(k.startswith("cnn.features.8.1.") for k in keys)
    assert {k for k in keys if k.startswith("fc.")} == {"fc.0.weight", "fc.0.bias", "fc.3.weight", "fc.3.bias"}
    assert "lstm.weight_ih_l0_reverse" in keys and model.state_dict()["lstm.weight_ih_l0"].shape == (512, 1285)
    path = tmp_path / "mediapipe_model.pth"
    torch.save(model.state_dict(), path)
    loaded = load_state(path)
    frames, lmks = torch.rand(1, 16, 3, 64, 64), torch.rand(1, 16, 5)
    with torch.no_grad():
        assert torch.allclose(loaded(frames, lmks), model.eval()(frames, lmks))


def test_split_forward_equals_full_forward() -> None:
    model = ClipDetector().eval()
    frames, lmks = torch.rand(2, 16, 3, 64, 64), torch.rand(2, 16, 5)
    with torch.no_grad():
        emb = model.encode(frames.reshape(32, 3, 64, 64)).reshape(2, 16, 1280)
        split = model.head(torch.cat([emb, lmks], dim=2))
        assert torch.equal(split, model(frames, lmks))


def test_missing_and_extra_keys_are_listed(tmp_path: Path) -> None:
    state = ClipDetector().state_dict()
    del state["fc.3.weight"]
    del state["lstm.bias_hh_l0"]
    state["fc.9.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(
        ModelLoadError, match=r"2 missing \((lstm\.bias_hh_l0|fc\.3\.weight).*1 unexpected \(fc\.9\.weight\)"
    ):
        load_state(path)


def test_wrong_shapes_are_listed(tmp_path: Path) -> None:
    state = ClipDetector().state_dict()
    state["fc.0.weight"] = torch.zeros(64, 128)
    torch.save(state, tmp_path / "shape.pth")
    with pytest.raises(ModelLoadError, match=r"fc\.0\.weight \(64, 128\)≠\(64, 256\)"):
        load_state(tmp_path / "shape.pth")


def test_non_state_dict_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(ModelLoadError, match="not a torch state dict"):
        load_state(tmp_path / "text.pth")
    torch.save({"epoch": 3}, tmp_path / "meta.pth")
    with pytest.raises(ModelLoadError, match="does not hold a state dict of tensors"):
        load_state(tmp_path / "meta.pth")
    with pytest.raises(InputPathError, match="model file not found"):
        load_state(tmp_path / "absent.pth")


def test_imagenet_weights_from_local_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    source = EfficientNetB0Features()
    state = {
        **source.state_dict(),
        "classifier.1.weight": torch.zeros(1000, 1280),
        "classifier.1.bias": torch.zeros(1000),
    }
    torch.save(state, tmp_path / "effb0.pth")
    target = EfficientNetB0Features()
    load_imagenet_weights(target, tmp_path / "effb0.pth")
    assert torch.equal(target.features[0][0].weight, source.features[0][0].weight)
    with caplog.at_level("WARNING"):
        load_imagenet_weights(target, None)
    assert "starts from random weights" in caplog.text


def test_a_card_rides_in_the_state_dict_and_names_its_data_build(tmp_path: Path) -> None:
    import hashlib
    import json

    from dfstream.models import clip_lstm
    from dfstream.models.checkpoint_cards import CARD_KEY, build_of, checkpoint_card, clip_architecture, read_card
    from dfstream.models.configs import TrainClipConfig
    from dfstream.stream.contract.exceptions import ModelLoadError

    build = tmp_path / "build"
    (build / "clips" / "train").mkdir(parents=True)
    (build / "manifest.json").write_text('{"packages": []}\n')
    (build / "summary.json").write_text('{"clips": 3}\n')
    cfg = TrainClipConfig(data_dir=build / "clips" / "train", out_dir=tmp_path / "run", img_size=48)
    card = checkpoint_card(clip_architecture("relu6", 48), "fixed clips", cfg, {"val_f1": 0.5})
    assert card["data"] == {"root": str(build.resolve()), "summary": {"clips": 3},
                            "manifest_sha256": hashlib.sha256(b'{"packages": []}\n').hexdigest()}
    assert build_of(tmp_path) is None

    model = clip_lstm.ClipDetector("relu6")
    clip_lstm.save_state(model, tmp_path / "m.pth", card)
    assert read_card(tmp_path / "m.pth") == json.loads(json.dumps(card))
    loaded = clip_lstm.load_state(tmp_path / "m.pth")  # strict: the card is not a weight
    assert loaded.cnn.activation == "relu6"
    clip_lstm.save_state(model, tmp_path / "bare.pth")
    assert read_card(tmp_path / "bare.pth") is None

    state = torch.load(tmp_path / "m.pth", weights_only=True)
    state[CARD_KEY] = torch.tensor([255, 0, 1], dtype=torch.uint8)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ModelLoadError, match="its card is not JSON"):
        read_card(tmp_path / "bad.pth")
