"""How a face model wants its face cut out of the frame: one versioned fact of each model's metadata.

The bundled models take a square 1.3 times the mesh box, padded black past the frame's edge. Published
detectors were trained on other crops, and a detector fed another framing than its own loses much of
what it learnt, so each imported model carries its own policy:

- ``box``: where the face box comes from. ``mesh`` is the extent of MediaPipe's 468 points: the face
  oval from the upper forehead (point 10) to the chin (152) and from ear to ear (234, 454), the extent a
  RetinaFace / WIDER FACE box has (forehead to chin, ear to ear);
- ``margins``: left, right, top, bottom, as fractions of the box's width (left, right) and height;
- ``square``: a square of the larger side around the widened box, or the widened box as it is;
- ``edge``: ``pad`` (black beyond the frame, the box never shifts) or ``clip`` (cut at the frame's
  edges, then resized to the input without keeping the aspect, as SBI's test-time crop does);
- ``align``: ``none``, or ``dfb5``: a similarity transform of five mesh points to DeepfakeBench's
  five-point template (its ``img_align_crop``), margins then ignored, ``align_scale`` its margin.

The text form (``CropPolicy.to_text``) is what ``dfstream.crop`` holds; a file without it is a bundled
model and crops as the bundled models always did.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, get_args

from dfstream.stream.contract.exceptions import MetadataError

CROP_SPEC_VERSION = "crop-v1"
BoxSource = Literal["mesh"]
Edge = Literal["pad", "clip"]
Align = Literal["none", "dfb5"]


@dataclass(frozen=True)
class CropPolicy:
    box: BoxSource = "mesh"
    margins: tuple[float, float, float, float] = (0.15, 0.15, 0.15, 0.15)
    """Left, right, top, bottom: fractions of the box's width (left, right) and height (top, bottom)."""
    square: bool = True
    edge: Edge = "pad"
    align: Align = "none"
    align_scale: float = 1.3
    """dfb5 only: the side of the output over the template's face (DeepfakeBench's ``scale``)."""

    def __post_init__(self) -> None:
        if self.box not in get_args(BoxSource):
            raise MetadataError(f"crop box {self.box!r} is not one of {', '.join(get_args(BoxSource))}")
        if self.edge not in get_args(Edge):
            raise MetadataError(f"crop edge {self.edge!r} is not one of {', '.join(get_args(Edge))}")
        if self.align not in get_args(Align):
            raise MetadataError(f"crop align {self.align!r} is not one of {', '.join(get_args(Align))}")
        if len(self.margins) != 4 or not all(-0.4 < m < 3.0 for m in self.margins):
            raise MetadataError(f"crop margins {self.margins!r} must be four fractions between -0.4 and 3")
        if not 1.0 <= self.align_scale <= 3.0:
            raise MetadataError(f"crop align_scale {self.align_scale!r} must lie between 1 and 3")

    def to_text(self) -> str:
        return ";".join((
            CROP_SPEC_VERSION,
            f"box={self.box}",
            "margins=" + ",".join(repr(float(m)) for m in self.margins),
            f"square={int(self.square)}",
            f"edge={self.edge}",
            f"align={self.align}",
            f"align_scale={float(self.align_scale)!r}",
        ))

    @classmethod
    def parse(cls, text: str) -> CropPolicy:
        """The policy a ``to_text`` string describes; MetadataError names what is wrong."""
        version, *items = text.split(";")
        if version != CROP_SPEC_VERSION:
            raise MetadataError(f"crop spec {version!r} is not supported (this build reads {CROP_SPEC_VERSION})")
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, object] = {}
        for item in items:
            key, _, value = item.partition("=")
            if key not in fields:
                raise MetadataError(f"crop spec has an unknown key {key!r}")
            try:
                if key == "margins":
                    kwargs[key] = tuple(float(v) for v in value.split(","))
                elif key == "square":
                    kwargs[key] = {"1": True, "0": False}[value]
                elif key == "align_scale":
                    kwargs[key] = float(value)
                else:
                    kwargs[key] = value
            except (ValueError, KeyError):
                raise MetadataError(f"crop spec value {key}={value!r} is invalid") from None
        return cls(**kwargs)  # type: ignore[arg-type]


BUNDLED_CROP = CropPolicy()
"""The bundled models' square: 1.3 times the larger side of the mesh box, padded."""
SBI_CROP = CropPolicy(margins=(0.125, 0.125, 0.125, 0.125), square=False, edge="clip")
"""SBI's test-time crop (``crop_face(..., phase='test')``): an eighth of the box on each side, cut at
the frame's edges, resized without keeping the aspect."""
DFB_ALIGNED_CROP = CropPolicy(align="dfb5", align_scale=1.3)
"""DeepfakeBench's preprocessing: five points aligned to its template with a 1.3 margin."""
