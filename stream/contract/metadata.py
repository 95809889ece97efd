"""The one metadata schema shared by export (writer) and runtime (reader).

Every dfstream ONNX file carries these keys in ``metadata_props``. The runtime refuses a file
whose metadata is missing or contradicts the pipeline, naming the field. This module is pure
Python so the streaming runtime can import it without onnx, torch or TensorFlow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from dfstream.stream.contract.crop_policy import BUNDLED_CROP, CropPolicy
from dfstream.stream.contract.exceptions import MetadataError
from dfstream.stream.contract.types import CLIP_LEN, EMBED_DIM, LMK_DIM, LMK_SPEC

PREFIX = "dfstream."
SCHEMA_VERSION = "1"

Role = Literal["frame_cnn", "clip_encoder", "clip_head", "clip_full", "face_model"]
"""face_model: a single-frame face classifier imported from elsewhere (``dfstream import``), scored
beside the bundled models under its own ``name`` and with its own ``crop``."""
Layout = Literal["NHWC", "NCHW", "NTF", "NTCHW"]
ColorOrder = Literal["RGB", "BGR"]
InputScale = Literal["0-1", "0-255"]
INPUT_MAX: dict[str, float] = {"0-1": 1.0, "0-255": 255.0}
"""Pixel value of full white at each input scale."""
Precision = Literal["fp32", "fp16", "int8"]
PositiveClass = Literal["fake", "real"]

ROLES: tuple[str, ...] = get_args(Role)

LAYOUT_OF_ROLE: dict[str, str] = {
    "frame_cnn": "NHWC",
    "clip_encoder": "NCHW",
    "clip_head": "NTF",
    "clip_full": "NTCHW",
    "face_model": "NCHW",
}
OTHER_LAYOUTS_OF_ROLE: dict[str, tuple[str, ...]] = {"face_model": ("NHWC",)}
"""Layouts a role accepts besides its own (an imported classifier may be channels-last)."""
FILE_NAME_OF_ROLE: dict[str, str] = {
    "frame_cnn": "frame_cnn.onnx",
    "clip_encoder": "clip_encoder.onnx",
    "clip_head": "clip_head.onnx",
    "clip_full": "clip_full.onnx",
}
"""File names that ``dfstream export`` writes and ``dfstream run --models DIR`` looks for."""

IMAGE_ROLES = frozenset({"frame_cnn", "clip_encoder", "clip_full", "face_model"})
CLIP_ROLES = frozenset({"clip_encoder", "clip_head", "clip_full"})


@dataclass(frozen=True)
class ModelMetadata:
    """What a consumer must know to feed a graph and read its output."""

    role: Role
    input_layout: Layout
    threshold: float
    source_sha256: str
    exporter: str
    framework: str
    opset: int
    precision: Precision = "fp32"
    positive_class: PositiveClass = "fake"
    input_size: int | None = None
    color_order: ColorOrder | None = None
    input_scale: InputScale | None = None
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    clip_len: int | None = None
    embed_dim: int | None = None
    lmk_dim: int | None = None
    lmk_spec: str | None = None
    calibration: tuple[float, float] = (1.0, 0.0)
    """Platt scaling fitted on validation: P = sigmoid(a·logit(p) + b) of the graph's P(fake) p.
    The runtime applies it, and ``threshold`` is on the calibrated scale; (1, 0) is the identity."""
    attention_output: str | None = None
    """frame_cnn only: name of the optional second output, the CBAM spatial-attention map (N, H, W)."""
    name: str | None = None
    """face_model only: the key of its score in records (``"models": {name: p}``) and in fusion weights."""
    crop: str | None = None
    """How the face is cut out (``export/crop_policy.py``); absent: the bundled models' square."""
    dfstream_version: str = ""
    schema_version: str = SCHEMA_VERSION

    def __post_init__(self) -> None:
        _check(self)

    def to_props(self) -> dict[str, str]:
        """Flatten to ONNX string properties (None fields are omitted)."""
        props: dict[str, str] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, tuple):
                text = ",".join(repr(float(v)) for v in value)
            else:
                text = str(value)
            props[PREFIX + f.name] = text
        return props

    @classmethod
    def from_props(cls, props: Mapping[str, str], where: str) -> ModelMetadata:
        """Parse ONNX properties; any problem is a MetadataError naming ``where`` and the field."""
        ours = {k[len(PREFIX) :]: v for k, v in props.items() if k.startswith(PREFIX)}
        if not ours:
            raise MetadataError(f"{where}: no dfstream metadata (export it with 'dfstream export')")
        kwargs: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            if f.name not in ours:
                continue
            raw = ours[f.name]
            kwargs[f.name] = _parse_field(f.name, raw, where)
        missing = [
            f.name
            for f in dataclasses.fields(cls)
            if f.name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise MetadataError(f"{where}: metadata field '{PREFIX}{missing[0]}' is missing")
        try:
            return cls(**kwargs)  # type: ignore[arg-type]
        except MetadataError as exc:
            raise MetadataError(f"{where}: {exc}") from None

    @property
    def crop_policy(self) -> CropPolicy:
        return BUNDLED_CROP if self.crop is None else CropPolicy.parse(self.crop)

    def with_precision(self, precision: Precision) -> ModelMetadata:
        return dataclasses.replace(self, precision=precision)


_INT_FIELDS = {"opset", "input_size", "clip_len", "embed_dim", "lmk_dim"}
_TRIPLE_FIELDS = {"mean", "std"}
_PAIR_FIELDS = {"calibration"}


def _parse_field(name: str, raw: str, where: str) -> object:
    try:
        if name in _INT_FIELDS:
            return int(raw)
        if name == "threshold":
            return float(raw)
        if name in _TRIPLE_FIELDS or name in _PAIR_FIELDS:
            values = tuple(float(v) for v in raw.split(","))
            want = 3 if name in _TRIPLE_FIELDS else 2
            if len(values) != want:
                raise ValueError(f"expected {want} comma-separated numbers")
            return values
    except ValueError as exc:
        raise MetadataError(f"{where}: metadata field '{PREFIX}{name}' = {raw!r} is invalid ({exc})") from None
    return raw


def _fail(name: str, value: object, why: str) -> None:
    raise MetadataError(f"metadata field '{PREFIX}{name}' = {value!r} {why}")


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _fail(name, value, f"is not one of {', '.join(choices)}")


def _check(m: ModelMetadata) -> None:
    _check_choice("role", m.role, ROLES)
    _check_choice("precision", m.precision, get_args(Precision))
    _check_choice("positive_class", m.positive_class, get_args(PositiveClass))
    if m.schema_version != SCHEMA_VERSION:
        _fail("schema_version", m.schema_version, f"is not supported (this build reads {SCHEMA_VERSION})")
    if m.input_layout != LAYOUT_OF_ROLE[m.role] and m.input_layout not in OTHER_LAYOUTS_OF_ROLE.get(m.role, ()):
        _fail("input_layout", m.input_layout, f"does not fit role {m.role} (needs {LAYOUT_OF_ROLE[m.role]})")
    if not 0.0 < m.threshold < 1.0:
        _fail("threshold", m.threshold, "must lie strictly between 0 and 1")
    if not (m.calibration[0] > 0 and all(abs(v) < 1e3 for v in m.calibration)):
        _fail("calibration", m.calibration, "needs a positive slope and finite values (a, b)")
    if m.attention_output is not None and m.role != "frame_cnn":
        _fail("attention_output", m.attention_output, "is only defined for role frame_cnn")
    if (m.role == "face_model") != (m.name is not None):
        _fail("name", m.name, "is required for role face_model and only for it")
    if m.name is not None and not (m.name.isascii() and m.name.replace("_", "").replace("-", "").isalnum()):
        _fail("name", m.name, "must be letters, digits, '-' or '_'")
    if m.crop is not None:
        try:
            CropPolicy.parse(m.crop)
        except MetadataError as exc:
            _fail("crop", m.crop, f"is invalid ({exc})")
    if m.role in IMAGE_ROLES:
        if m.input_size is None or m.input_size < 16:
            _fail("input_size", m.input_size, "must be an image side of at least 16 pixels")
        _check_choice("color_order", m.color_order, get_args(ColorOrder))
        _check_choice("input_scale", m.input_scale, get_args(InputScale))
        if any(s <= 0 for s in m.std):
            _fail("std", m.std, "must be positive")
    if m.role in CLIP_ROLES:
        if m.clip_len != CLIP_LEN:
            _fail("clip_len", m.clip_len, f"differs from the pipeline's clip length {CLIP_LEN}")
        if m.embed_dim != EMBED_DIM:
            _fail("embed_dim", m.embed_dim, f"differs from the pipeline's embedding width {EMBED_DIM}")
        if m.role != "clip_encoder":
            if m.lmk_dim != LMK_DIM:
                _fail("lmk_dim", m.lmk_dim, f"differs from the pipeline's landmark width {LMK_DIM}")
            if m.lmk_spec != LMK_SPEC:
                _fail("lmk_spec", m.lmk_spec, f"differs from the pipeline's landmark spec {LMK_SPEC}")
