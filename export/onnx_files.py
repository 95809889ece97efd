"""Writing ONNX files: metadata properties, fp16 variants, hashes, version strings."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import onnx

from dfstream import __version__
from dfstream.export.metadata import ModelMetadata

log = logging.getLogger(__name__)

OPSET = 17


@dataclass(frozen=True)
class ExportedFile:
    """One written graph and the parity it proved."""

    path: Path
    role: str
    precision: str
    max_abs_diff: float


def write_with_metadata(model: onnx.ModelProto, meta: ModelMetadata, path: Path) -> None:
    """Replace dfstream properties, check the graph, and save it as one self-contained file."""
    kept = [p for p in model.metadata_props if not p.key.startswith("dfstream.")]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in meta.to_props().items():
        model.metadata_props.add(key=key, value=value)
    model.producer_name = "dfstream"
    model.producer_version = __version__
    onnx.checker.check_model(model, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """fp16 weights and compute, fp32 inputs and outputs (callers keep feeding float32)."""
    import warnings

    from onnxconverter_common import float16

    with warnings.catch_warnings():  # one line per weight below fp16's smallest normal value
        warnings.simplefilter("ignore", UserWarning)
        converted: onnx.ModelProto = float16.convert_float_to_float16(model, keep_io_types=True)
    return converted


def base_metadata_versions() -> dict[str, str]:
    return {"dfstream_version": __version__}
