"""Published detectors' checkpoints → one ONNX face model each, P(fake) out, checked against torch.

A user downloads the checkpoint (dfstream bundles and fetches none: SBI's licence is research-only,
DeepfakeBench's CC BY-NC 4.0) and passes the file. Each detector is a row of :data:`DETECTORS`: how
to build its network with the checkpoint's key names, where its state dict sits in the file, and the
preprocessing its authors' test code applies (size, colour, scale, mean/std, crop). The softmax is
folded into the graph, so the stream reads P(fake) like any other model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dfstream.export.onnx_files import OPSET, ExportedFile, base_metadata_versions, to_fp16, write_with_metadata
from dfstream.export.verify import FP16_TOL, FP32_TOL, check_informative, check_parity, run_onnx
from dfstream.stream.contract.crop_policy import DFB_ALIGNED_CROP, SBI_CROP, CropPolicy
from dfstream.stream.contract.exceptions import DfstreamError, ExportCheckError
from dfstream.stream.contract.file_names import fp16_path, sha256_of
from dfstream.stream.contract.metadata import ModelMetadata

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5
"""Until ``dfstream calibrate`` fits one on the user's clips: the detector's own argmax."""


class CheckpointError(DfstreamError):
    """A file that is not the checkpoint asked for: unreadable, or with other keys than the network's."""


@dataclass(frozen=True)
class Detector:
    """What importing one published detector takes."""

    name: str
    build: Callable[[int], torch.nn.Module]
    """The network whose ``state_dict`` keys the checkpoint holds, wrapped to return logits, given the
    number of classes (read from ``classes_key`` in the checkpoint)."""
    state_key: str | None
    """Where the state dict sits in the saved object (None: the object is the state dict)."""
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop: CropPolicy
    fake_index: int = 1
    classes_key: str | None = None
    """The classifier's weight, whose rows are the classes (None: 2 classes)."""
    source: str = ""
    """Where the checkpoint is published and its licence (for messages and the README)."""


