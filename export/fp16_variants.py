"""fp16 variants of a model folder's graphs, for CUDA, made from the fp32 graphs beside them.

The bundled folder ships fp32 (and model A's int8) only; ``bench models --device cuda`` and
``bench gpu-check`` time and check the fp16 variants where they exist, so this makes them without
the training checkpoints. The clip head stays fp32, as ``model_files`` runs it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from dfstream.export.onnx_files import ExportedFile, to_fp16, write_with_metadata
from dfstream.export.verify import FP16_TOL, check_parity, run_onnx
from dfstream.stream.contract.file_names import precision_path
from dfstream.stream.contract.metadata import INPUT_MAX
from dfstream.stream.contract.variants import roles_with
from dfstream.stream.model_set import model_files
from dfstream.stream.ort_sessions import read_metadata

FP16_ROLES = roles_with("fp16")


def _probe(path: Path, rows: int = 4) -> dict[str, np.ndarray]:
    """Random inputs at the graph's shapes (the batch axis at ``rows``), on each input's pixel scale."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    scale = INPUT_MAX[read_metadata(path).input_scale or "0-1"]
    return {i.name: (rng.random(tuple(rows if not isinstance(d, int) else d for d in i.shape), dtype=np.float32)
                     * scale) for i in session.get_inputs()}


def fp16_folder(models: Path, out: Path | None = None) -> list[ExportedFile]:
    """``<role>.fp16.onnx`` for model A and the clip encoder in ``out`` (default: ``models`` itself;
    another folder gets copies of the graphs it is made from), each checked against fp32 on the CPU."""
    out = out or models
    files = model_files(models)
    if out.resolve() != models.resolve():
        out.mkdir(parents=True, exist_ok=True)
        for path in sorted(models.glob("*.onnx")):
            shutil.copy2(path, out / path.name)
    written: list[ExportedFile] = []
    for role in FP16_ROLES:
        src = out / files[role].name
        half = precision_path(src, "fp16")
        write_with_metadata(to_fp16(onnx.load(str(src))), read_metadata(src).with_precision("fp16"), half)
        feeds = _probe(src)
        diff = check_parity(f"{half.name} (fp16 against fp32)", run_onnx(src, feeds), run_onnx(half, feeds), FP16_TOL)
        written.append(ExportedFile(half, role, "fp16", diff))
    return written
