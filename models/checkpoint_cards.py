"""The card every checkpoint of a dfstream run carries inside its file: architecture, recipe and all its
options, the data build it learnt from and its validation metrics (as nanoGPT's checkpoints carry their
model arguments and config), so a checkpoint found alone still says what it is.

Model B's ``.pth`` holds it as one more state-dict entry (UTF-8 JSON in a uint8 tensor: the file stays
tensors only and loads with ``weights_only``); model A's ``.keras`` archive as one more member, which
Keras ignores when it loads the model.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from dfstream.stream.contract.exceptions import ModelLoadError
from dfstream.stream.contract.types import CLIP_LEN, EMBED_DIM

if TYPE_CHECKING:
    import torch

CARD_FORMAT = 1
CARD_KEY = "dfstream.card"
"""Model B: the state-dict entry that holds the card."""
KERAS_CARD_NAME = "dfstream_card.json"
"""Model A: the ``.keras`` archive member that holds the card."""


def build_of(data: Path) -> dict[str, Any] | None:
    """The data build a training folder belongs to (``OUT/clips/train`` or ``OUT/frames`` → ``OUT``): its
    folder, the sha256 of its package manifest and its summary; None outside a build (a notebook layout)."""
    for root in (data, data.parent, data.parent.parent):
        manifest = root / "manifest.json"
        if manifest.is_file():
            summary = root / "summary.json"
            return {"root": str(root.resolve()), "manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
                    "summary": json.loads(summary.read_text()) if summary.is_file() else None}
    return None


def checkpoint_card(architecture: dict[str, Any], recipe: str, config: BaseModel,
                    metrics: dict[str, float]) -> dict[str, Any]:
    """A card; ``config`` is the recipe's whole config (its ``data_dir`` names the data)."""
    options = config.model_dump(mode="json")
    return {"format": CARD_FORMAT, "architecture": architecture, "recipe": recipe, "config": options,
            "data": build_of(Path(options["data_dir"])), "metrics": metrics}


def clip_architecture(activation: str, img_size: int) -> dict[str, Any]:
    return {"encoder": "EfficientNet-B0", "activation": activation, "img_size": img_size, "clip_len": CLIP_LEN,
            "embed_dim": EMBED_DIM, "head": "BiLSTM"}


def frame_architecture(img_size: int) -> dict[str, Any]:
    return {"model": "CNN + CBAM", "img_size": img_size}


def card_tensor(card: dict[str, Any]) -> torch.Tensor:
    import torch  # not at import time: model A's trainer writes cards beside TensorFlow

    return torch.frombuffer(bytearray(json.dumps(card, sort_keys=True).encode()), dtype=torch.uint8).clone()


def _parsed(raw: bytes, path: Path) -> dict[str, Any]:
    try:
        card = json.loads(raw.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: its card is not JSON ({exc})") from None
    if not isinstance(card, dict):
        raise ModelLoadError(f"{path}: its card is not a JSON object")
    return card


def write_keras_card(path: Path, card: dict[str, Any]) -> None:
    """Add (or replace) the card of a saved ``.keras`` archive."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist() if name != KERAS_CARD_NAME}
    tmp = path.with_suffix(".card.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr(KERAS_CARD_NAME, json.dumps(card, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def read_card(path: Path) -> dict[str, Any] | None:
    """A checkpoint's card (model B ``.pth`` or model A ``.keras``); None where it has none (notebook files,
    or a dfstream before cards)."""
    if path.suffix.lower() == ".keras":
        try:
            with zipfile.ZipFile(path) as archive:
                raw = archive.read(KERAS_CARD_NAME) if KERAS_CARD_NAME in archive.namelist() else None
        except zipfile.BadZipFile as exc:
            raise ModelLoadError(f"{path}: not a .keras archive ({exc})") from None
        return None if raw is None else _parsed(raw, path)
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    entry = state.get(CARD_KEY) if isinstance(state, dict) else None
    return None if entry is None else _parsed(bytes(entry.to(torch.uint8).tolist()), path)


def trained_img_size(path: Path) -> int | None:
    """The crop side a checkpoint was trained at, from its card."""
    card = read_card(path)
    return None if card is None else int(card["architecture"]["img_size"])
