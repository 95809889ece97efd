"""Model B's encoder as a uniform weight average ("soup") of several fine-tunes from one start.

Fine-tunes of the same ImageNet start under different seeds land in one basin; their average costs
nothing at run time (one encoder, the same graph) and, where it holds, is expected to be steadier
on unfamiliar pictures than any single run. The averaged probe (a linear map on the same
embedding) stays the frame-level teacher model A is distilled from.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from dfstream.exceptions import ModelLoadError
from dfstream.models import clip_lstm
from dfstream.models.clip_checkpoints import read_probe
from dfstream.stream.types import EMBED_DIM

log = logging.getLogger(__name__)


def _average(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Floating tensors averaged; counters (BatchNorm's num_batches_tracked) taken from the first."""
    out = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            out[key] = torch.stack([s[key] for s in states]).mean(dim=0)
        else:
            out[key] = first.clone()
    return out


def soup_encoder(model: clip_lstm.ClipDetector, runs: tuple[Path, ...]) -> torch.nn.Linear:
    """Load into ``model.cnn`` the average of the encoders in ``runs`` (model B checkpoints with
    ``probe.pth`` beside them) and return their averaged probe. Activations must agree."""
    encoders, probes = [], []
    for path in runs:
        probes.append(read_probe(path).state_dict())
        member = clip_lstm.load_state(path)
        if member.cnn.activation != model.cnn.activation:
            raise ModelLoadError(
                f"{path}: encoder activation {member.cnn.activation}, the soup's is {model.cnn.activation}"
            )
        encoders.append(member.cnn.state_dict())
    model.cnn.load_state_dict(_average(encoders))
    probe = torch.nn.Linear(EMBED_DIM, 1)
    probe.load_state_dict(_average(probes))
    log.info("encoder: the average of %d fine-tunes (%s)", len(runs), ", ".join(str(p) for p in runs))
    return probe
