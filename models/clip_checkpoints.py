"""What a model B run leaves in its folder, named once: every trainer writes and every reader finds
these files here (notebook B's name for the best state dict included)."""

from __future__ import annotations

from pathlib import Path

import torch

from dfstream.stream.contract.exceptions import ModelLoadError
from dfstream.stream.contract.types import EMBED_DIM

BEST_NAME = "mediapipe_model.pth"
"""Notebook B's file name for the best-F1 state dict, kept so its users find it where they expect."""
LAST_NAME = "last_model.pth"
"""The state the run ended with (an on-the-fly run: the state it kept)."""
RESUME_NAME = "resume.pt"
"""An unfinished run's state after its last finished epoch; the same command with the same --out goes on
from there, and the file goes when the run ends."""
PROBE_NAME = "probe.pth"
"""Beside an on-the-fly run's checkpoint: the encoder's linear probe, model A's frame-level teacher."""


def read_probe(checkpoint: Path) -> torch.nn.Linear:
    """The linear probe saved beside a model B checkpoint of ``train clip --faces``."""
    path = checkpoint.parent / PROBE_NAME
    if not path.is_file():
        raise ModelLoadError(f"{checkpoint}: no {PROBE_NAME} beside it (a checkpoint of 'train clip --faces' has one)")
    probe = torch.nn.Linear(EMBED_DIM, 1)
    probe.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return probe

