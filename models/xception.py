"""Xception as DeepfakeBench's ``xception`` detector builds it, in plain torch with its key names.

DeepfakeBench (CC BY-NC 4.0) publishes checkpoints of its detector, whose ``backbone`` is this
network (``training/networks/xception.py``, itself FaceForensics++'s): an entry flow of two
convolutions and three strided blocks, eight middle blocks of three separable convolutions, an exit
block, two separable convolutions, ReLU, global average pooling and ``last_linear``. Written anew
from the layer list so that a published state dict loads with ``strict=True``; the unused
``adjust_channel`` branch exists only so that its keys match.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FEATURES = 2048


class SeparableConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cin, kernel, stride, padding, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.conv1(x))


class Block(nn.Module):
    """``reps`` (ReLU, separable 3×3, BN) units, widening on the first (``grow_first``) or the last,
    then a 3×3 max-pool when strided; a 1×1 strided projection on the skip when the shape changes."""

    def __init__(self, cin: int, cout: int, reps: int, stride: int = 1, start_with_relu: bool = True,
                 grow_first: bool = True) -> None:
        super().__init__()
        self.skip: nn.Conv2d | None = None
        if cout != cin or stride != 1:
            self.skip = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
            self.skipbn = nn.BatchNorm2d(cout)
        if grow_first:
            widths = [(cin, cout)] + [(cout, cout)] * (reps - 1)
        else:
            widths = [(cin, cin)] * (reps - 1) + [(cin, cout)]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(widths):
            if i > 0 or start_with_relu:  # the first block starts with its convolution
                layers.append(nn.ReLU(inplace=False))
            layers += [SeparableConv2d(a, b, 3, 1, 1), nn.BatchNorm2d(b)]
        if stride != 1:
            layers.append(nn.MaxPool2d(3, stride, 1))
        self.rep = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.skip is None else self.skipbn(self.skip(x))
        return self.rep(x) + skip


class Xception(nn.Module):
    def __init__(self, num_classes: int = 2, dropout: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, 2, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.block1 = Block(64, 128, 2, 2, start_with_relu=False)
        self.block2 = Block(128, 256, 2, 2)
        self.block3 = Block(256, 728, 2, 2)
        for i in range(4, 12):
            self.add_module(f"block{i}", Block(728, 728, 3, 1))
        self.block12 = Block(728, 1024, 2, 2, grow_first=False)
        self.conv3 = SeparableConv2d(1024, 1536, 3, 1, 1)
        self.bn3 = nn.BatchNorm2d(1536)
        self.conv4 = SeparableConv2d(1536, 2048, 3, 1, 1)
        self.bn4 = nn.BatchNorm2d(2048)
        self.last_linear: nn.Module = (nn.Sequential(nn.Dropout(0.5), nn.Linear(FEATURES, num_classes)) if dropout
                                       else nn.Linear(FEATURES, num_classes))
        self.adjust_channel = nn.Sequential(nn.Conv2d(2048, 512, 1, 1), nn.BatchNorm2d(512), nn.ReLU(inplace=True))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for i in range(1, 13):
            x = getattr(self, f"block{i}")(x)
        x = F.relu(self.bn3(self.conv3(x)))
        return self.bn4(self.conv4(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.features(x))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        out: torch.Tensor = self.last_linear(x)
        return out
