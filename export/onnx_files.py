"""Writing ONNX files: metadata properties, fp16 variants, hashes, version strings."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import onnx

from dfstream import __version__
from dfstream.stream.contract.metadata import ModelMetadata

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
    """fp16 weights and compute, fp32 inputs and outputs (callers keep feeding float32).

    The converter warns once per weight it moves into fp16's range; those are counted into one line:
    weights below 1e-7 become ±1e-7 (harmless), weights beyond 65504 are clipped (the graph's
    answers may change: the parity check that follows says by how much)."""
    import warnings

    from onnxconverter_common import float16

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        converted: onnx.ModelProto = float16.convert_float_to_float16(model, keep_io_types=True)
    moved = [str(w.message) for w in caught if "will be truncated to" in str(w.message)]
    clipped = sum(abs(float(m.rsplit(" ", 1)[1])) > 1.0 for m in moved)
    if clipped:
        log.warning("fp16: %d weight(s) beyond fp16's range clipped to ±65504, %d tiny one(s) raised to ±1e-7",
                    clipped, len(moved) - clipped)
    elif moved:
        log.info("fp16: %d tiny weight(s) raised to ±1e-7 (below fp16's range)", len(moved))
    return converted


def base_metadata_versions() -> dict[str, str]:
    return {"dfstream_version": __version__}
