"""The Lite0 → B0 converter: names and shapes, SE pass-through, the input-format fold, and bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dfstream.models import imagenet_init as ii
from dfstream.models.clip_lstm import ClipDetector, load_state, save_state
from dfstream.models.efficientnet_b0 import STAGES, EfficientNetB0Features, check_state_keys, load_imagenet_weights
from dfstream.stream.contract.exceptions import ModelLoadError


def _bn(out: dict[str, torch.Tensor], name: str, n: int, g: torch.Generator) -> None:
    out[f"{name}.weight"] = torch.rand(n, generator=g) * 0.5 + 0.75
    out[f"{name}.bias"] = torch.randn(n, generator=g) * 0.1
    out[f"{name}.running_mean"] = torch.randn(n, generator=g) * 0.1
    out[f"{name}.running_var"] = torch.rand(n, generator=g) * 0.5 + 0.5
    out[f"{name}.num_batches_tracked"] = torch.tensor(7)


def lite0_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict in the package's Lite0 naming, with B0 (no-SE) shapes and random values."""
    g = torch.Generator().manual_seed(seed)
    s: dict[str, torch.Tensor] = {"_conv_stem.weight": torch.randn(32, 3, 3, 3, generator=g) * 0.3}
    _bn(s, "_bn0", 32, g)
    n = 0
    for expand, kernel, _stride, cin, cout, repeats in STAGES:
        for i in range(repeats):
            c = cin if i == 0 else cout
            hidden = c * expand
            b = f"_blocks.{n}"
            if expand != 1:
                s[f"{b}._expand_conv.weight"] = torch.randn(hidden, c, 1, 1, generator=g) / c**0.5
                _bn(s, f"{b}._bn0", hidden, g)
            s[f"{b}._depthwise_conv.weight"] = torch.randn(hidden, 1, kernel, kernel, generator=g) / kernel
            _bn(s, f"{b}._bn1", hidden, g)
            s[f"{b}._project_conv.weight"] = torch.randn(cout, hidden, 1, 1, generator=g) / hidden**0.5
            _bn(s, f"{b}._bn2", cout, g)
            n += 1
    s["_conv_head.weight"] = torch.randn(1280, 320, 1, 1, generator=g) / 320**0.5
    _bn(s, "_bn1", 1280, g)
    s["_fc.weight"] = torch.randn(1000, 1280, generator=g) * 0.01
    s["_fc.bias"] = torch.zeros(1000)
    return s


def face_like_image(size: int = 96) -> np.ndarray:
    """A smooth BGR 0..1 picture with structure (no padding-dominated flat field)."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.stack([0.5 + 0.4 * np.sin(6 * xx + 2 * yy), 0.4 + 0.3 * np.cos(5 * yy), 0.6 - 0.3 * xx * yy], axis=2)
    return img.astype(np.float32)


def test_converted_state_has_every_b0_feature_key_and_shape() -> None:
    converted = ii.convert_lite0(lite0_state())
    model = EfficientNetB0Features("relu6")
    features = {k: v for k, v in model.state_dict().items() if k.startswith("features.")}
    assert set(converted) == set(features)
    assert all(converted[k].shape == features[k].shape for k in features)
    check_state_keys(model, converted, "converted", ignore_prefix=("classifier.", "avgpool."))  # no error


def test_squeeze_excitation_is_an_exact_pass_through() -> None:
    converted = ii.convert_lite0(lite0_state())
    with_se = EfficientNetB0Features("relu6").eval()
    with_se.load_state_dict(converted, strict=False)
    without_se = EfficientNetB0Features("relu6").eval()
    without_se.load_state_dict(converted, strict=False)
    gate = torch.sigmoid(torch.tensor(ii.SE_BIAS))
    for block in without_se.modules():
        if hasattr(block, "block"):
            for i, m in enumerate(block.block):
                if m.__class__.__name__ == "SqueezeExcitation":
                    block.block[i] = nn.Identity()
                    with torch.no_grad():  # without SE, the projection keeps Lite0's own weights
                        block.block[i + 1][0].weight.mul_(gate)
    x = torch.from_numpy(face_like_image().transpose(2, 0, 1))[None]
    with torch.no_grad():
        a, b = with_se(x), without_se(x)
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))


def test_input_fold_equals_normalised_rgb_on_an_image() -> None:
    src = lite0_state()
    folded = ii.convert_lite0(src)
    plain = dict(folded)
    plain["features.0.0.weight"] = src["_conv_stem.weight"]
    plain["features.0.1.running_mean"] = src["_bn0.running_mean"]
    ours = EfficientNetB0Features("relu6").eval()
    ours.load_state_dict(folded, strict=False)
    reference = EfficientNetB0Features("relu6").eval()
    reference.load_state_dict(plain, strict=False)
    bgr = face_like_image()
    rgb = (bgr[..., ::-1] - np.array(ii.LITE0_MEAN, np.float32)) / np.array(ii.LITE0_STD, np.float32)
    with torch.no_grad():
        got = ours(torch.from_numpy(bgr.transpose(2, 0, 1).copy())[None])
        want = reference(torch.from_numpy(rgb.transpose(2, 0, 1).copy())[None])
    cosine = torch.nn.functional.cosine_similarity(got, want).item()
    assert cosine > 0.99  # only the stem's zero padding differs (zero BGR is not zero once normalised)
    flipped = ii.convert_lite0(src)
    flipped["features.0.0.weight"] = flipped["features.0.0.weight"].flip(1)  # a wrong fold must show
    ours.load_state_dict(flipped, strict=False)
    with torch.no_grad():
        wrong = torch.nn.functional.cosine_similarity(ours(torch.from_numpy(bgr.transpose(2, 0, 1).copy())[None]), want)
    assert wrong.item() < cosine


def test_written_file_loads_into_the_encoder_and_a_bad_file_names_its_keys(tmp_path: Path) -> None:
    lite = tmp_path / "lite0.pth"
    torch.save(lite0_state(), lite)
    out = ii.write_converted(lite, tmp_path / ii.CONVERTED_NAME)
    model = EfficientNetB0Features("relu6")
    load_imagenet_weights(model, out)
    assert torch.equal(model.state_dict()["features.8.0.weight"], lite0_state()["_conv_head.weight"])
    broken = lite0_state()
    del broken["_blocks.3._depthwise_conv.weight"]
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(ModelLoadError, match=r"_blocks\.3\._depthwise_conv\.weight"):
        ii.write_converted(tmp_path / "broken.pth", tmp_path / "x.pth")
    wrong = {k: v for k, v in torch.load(out, weights_only=True).items()}
    wrong["features.1.0.block.0.0.weight"] = torch.zeros(5, 1, 3, 3)
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(ModelLoadError, match=r"features\.1\.0\.block\.0\.0\.weight"):
        load_imagenet_weights(EfficientNetB0Features(), tmp_path / "wrong.pth")


def test_activation_travels_with_the_checkpoint_and_notebook_files_stay_silu(tmp_path: Path) -> None:
    relu = ClipDetector("relu6")
    save_state(relu, tmp_path / "relu6.pth")
    loaded = load_state(tmp_path / "relu6.pth")
    assert loaded.cnn.activation == "relu6"
    assert any(isinstance(m, nn.ReLU6) for m in loaded.modules())
    torch.save(ClipDetector().state_dict(), tmp_path / "notebook.pth")  # notebook B: no activation entry
    plain = load_state(tmp_path / "notebook.pth")
    assert plain.cnn.activation == "silu"
    assert not any(isinstance(m, nn.ReLU6) for m in plain.modules())
