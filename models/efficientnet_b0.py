"""EfficientNet-B0 in plain torch with torchvision's module names and shapes.

PyPI's torchvision is a CUDA build that does not import beside the CPU torch used here, so the
network is written out; ``features.0.0.weight`` … ``features.8.1.*`` match torchvision exactly
(proved against a manifest in the tests), so torchvision state dicts load strictly.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from dfstream.stream.contract.exceptions import InputPathError, ModelLoadError, first_line
from dfstream.stream.contract.types import EMBED_DIM

log = logging.getLogger(__name__)

# (expand_ratio, kernel, stride, in_channels, out_channels, repeats) for B0 (width = depth = 1.0)
STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)
STOCHASTIC_DEPTH = 0.2

Activation = Literal["silu", "relu6"]
"""B0 uses SiLU; ``relu6`` matches EfficientNet-Lite0, whose ImageNet weights a registry package ships.
The ONNX contract does not depend on it, so either encoder runs in the same stream."""
ACTIVATIONS: tuple[str, ...] = get_args(Activation)


def activation_module(name: Activation) -> nn.Module:
    if name == "silu":
        return nn.SiLU(inplace=True)
    if name == "relu6":
        return nn.ReLU6(inplace=True)
    raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")


class ConvBNAct(nn.Sequential):
    """Conv (no bias) → BatchNorm → optional activation: torchvision's Conv2dNormActivation layout."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        act: Activation | None = "silu",
    ):
        mods: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act is not None:
            mods.append(activation_module(act))
        super().__init__(*mods)


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.SiLU(inplace=True)
        self.scale_activation = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        s = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return x * s


class StochasticDepth(nn.Module):
    """Row-wise residual drop during training; identity at inference."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        noise = torch.empty((x.shape[0], 1, 1, 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * noise / keep


class MBConv(nn.Module):
    def __init__(
        self, expand: int, kernel: int, stride: int, cin: int, cout: int, drop: float, act: Activation = "silu"
    ) -> None:
        super().__init__()
        hidden = cin * expand
        mods: list[nn.Module] = []
        if expand != 1:
            mods.append(ConvBNAct(cin, hidden, 1, act=act))
        mods += [
            ConvBNAct(hidden, hidden, kernel, stride, groups=hidden, act=act),
            SqueezeExcitation(hidden, max(1, cin // 4)),
            ConvBNAct(hidden, cout, 1, act=None),
        ]
        self.block = nn.Sequential(*mods)
        self.use_res_connect = stride == 1 and cin == cout
        self.stochastic_depth = StochasticDepth(drop)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.block(x)
        if self.use_res_connect:
            out = self.stochastic_depth(out) + x
        return out


class EfficientNetB0Features(nn.Module):
    """EfficientNet-B0 without its classifier: N×3×H×W → N×1280 (any H, W ≥ 32).

    The state dict is the same for either activation; ``activation`` only picks SiLU (B0, notebook
    B) or ReLU6 (Lite0's ImageNet weights)."""

    def __init__(self, activation: Activation = "silu") -> None:
        super().__init__()
        self.activation: Activation = activation
        total = sum(s[5] for s in STAGES)
        layers: list[nn.Module] = [ConvBNAct(3, 32, 3, stride=2, act=activation)]
        block_id = 0
        for expand, kernel, stride, cin, cout, repeats in STAGES:
            stage: list[nn.Module] = []
            for i in range(repeats):
                drop = STOCHASTIC_DEPTH * block_id / total
                stage.append(
                    MBConv(expand, kernel, stride if i == 0 else 1, cin if i == 0 else cout, cout, drop, activation)
                )
                block_id += 1
            layers.append(nn.Sequential(*stage))
        layers.append(ConvBNAct(STAGES[-1][4], EMBED_DIM, 1, act=activation))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Identity()
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))  # type: ignore[no-any-return]


def load_imagenet_weights(model: EfficientNetB0Features, path: str | Path | None) -> None:
    """Load ImageNet ``features.*`` weights (torchvision's B0, or Lite0 converted by ``imagenet_init``)
    from a local file, or say that training starts from scratch."""
    if path is None:
        log.warning("no --imagenet-weights file given: the EfficientNet-B0 encoder starts from random weights")
        return
    path = Path(path)
    state = read_state_dict(path)
    features = {k: v for k, v in state.items() if k.startswith("features.")}
    if not features:
        raise ModelLoadError(f"{path}: no 'features.*' keys; not an EfficientNet-B0 state dict")
    check_state_keys(model, features, path, ignore_prefix=("classifier.", "avgpool."))
    model.load_state_dict(features, strict=False)
    log.info("EfficientNet-B0 encoder initialised from %s (activation %s)", path, model.activation)


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """A file of named tensors, read without unpickling arbitrary objects (``weights_only``)."""
    if not path.is_file():
        raise InputPathError(f"model file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise ModelLoadError(f"{path}: not a torch state dict ({first_line(exc, 200)})") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ModelLoadError(f"{path}: does not hold a state dict of tensors")
    return state


def check_state_keys(
    model: nn.Module, state: dict[str, Tensor], where: str | Path, ignore_prefix: tuple[str, ...] = ()
) -> None:
    """Missing, unexpected or mis-shaped keys become one ModelLoadError listing the first few."""
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.startswith(ignore_prefix)]
    extra = [k for k in state if k not in own]
    shaped = [
        f"{k} {tuple(state[k].shape)}≠{tuple(own[k].shape)}"
        for k in state
        if k in own and state[k].shape != own[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing ({', '.join(missing[:3])}{', …' if len(missing) > 3 else ''})")
    if extra:
        problems.append(f"{len(extra)} unexpected ({', '.join(extra[:3])}{', …' if len(extra) > 3 else ''})")
    if shaped:
        problems.append(f"{len(shaped)} with other shapes ({', '.join(shaped[:3])})")
    if problems:
        raise ModelLoadError(f"{where}: state dict does not fit: " + "; ".join(problems))