def _sbi(classes: int = 2) -> torch.nn.Module:
    """SBI's ``Detector``: one child ``net``, efficientnet_pytorch's EfficientNet-B4 with 2 classes."""
    from efficientnet_pytorch import EfficientNet
    from torch import nn

    class SbiDetector(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = EfficientNet.from_name("efficientnet-b4", num_classes=classes)
            self.net.set_swish(memory_efficient=False)  # the traceable Swish; same values

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.net(x)
            return out

    return SbiDetector()


def _dfb_efficientnetb4(classes: int = 2) -> torch.nn.Module:
    """DeepfakeBench's ``efficientnetb4`` detector: ``backbone.efficientnet`` (EfficientNet-B4 whose stem
    is a plain unpadded 3×3 stride-2 convolution and whose ``_fc`` is gone) and ``backbone.last_layer``."""
    import torch.nn.functional as F
    from efficientnet_pytorch import EfficientNet
    from torch import nn

    class Backbone(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.efficientnet = EfficientNet.from_name("efficientnet-b4")
            self.efficientnet._conv_stem = nn.Conv2d(3, 48, kernel_size=3, stride=2, bias=False)
            self.efficientnet._fc = nn.Identity()
            self.efficientnet.set_swish(memory_efficient=False)
            self.last_layer = nn.Linear(1792, classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = F.adaptive_avg_pool2d(self.efficientnet.extract_features(x), 1).flatten(1)
            out: torch.Tensor = self.last_layer(x)
            return out

    return _with_backbone(Backbone())


def _dfb_xception(classes: int = 2) -> torch.nn.Module:
    from dfstream.models.xception import Xception

    return _with_backbone(Xception(classes))


def _with_backbone(backbone: torch.nn.Module) -> torch.nn.Module:
    """DeepfakeBench's detectors hold their network as ``backbone`` (the loss has no weights)."""
    from torch import nn

    class DfbDetector(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = backbone

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.backbone(x)
            return out

    return DfbDetector()


SBI_SOURCE = ("github.com/mapooon/SelfBlendedImages (weights linked from its README; research-only licence)")
DFB_SOURCE = "github.com/SCLBD/DeepfakeBench releases (CC BY-NC 4.0)"
DFB_MEAN_STD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

DETECTORS: dict[str, Detector] = {
    "sbi": Detector("sbi", _sbi, "model", 380, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), SBI_CROP, source=SBI_SOURCE),
    "xception": Detector("xception", _dfb_xception, None, 256, *DFB_MEAN_STD, DFB_ALIGNED_CROP, source=DFB_SOURCE),
    "efficientnetb4": Detector("efficientnetb4", _dfb_efficientnetb4, None, 256, *DFB_MEAN_STD, DFB_ALIGNED_CROP,
                               source=DFB_SOURCE),
    "sbi_dfb": Detector("sbi_dfb", _dfb_efficientnetb4, None, 256, *IMAGENET_MEAN_STD, DFB_ALIGNED_CROP,
                        classes_key="backbone.last_layer.weight", source=DFB_SOURCE),
}
"""sbi: SBI's own test code (380 px, RGB 0..1, no mean/std). xception, efficientnetb4: DeepfakeBench's
configs (``training/config/detector/*.yaml``: 256 px, mean = std = 0.5) and its aligned crops. sbi_dfb:
DeepfakeBench's own SBI (its ``efficientnetb4`` backbone, ImageNet mean/std, as many classes as its
checkpoint's classifier has; P(fake) = softmax[1], as its detector reads it)."""


def read_state_dict(path: Path, detector: Detector) -> dict[str, torch.Tensor]:
    """The state dict inside ``path``; a DataParallel ``module.`` prefix is dropped."""
    import pickle
    import zipfile

    import torch

    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        saved: Any = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as exc:
        raise CheckpointError(f"{path}: not a torch checkpoint ({str(exc).splitlines()[0][:160]})") from None
    if detector.state_key is not None and isinstance(saved, Mapping) and detector.state_key in saved:
        saved = saved[detector.state_key]
    if not isinstance(saved, Mapping) or not all(isinstance(v, torch.Tensor) for v in saved.values()):
        where = f"its '{detector.state_key}' entry" if detector.state_key else "it"
        raise CheckpointError(f"{path}: not a {detector.name} checkpoint ({where} is not a state dict of tensors)")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in saved.items()}


def load_network(path: Path, detector: Detector) -> torch.nn.Module:
    """The detector's network with the checkpoint's weights (strict: every key, every shape)."""
    state = read_state_dict(path, detector)
    classes = 2
    if detector.classes_key is not None and detector.classes_key in state:
        classes = int(state[detector.classes_key].shape[0])
    net = detector.build(classes)
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    if missing or extra:
        parts = [f"missing {', '.join(missing[:3])}" if missing else "", f"unexpected {', '.join(extra[:3])}"
                 if extra else ""]
        raise CheckpointError(f"{path}: not a {detector.name} checkpoint: "
                              + "; ".join(p for p in parts if p) + f" ({len(missing)} missing, {len(extra)} extra)")
    shapes = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
    if shapes:
        k = shapes[0]
        raise CheckpointError(f"{path}: {k} has shape {tuple(state[k].shape)}, {detector.name} needs "
                              f"{tuple(own[k].shape)}")
    net.load_state_dict(state, strict=True)
    return net.eval()


def probability_of_fake(net: torch.nn.Module, fake_index: int) -> torch.nn.Module:
    """``net``'s logits as P(fake) = softmax[:, fake_index] (the module is built here: torch is optional)."""
    from torch import nn

    class _P(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.net(x).softmax(dim=1)[:, fake_index]
            return out

    return _P().eval()


def probe_faces(size: int, count: int = 3, seed: int = 0) -> np.ndarray:
    """(count, 3, size, size) inputs in 0..1: noise over smooth ramps, different per image."""
    rng = np.random.default_rng(seed)
    ys, xs = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
    ramp = np.stack([xs, ys, 1 - xs])[None]
    mix = rng.uniform(0.2, 0.8, (count, 1, 1, 1))
    faces: np.ndarray = (mix * rng.uniform(0, 1, (count, 3, size, size)) + (1 - mix) * ramp).astype(np.float32)
    return faces


def import_detector(kind: str, checkpoint: Path, out_dir: Path, name: str | None = None,
                    probes: np.ndarray | None = None, fp16: bool = False) -> list[ExportedFile]:
    """Write ``out_dir/<name>.onnx`` from a published checkpoint; parity with torch ≤ 1e-4 in P(fake)
    (and ``<name>.fp16.onnx`` for CUDA with ``fp16``, ≤ 2e-2).

    ``probes`` are normalised model inputs (N, 3, S, S) for the check; default: :func:`probe_faces`."""
    import torch

    from dfstream.export.torch_onnx import trace_to_onnx

    detector = DETECTORS[kind]
    net = probability_of_fake(load_network(checkpoint, detector), detector.fake_index)
    if probes is None:
        unit = probe_faces(detector.input_size)
        probes = ((unit - np.asarray(detector.mean, np.float32)[:, None, None])
                  / np.asarray(detector.std, np.float32)[:, None, None]).astype(np.float32)
    with torch.no_grad():
        reference = net(torch.from_numpy(probes)).numpy()
    try:
        check_informative(kind, reference, "are the weights trained?")
    except ExportCheckError as exc:  # a real detector may agree on synthetic probes; parity still holds
        log.warning("%s", exc)
    meta = ModelMetadata(
        role="face_model", input_layout="NCHW", input_size=detector.input_size, color_order="RGB",
        input_scale="0-1", mean=detector.mean, std=detector.std, threshold=DEFAULT_THRESHOLD,
        name=name or detector.name, crop=detector.crop.to_text(), source_sha256=sha256_of(checkpoint),
        exporter=f"torch.onnx (TorchScript) {torch.__version__}", framework=f"torch {torch.__version__}",
        opset=OPSET, **base_metadata_versions(),  # type: ignore[arg-type]
    )
    path = out_dir / f"{meta.name}.onnx"
    graph = trace_to_onnx(net, (torch.from_numpy(probes),), ["image"])
    write_with_metadata(graph, meta, path)
    diff = check_parity(path.name, reference, run_onnx(path, {"image": probes}), FP32_TOL)
    log.info("%s: %s (P(fake) max diff vs torch %.2e)", kind, path, diff)
    written = [ExportedFile(path, "face_model", "fp32", diff)]
    if fp16:
        half = fp16_path(path)
        write_with_metadata(to_fp16(graph), meta.with_precision("fp16"), half)
        written.append(ExportedFile(half, "face_model", "fp16",
                                    check_parity(half.name, reference, run_onnx(half, {"image": probes}), FP16_TOL)))
    return written
