from __future__ import annotations

import dataclasses

import pytest

from dfstream.stream.contract.exceptions import MetadataError
from dfstream.stream.contract.metadata import ModelMetadata


def _frame_meta(**over: object) -> ModelMetadata:
    base = dict(
        role="frame_cnn",
        input_layout="NHWC",
        input_size=224,
        color_order="RGB",
        input_scale="0-255",
        threshold=0.4,
        source_sha256="ab" * 32,
        exporter="tf2onnx 1.17.0",
        framework="tensorflow 2.19.1",
        opset=17,
    )
    base.update(over)
    return ModelMetadata(**base)  # type: ignore[arg-type]


def _clip_meta(**over: object) -> ModelMetadata:
    base = dataclasses.asdict(_frame_meta())
    base.update(role="clip_head", input_layout="NTF", clip_len=16, embed_dim=1280, lmk_dim=5, lmk_spec="lmk5-v1")
    base.update(over)
    base["mean"], base["std"] = tuple(base["mean"]), tuple(base["std"])
    return ModelMetadata(**base)


def test_round_trip_through_string_properties() -> None:
    meta = _frame_meta(mean=(0.5, 0.25, 0.125), positive_class="real")
    props = meta.to_props()
    assert all(k.startswith("dfstream.") and isinstance(v, str) for k, v in props.items())
    assert "dfstream.clip_len" not in props
    assert ModelMetadata.from_props(props, "m.onnx") == meta
    assert ModelMetadata.from_props(_clip_meta().to_props(), "h.onnx") == _clip_meta()


def test_no_dfstream_metadata_is_refused() -> None:
    with pytest.raises(MetadataError, match=r"m\.onnx: no dfstream metadata"):
        ModelMetadata.from_props({"producer": "x"}, "m.onnx")


def test_missing_field_is_named() -> None:
    props = _frame_meta().to_props()
    del props["dfstream.threshold"]
    with pytest.raises(MetadataError, match=r"'dfstream\.threshold' is missing"):
        ModelMetadata.from_props(props, "m.onnx")


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        ("dfstream.role", "detector", r"'dfstream\.role' = 'detector' is not one of"),
        ("dfstream.input_layout", "NCHW", r"'dfstream\.input_layout' = 'NCHW' does not fit role frame_cnn"),
        ("dfstream.threshold", "1.5", r"'dfstream\.threshold' = 1\.5 must lie strictly between 0 and 1"),
        ("dfstream.threshold", "high", r"'dfstream\.threshold' = 'high' is invalid"),
        ("dfstream.input_scale", "0-65535", r"'dfstream\.input_scale' = '0-65535' is not one of 0-1, 0-255"),
        ("dfstream.color_order", "GRB", r"'dfstream\.color_order'"),
        ("dfstream.std", "1,1", r"'dfstream\.std' = '1,1' is invalid"),
        ("dfstream.schema_version", "9", r"'dfstream\.schema_version' = '9' is not supported"),
    ],
)
def test_contradicting_field_is_named(field: str, value: str, pattern: str) -> None:
    props = _frame_meta().to_props() | {field: value}
    with pytest.raises(MetadataError, match=pattern):
        ModelMetadata.from_props(props, "m.onnx")


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        ("dfstream.clip_len", "8", r"'dfstream\.clip_len' = 8 differs from the pipeline's clip length 16"),
        ("dfstream.lmk_spec", "lmk68", r"'dfstream\.lmk_spec' = 'lmk68' differs"),
        ("dfstream.embed_dim", "512", r"'dfstream\.embed_dim' = 512 differs"),
        ("dfstream.attention_output", "attention", r"'dfstream\.attention_output' = 'attention' is only defined"),
    ],
)
def test_clip_fields_must_match_the_pipeline(field: str, value: str, pattern: str) -> None:
    props = _clip_meta().to_props() | {field: value}
    with pytest.raises(MetadataError, match=pattern):
        ModelMetadata.from_props(props, "h.onnx")
