"""Model B: EfficientNet-B0 per frame, landmarks appended, BiLSTM over the clip, small classifier.

Module names match notebook B (``cnn.features.*``, ``lstm.*``, ``fc.0.*``, ``fc.3.*``), so its
``mediapipe_model.pth`` state dict loads with ``strict=True``. The forward pass is split into
``encode`` (one frame at a time, cacheable) and ``head`` (over 16 cached rows) so the streaming
runtime never re-encodes a clip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dfstream.models.checkpoint_cards import CARD_KEY, card_tensor
from dfstream.models.efficientnet_b0 import (
    ACTIVATIONS,
    Activation,
    EfficientNetB0Features,
    check_state_keys,
    read_state_dict,
)
from dfstream.stream.contract.exceptions import ModelLoadError
from dfstream.stream.contract.types import CLIP_CROP, EMBED_DIM, HEAD_FEATURES

INPUT_SCALE = "0-1"
"""Model B's input scale: notebook B applies ``ToTensor`` only (0..1, no ImageNet normalisation)."""
COLOR_ORDER = "BGR"
"""Notebook B reads frames with ``cv2.imread`` and never converts them."""
INPUT_SIZE = CLIP_CROP
LSTM_HIDDEN = 128
ACTIVATION_KEY = "dfstream.encoder_activation"
"""Extra state-dict entry naming the encoder's activation (an index into ``ACTIVATIONS``). Notebook B's
files lack it and load as SiLU, the B0 default."""


class ClipDetector(nn.Module):
    def __init__(self, activation: Activation = "silu") -> None:
        super().__init__()
        self.cnn = EfficientNetB0Features(activation)
        self.lstm = nn.LSTM(HEAD_FEATURES, LSTM_HIDDEN, num_layers=1, batch_first=True, bidirectional=True)
        self.fc = nn.Sequential(
            nn.Linear(2 * LSTM_HIDDEN, 64),
            nn.ReLU(),
            nn.Dropout(0.3),
            nn.Linear(64, 1),
            nn.Sigmoid(),
        )

    def encode(self, frames: Tensor) -> Tensor:
        """N×3×H×W (BGR, 0..1) → N×1280."""
        return self.cnn(frames)  # type: ignore[no-any-return]

    def head(self, features: Tensor) -> Tensor:
        """B×T×1285 (embedding then landmarks) → B probabilities from the last time step."""
        out, _ = self.lstm(features)
        return self.fc(out[:, -1, :]).squeeze(1)  # type: ignore[no-any-return]

    def head_input(self, frames: Tensor, lmks: Tensor) -> Tensor:
        """B×T×3×H×W frames and B×T×5 landmarks → B×T×1285 (embedding then landmarks)."""
        b, t = frames.shape[:2]
        emb = self.encode(frames.reshape(b * t, *frames.shape[2:])).reshape(b, t, EMBED_DIM)
        return torch.cat([emb, lmks], dim=2)

    def logit(self, frames: Tensor, lmks: Tensor) -> Tensor:
        """:meth:`forward` before its sigmoid: ranks clips whose probabilities round to 1.0 in float32."""
        out, _ = self.lstm(self.head_input(frames, lmks))
        return self.fc[:-1](out[:, -1, :]).squeeze(1)  # type: ignore[no-any-return]

    def forward(self, frames: Tensor, lmks: Tensor) -> Tensor:
        """B×T×3×H×W frames and B×T×5 landmarks → B probabilities."""
        return self.head(self.head_input(frames, lmks))


class EncoderGraph(nn.Module):
    """Export wrapper: the per-frame encoder alone."""

    def __init__(self, model: ClipDetector) -> None:
        super().__init__()
        self.model = model

    def forward(self, frames: Tensor) -> Tensor:
        return self.model.encode(frames)


class HeadGraph(nn.Module):
    """Export wrapper: BiLSTM + classifier over cached rows."""

    def __init__(self, model: ClipDetector) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: Tensor) -> Tensor:
        return self.model.head(features)


def save_state(model: ClipDetector, path: str | Path, card: dict[str, Any] | None = None) -> None:
    """The state dict plus the encoder's activation, so export rebuilds the same network, and the run's
    card (``checkpoint_cards``) when given."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}  # loads anywhere, GPU-trained or not
    state[ACTIVATION_KEY] = torch.tensor(ACTIVATIONS.index(model.cnn.activation))
    if card is not None:
        state[CARD_KEY] = card_tensor(card)
    torch.save(state, path)


def load_state(path: str | Path) -> ClipDetector:
    """Load a notebook-B style state dict strictly (never unpickles arbitrary objects)."""
    path = Path(path)
    state = read_state_dict(path)
    state.pop(CARD_KEY, None)
    code = state.pop(ACTIVATION_KEY, None)
    activation: Activation = "silu"
    if code is not None:
        if code.numel() != 1 or not 0 <= int(code) < len(ACTIVATIONS):
            raise ModelLoadError(f"{path}: '{ACTIVATION_KEY}' = {code.tolist()} names no known activation")
        activation = ACTIVATIONS[int(code)]  # type: ignore[assignment]
    model = ClipDetector(activation)
    check_state_keys(model, state, path)
    model.load_state_dict(state, strict=True)
    return model.eval()


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> None:
    """Give BatchNorm layers non-trivial statistics.

    A freshly initialised EfficientNet in eval mode produces outputs near 1e-13, on which any
    parity check passes vacuously; tests and parity fixtures use this to make outputs informative.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)  # type: ignore[union-attr]
                m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)  # type: ignore[union-attr]
                m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
