"""The graph variants dfstream writes and runs, in one table (as Ultralytics keeps its export formats):
for each role the stream runs, the precisions written beside its fp32 graph, and which one ``auto`` runs
on each kind of device. ``quantize``, ``quantize --fp16``, ``model_files`` and the CLI's help read it."""

from __future__ import annotations

from typing import Literal

from dfstream.stream.contract.metadata import Precision, Role

STREAM_ROLES: tuple[Role, ...] = ("frame_cnn", "clip_encoder", "clip_head")
"""The bundled graphs a stream runs, in the order it loads them."""
VARIANTS: dict[Role, tuple[Precision, ...]] = {
    "frame_cnn": ("fp32", "int8", "fp16"),
    "clip_encoder": ("fp32", "int8", "fp16"),
    "clip_head": ("fp32",),  # a few LSTM steps: nothing to gain, and its calibration is read off fp32
}
"""Per role, the precisions it may have; fp32 always exists, the others where a check passed."""
DeviceKind = Literal["cpu", "gpu"]
AUTO_PRECISION: dict[DeviceKind, Precision] = {"cpu": "int8", "gpu": "fp16"}
"""What ``auto`` runs where such a variant exists beside the fp32 graph (made from the same checkpoint);
fp32 elsewhere."""
AUTO_PRECISION_HELP = (f"auto (the {AUTO_PRECISION['cpu']} variants on a CPU, each passed its check in 'dfstream "
                       f"quantize', and the {AUTO_PRECISION['gpu']} ones on CUDA, where they exist; fp32 for the rest)")


def roles_with(precision: Precision) -> tuple[Role, ...]:
    """The stream's roles that may have a ``precision`` variant."""
    return tuple(role for role in STREAM_ROLES if precision in VARIANTS[role])
