"""Deterministic weights and input for comparing our EfficientNet-B0 with torchvision's outputs.

The reference numbers in data/efficientnet_b0_torchvision_reference.json were produced by running
torchvision's ``efficientnet_b0`` with these weights on this input (see that file's ``source``).
"""

from __future__ import annotations

import math

import torch


def deterministic_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Smooth, input-independent values for every tensor, keyed and ordered by name."""
    out: dict[str, torch.Tensor] = {}
    for i, key in enumerate(sorted(state)):
        ref = state[key]
        if not ref.is_floating_point():
            out[key] = ref.clone()
            continue
        n = ref.numel()
        base = torch.sin(torch.arange(n, dtype=torch.float64) * 0.7311 + i).to(torch.float32)
        if key.endswith("running_var"):
            values = 0.75 + 0.25 * base
        elif key.endswith(("running_mean", "bias")):
            values = 0.05 * base
        elif key.endswith("weight") and ref.dim() == 1:  # BatchNorm gamma
            values = 1.0 + 0.2 * base
        else:  # conv kernels: keep activations at unit scale
            fan_in = n // ref.shape[0]
            values = base * math.sqrt(3.0 / fan_in)
        out[key] = values.reshape(ref.shape)
    return out


def reference_input() -> torch.Tensor:
    """2×3×64×64 in 0..1, smooth and different per image."""
    ys, xs = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    img0 = torch.stack([xs, ys, (xs + ys) / 2])
    img1 = torch.stack([torch.sin(6 * xs) * 0.5 + 0.5, ys**2, 1 - xs])
    return torch.stack([img0, img1])
