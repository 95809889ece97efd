"""Where model B trains and is evaluated: torch's CUDA device when asked for (or, with ``auto``, when present)."""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


def train_device(choice: str) -> torch.device:
    """``auto``: the first CUDA device when torch sees one, else the CPU."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA device (a CPU-only build, or no driver)")
    device = torch.device("cuda" if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()) else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its fastest kernels once
    return device


def place(model: torch.nn.Module, choice: str, work: str = "trains") -> torch.device:
    """Move ``model`` to the device ``choice`` names (``train_device``), and say where it ``work``s in the log."""
    device = train_device(choice)
    log.info("model B %s on %s", work, device)
    model.to(device)
    return device


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device
