"""What a model B run leaves in its folder, named once: every trainer writes and every reader finds
these files here (notebook B's name for the best state dict included), and the card each checkpoint
carries: architecture, recipe and its options, data build and metrics, inside the file (as nanoGPT's
checkpoints carry their model arguments and config), so a checkpoint found alone still says what it is.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel

from dfstream.exceptions import ModelLoadError
from dfstream.stream.types import CLIP_LEN, EMBED_DIM

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


CARD_KEY = "dfstream.card"
"""Extra state-dict entry: the checkpoint's card as UTF-8 JSON in a uint8 tensor, so the file stays a
state dict of tensors that loads with ``weights_only`` (never unpickling objects)."""
CARD_FORMAT = 1


def build_of(data: Path) -> dict[str, Any] | None:
    """The data build a clip folder belongs to (``OUT/clips/train`` → ``OUT``): its folder, the sha256 of its
    package manifest and its summary; None for folders outside a build (notebook B's own layout)."""
    for root in (data, data.parent, data.parent.parent):
        manifest = root / "manifest.json"
        if manifest.is_file():
            summary = root / "summary.json"
            return {"root": str(root.resolve()), "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
                    "summary": json.loads(summary.read_text()) if summary.is_file() else None}
    return None


def checkpoint_card(recipe: str, config: BaseModel, activation: str, metrics: dict[str, float]) -> dict[str, Any]:
    """What a model B checkpoint says about itself; ``config`` is its recipe's whole config."""
    options = config.model_dump(mode="json")
    return {
        "format": CARD_FORMAT,
        "architecture": {"encoder": "EfficientNet-B0", "activation": activation, "img_size": options["img_size"],
                         "clip_len": CLIP_LEN, "embed_dim": EMBED_DIM, "head": "BiLSTM"},
        "recipe": recipe,
        "config": options,
        "data": build_of(Path(options["data_dir"])),
        "metrics": metrics,
    }


def card_tensor(card: dict[str, Any]) -> torch.Tensor:
    return torch.frombuffer(bytearray(json.dumps(card, sort_keys=True).encode()), dtype=torch.uint8).clone()


def card_of(entry: torch.Tensor, path: Path) -> dict[str, Any]:
    try:
        card = json.loads(bytes(entry.to(torch.uint8).tolist()).decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: its '{CARD_KEY}' entry is not a JSON card ({exc})") from None
    if not isinstance(card, dict):
        raise ModelLoadError(f"{path}: its '{CARD_KEY}' entry is not a JSON object")
    return card


def read_card(path: Path) -> dict[str, Any] | None:
    """A checkpoint's card; None for a checkpoint without one (notebook B's, or an older dfstream's)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    entry = state.get(CARD_KEY) if isinstance(state, dict) else None
    return None if entry is None else card_of(entry, path)


def trained_img_size(path: Path) -> int | None:
    """The crop side a checkpoint was trained at, from its card."""
    card = read_card(path)
    return None if card is None else int(card["architecture"]["img_size"])
