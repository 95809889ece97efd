"""Any ONNX face classifier as a dfstream face model, described by a small YAML spec.

The spec says what the graph cannot: how big its input is and how it is laid out, which colour
order, scale and mean/std it wants, how the face is cut out, and what its output means. The import
checks the graph's input against the spec, folds the output into P(fake) (a sigmoid of the other
class is inverted, a softmax is taken and its fake column picked) and writes the metadata.

Example::

    name: mydetector
    input_size: 224
    layout: NCHW            # or NHWC
    color_order: RGB        # or BGR
    input_scale: 0-1        # or 0-255
    mean: [0.485, 0.456, 0.406]
    std: [0.229, 0.224, 0.225]
    crop: sbi               # bundled | sbi | deepfakebench, or {margins: [l, r, t, b], square, edge, align}
    output: softmax         # sigmoid_fake | sigmoid_real | softmax
    fake_index: 1           # softmax only
    threshold: 0.5
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import onnx
import yaml
from onnx import helper
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dfstream.export.onnx_files import ExportedFile, base_metadata_versions, write_with_metadata
from dfstream.stream.contract.crop_policy import BUNDLED_CROP, DFB_ALIGNED_CROP, SBI_CROP, CropPolicy
from dfstream.stream.contract.exceptions import DfstreamError, MetadataError
from dfstream.stream.contract.file_names import sha256_of
from dfstream.stream.contract.metadata import ModelMetadata

CROP_PRESETS = {"bundled": BUNDLED_CROP, "sbi": SBI_CROP, "deepfakebench": DFB_ALIGNED_CROP}
P_FAKE = "p_fake"


class SpecError(DfstreamError):
    """A spec that cannot describe the graph: bad YAML, a bad field, or an input the graph lacks."""


class CropSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    margins: tuple[float, float, float, float] = Field(description="left, right, top, bottom, fractions of the box")
    square: bool = True
    edge: Literal["pad", "clip"] = "pad"
    align: Literal["none", "dfb5"] = "none"
    align_scale: float = 1.3


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
    input_size: int = Field(ge=16, le=2048)
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    color_order: Literal["RGB", "BGR"] = "RGB"
    input_scale: Literal["0-1", "0-255"] = "0-1"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    crop: Literal["bundled", "sbi", "deepfakebench"] | CropSpec = "bundled"
    output: Literal["sigmoid_fake", "sigmoid_real", "softmax"]
    fake_index: int = Field(1, ge=0)
    threshold: float = Field(0.5, gt=0, lt=1)

    def crop_policy(self) -> CropPolicy:
        if isinstance(self.crop, str):
            return CROP_PRESETS[self.crop]
        try:
            return CropPolicy(**self.crop.model_dump())
        except MetadataError as exc:
            raise SpecError(f"crop: {exc}") from None


def read_spec(path: Path) -> ModelSpec:
    """The spec in ``path``; any problem is one SpecError naming the file and the field."""
    if not path.is_file():
        raise SpecError(f"spec file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise SpecError(f"{path}: {field}: {first['msg']}") from None


def _dims(value_info: onnx.ValueInfoProto) -> list[int | None]:
    return [d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim]


def check_graph(model: onnx.ModelProto, spec: ModelSpec, where: str) -> None:
    """The graph's single image input and single output must be what the spec says."""
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise SpecError(f"{where}: the graph has {len(inputs)} inputs; a face model takes one image batch")
    got = _dims(inputs[0])
    s = spec.input_size
    want: list[int | None] = [None, 3, s, s] if spec.layout == "NCHW" else [None, s, s, 3]
    if len(got) != 4 or any(g is not None and w is not None and g != w for g, w in zip(got, want, strict=True)):
        shown = ["N" if w is None else w for w in want]
        raise SpecError(f"{where}: input '{inputs[0].name}' has shape {got}, but the spec "
                        f"(layout {spec.layout}, input_size {s}) says {shown}")
    if len(model.graph.output) != 1:
        raise SpecError(f"{where}: the graph has {len(model.graph.output)} outputs; give it one score output")
    out = _dims(model.graph.output[0])
    if spec.output == "softmax" and (len(out) != 2 or (out[1] is not None and out[1] <= spec.fake_index)):
        raise SpecError(f"{where}: output '{model.graph.output[0].name}' has shape {out}; softmax with "
                        f"fake_index {spec.fake_index} needs (N, more than {spec.fake_index})")
    if spec.output != "softmax" and len(out) not in (1, 2):
        raise SpecError(f"{where}: output '{model.graph.output[0].name}' has shape {out}; a sigmoid is (N) or (N, 1)")


def fold_to_p_fake(model: onnx.ModelProto, spec: ModelSpec) -> onnx.ModelProto:
    """Append the nodes that turn the graph's output into one P(fake) per image, named ``p_fake``."""
    graph = model.graph
    raw = graph.output[0].name
    nodes: list[onnx.NodeProto] = []
    if spec.output == "softmax":
        graph.initializer.append(helper.make_tensor("fake_index", onnx.TensorProto.INT64, [], [spec.fake_index]))
        nodes += [helper.make_node("Softmax", [raw], ["probabilities"], axis=1),
                  helper.make_node("Gather", ["probabilities", "fake_index"], [P_FAKE], axis=1)]
    else:
        graph.initializer.append(helper.make_tensor("flat", onnx.TensorProto.INT64, [1], [-1]))
        flat = "p_raw" if spec.output == "sigmoid_real" else P_FAKE
        nodes.append(helper.make_node("Reshape", [raw, "flat"], [flat]))
        if spec.output == "sigmoid_real":
            graph.initializer.append(helper.make_tensor("one", onnx.TensorProto.FLOAT, [], [1.0]))
            nodes.append(helper.make_node("Sub", ["one", flat], [P_FAKE]))
    graph.node.extend(nodes)
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(P_FAKE, onnx.TensorProto.FLOAT, ["N"]))
    return model


def import_onnx(path: Path, spec_path: Path, out_dir: Path) -> ExportedFile:
    """Write ``out_dir/<name>.onnx``: the graph with P(fake) folded in and the spec as metadata."""
    spec = read_spec(spec_path)
    if not path.is_file():
        raise SpecError(f"model file not found: {path}")
    try:
        model = onnx.load_model(str(path))
    except Exception as exc:  # onnx raises DecodeError and others for a file that is not a graph
        raise SpecError(f"{path}: not an ONNX model ({str(exc).splitlines()[0][:160] if str(exc) else exc})") from None
    check_graph(model, spec, str(path))
    meta = ModelMetadata(
        role="face_model", input_layout=spec.layout, input_size=spec.input_size, color_order=spec.color_order,
        input_scale=spec.input_scale, mean=spec.mean, std=spec.std, threshold=spec.threshold, name=spec.name,
        crop=spec.crop_policy().to_text(), source_sha256=sha256_of(path), exporter="dfstream import onnx",
        framework=f"{model.producer_name or 'unknown'} {model.producer_version}".strip(),
        opset=max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0),
        **base_metadata_versions(),  # type: ignore[arg-type]
    )
    out = out_dir / f"{spec.name}.onnx"
    write_with_metadata(fold_to_p_fake(model, spec), meta, out)
    return ExportedFile(out, "face_model", "fp32", 0.0)
