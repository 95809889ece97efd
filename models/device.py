"""Where model B trains and is evaluated: torch's CUDA device when asked for (or, with ``auto``, when present)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import torch

from dfstream.stream.contract.exceptions import DfstreamError

log = logging.getLogger(__name__)


def train_device(choice: str) -> torch.device:
    """``auto``: the first CUDA device when torch sees one, else the CPU."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise DfstreamError("--device cuda: torch sees no CUDA device (a CPU-only build, or no driver)")
    device = torch.device("cuda" if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()) else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its fastest kernels once
        # fp32 means fp32: TF32 matmuls and convolutions would not be, and CPU parity would drift (--amp is
        # the fast way, and says so)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return device


def workers_for(given: int | None, device: torch.device) -> int:
    """Data worker processes: as given, else on CUDA the cores less one, so the GPU is never kept waiting
    for pictures, and on the CPU none (the training itself uses the cores)."""
    if given is not None:
        return given
    return max(1, (os.cpu_count() or 2) - 1) if device.type == "cuda" else 0


class MixedPrecision:
    """``--amp``: fp16 autocast and a gradient scaler on CUDA; without it, plain fp32 steps.

    Losses on probabilities (BCELoss) are not safe in fp16, so callers compute only the forward pass
    inside :meth:`autocast` and the loss on ``.float()`` outputs."""

    def __init__(self, device: torch.device, enabled: bool) -> None:
        if enabled and device.type != "cuda":
            raise DfstreamError(f"--amp: mixed precision is for CUDA; model B trains on {device.type} here")
        self.enabled = enabled
        self.scaler = torch.amp.GradScaler("cuda", enabled=enabled)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        with torch.autocast("cuda", dtype=torch.float16):
            yield

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        optimizer.zero_grad()
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()


def place(model: torch.nn.Module, choice: str, work: str = "trains") -> torch.device:
    """Move ``model`` to the device ``choice`` names (``train_device``), and say where it ``work``s in the log."""
    device = train_device(choice)
    log.info("model B %s on %s", work, device)
    model.to(device)
    return device


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device
