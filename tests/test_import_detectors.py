"""Published detectors imported from checkpoints in their exact published layouts (random weights,
batch-norm statistics re-estimated on real face crops so that answers vary), checked against torch
on crops cut the way the reference code cuts them; and bad files refused in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from dfstream.stream.contract.crop_policy import BUNDLED_CROP, SBI_CROP, CropPolicy
from dfstream.stream.contract.paths import SAMPLE_CLIP
from dfstream.stream.contract.types import FaceObs
from dfstream.stream.crops import crop_face, crop_for, dfb5_target, similarity
from dfstream.stream.face_models import FaceModel
from dfstream.stream.faces import FaceStage
from tests.conftest import read_frames

DATA = Path(__file__).parent / "data"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dfstream.cli", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def faces() -> list[tuple[np.ndarray, FaceObs]]:
    """Real frames of the sample clip with their MediaPipe faces."""
    frames = read_frames(SAMPLE_CLIP, limit=61)[::20]
    stage = FaceStage(max_faces=1, video=False)
    try:
        return [(f, stage(f)[0]) for f in frames]
    finally:
        stage.close()


def _reestimate_bn(net: torch.nn.Module, batch: torch.Tensor) -> None:
    """Batch-norm running statistics = the statistics of ``batch`` (random init leaves outputs constant)."""
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    net.train()
    with torch.no_grad():
        net(batch)
    net.eval()


def _sbi_reference_input(image: np.ndarray, bbox: tuple[float, float, float, float]) -> np.ndarray:
    """SBI's test path, written from its description: box widened by w/8 and h/8 per side (int(), +1
    at the far edges), cut at the frame, resized to 380 (aspect not kept), RGB, /255, CHW."""
    x, y, w, h = bbox
    height, width = image.shape[:2]
    y0, y1 = max(0, int(y - h / 8)), min(height, int(y + h + h / 8) + 1)
    x0, x1 = max(0, int(x - w / 8)), min(width, int(x + w + w / 8) + 1)
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    face = cv2.resize(rgb[y0:y1, x0:x1], (380, 380))
    return (face.transpose(2, 0, 1).astype(np.float32) / 255.0)[None]


@pytest.fixture(scope="module")
def sbi_checkpoint(tmp_path_factory: pytest.TempPathFactory, faces: list[tuple[np.ndarray, FaceObs]]) -> Path:
    """SBI's training script's file: {"model": Detector.state_dict() (keys net.*), "optimizer", "epoch"}."""
    from efficientnet_pytorch import EfficientNet

    torch.manual_seed(0)
    net = EfficientNet.from_name("efficientnet-b4", num_classes=2)
    net.set_swish(memory_efficient=False)
    crops = np.concatenate([_sbi_reference_input(img, f.bbox) for img, f in faces])
    _reestimate_bn(net, torch.from_numpy(np.concatenate([crops, crops[:, :, ::-1].copy()])))
    path = tmp_path_factory.mktemp("sbi") / "FFraw.tar"
    torch.save({"model": {f"net.{k}": v for k, v in net.state_dict().items()},
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.001, "rho": 0.05, "params": [0]}]},
                "epoch": 99}, path)
    return path


@pytest.mark.slow
def test_sbi_import_scores_real_faces_as_torch_does_on_sbis_own_crop(
        sbi_checkpoint: Path, faces: list[tuple[np.ndarray, FaceObs]], tmp_path: Path) -> None:
    from efficientnet_pytorch import EfficientNet

    done = _cli("import", "sbi", str(sbi_checkpoint), "-o", str(tmp_path))
    assert done.returncode == 0, done.stderr
    model = FaceModel.load(tmp_path / "sbi.onnx", "cpu")
    assert model.name == "sbi" and model.crop_policy == SBI_CROP and model.input.size == 380
    ours = model.scores([model.crop(img, f) for img, f in faces])
    # torch on the reference preprocessing, from the checkpoint as SBI's inference script loads it
    net = EfficientNet.from_name("efficientnet-b4", num_classes=2)
    net.load_state_dict({k[4:]: v for k, v in torch.load(sbi_checkpoint)["model"].items()}, strict=True)
    with torch.no_grad():
        ref = net.eval()(torch.from_numpy(np.concatenate([_sbi_reference_input(img, f.bbox) for img, f in faces])))
    expected = ref.softmax(1)[:, 1].numpy()
    assert np.ptp(expected) > 1e-3, "random weights gave the same answer for every face: the check proves nothing"
    assert np.abs(ours - expected).max() <= 1e-4


def test_policies_cut_the_reference_pixels_also_at_the_frame_edge() -> None:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    for bbox in [(100.3, 60.7, 80.2, 90.9), (-20.5, -10.0, 90.0, 100.0), (270.0, 180.0, 70.0, 80.0)]:
        face = FaceObs(bbox=bbox, points=np.zeros((468, 2), np.float32), lmk5=np.zeros(5, np.float32))
        assert np.array_equal(crop_for(image, face, BUNDLED_CROP, 128), crop_face(image, bbox, 128))
        sbi = crop_for(image, face, SBI_CROP, 380)
        expected = cv2.cvtColor(_sbi_reference_input(image, bbox)[0].transpose(1, 2, 0), cv2.COLOR_RGB2BGR) * 255
        assert np.abs(sbi.astype(np.float32) - expected).max() < 0.51  # equal up to the /255 rounding
        # a padded square keeps the face where it is: the frame's corner lands where the box says
        padded = crop_for(image, face, CropPolicy(margins=(0.0, 0.0, 0.0, 0.0), square=False), 64)
        x, y, w, h = bbox
        if x < 0 and y < 0:
            col, row = int(np.ceil(-x * 64 / w)) + 1, int(np.ceil(-y * 64 / h)) + 1
            assert padded[: row - 2, : col - 2].max() == 0 and padded[row:, col:].max() > 0


def test_five_point_alignment_lands_the_points_on_deepfakebenchs_template() -> None:
    target = dfb5_target(256, 1.3)
    # the template as DeepfakeBench's img_align_crop moves it: +8 in x, ×256/112, margin 0.15·256, shrink
    expected = (np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
                          [70.7299, 92.2041]]) * 256 / 112 + 38.4) * 256 / (256 + 76.8)
    assert np.allclose(target, expected)
    angle, scale, shift = 0.3, 1.7, np.array([40.0, -12.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = (target - shift) @ np.linalg.inv(scale * rot).T  # points a known similarity takes onto the target
    m = similarity(src, target)
    assert np.allclose(src @ m[:, :2].T + m[:, 2], target, atol=1e-9)
    noisy = src + np.random.default_rng(0).normal(0, 0.5, src.shape)
    assert np.allclose(similarity(noisy, target)[:, :2], scale * rot, atol=0.05)


def test_xception_keys_and_shapes_are_deepfakebenchs() -> None:
    """The manifest was written from DeepfakeBench's own training/networks/xception.py (its detector's
    ``backbone``), so a published checkpoint loads with strict=True."""
    from dfstream.export.published import DETECTORS

    manifest = json.loads((DATA / "deepfakebench_xception_manifest.json").read_text())
    ours = {k: list(v.shape) for k, v in DETECTORS["xception"].build().state_dict().items()}
    assert ours == manifest


def _normalised(crops: list[np.ndarray], mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """DeepfakeBench's loader: RGB, ToTensor (0..1), Normalize(mean, std)."""
    rgb = np.stack([cv2.cvtColor(c, cv2.COLOR_BGR2RGB) for c in crops]).astype(np.float32) / 255.0
    return ((rgb - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)).transpose(0, 3, 1, 2).copy()


CLASSES = {"xception": 2, "efficientnetb4": 2, "sbi_dfb": 3}  # DeepfakeBench's sbi.yaml sets num_classes 3


def _dfb_checkpoint(detector: str, path: Path, faces: list[tuple[np.ndarray, FaceObs]]) -> Path:
    from dfstream.export.published import DETECTORS

    torch.manual_seed(1)
    d = DETECTORS[detector]
    net = d.build(CLASSES[detector])
    batch = _normalised([crop_for(img, f, d.crop, 256) for img, f in faces], d.mean, d.std)
    _reestimate_bn(net, torch.from_numpy(np.concatenate([batch, batch[:, :, :, ::-1].copy()])))
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, path)  # as saved from DataParallel
    return path


@pytest.mark.slow
@pytest.mark.parametrize("detector", ["xception", "efficientnetb4", "sbi_dfb"])
def test_deepfakebench_import_matches_torch_on_aligned_real_faces(
        detector: str, faces: list[tuple[np.ndarray, FaceObs]], tmp_path: Path) -> None:
    from dfstream.export.published import DETECTORS

    checkpoint = _dfb_checkpoint(detector, tmp_path / f"{detector}_best.pth", faces)
    option = "sbi" if detector == "sbi_dfb" else detector
    done = _cli("import", "deepfakebench", "--detector", option, str(checkpoint), "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    model = FaceModel.load(tmp_path / "out" / f"{detector}.onnx", "cpu")
    crops = [model.crop(img, f) for img, f in faces]
    d = DETECTORS[detector]
    net = d.build(CLASSES[detector])
    net.load_state_dict({k[7:]: v for k, v in torch.load(checkpoint).items()}, strict=True)
    with torch.no_grad():
        expected = net.eval()(torch.from_numpy(_normalised(crops, d.mean, d.std))).softmax(1)[:, 1].numpy()
    assert np.ptp(expected) > 1e-3
    assert np.abs(model.scores(crops) - expected).max() <= 1e-4


def test_a_checkpoint_with_other_keys_names_the_first_ones(tmp_path: Path) -> None:
    from dfstream.export.published import DETECTORS

    state = DETECTORS["xception"].build().state_dict()
    state.pop("backbone.conv1.weight")
    state["backbone.extra_head.weight"] = torch.zeros(1)
    path = tmp_path / "x.pth"
    torch.save(state, path)
    done = _cli("import", "deepfakebench", "--detector", "xception", str(path), "-o", str(tmp_path / "o"))
    assert done.returncode == 2
    assert "missing backbone.conv1.weight" in done.stderr and "unexpected backbone.extra_head.weight" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_file_that_is_not_a_checkpoint_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "weights.tar"
    path.write_bytes(b"not a checkpoint at all")
    done = _cli("import", "sbi", str(path), "-o", str(tmp_path / "o"))
    assert done.returncode == 2 and "not a torch checkpoint" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    torch.save({"epoch": 3}, path)  # a torch file without SBI's 'model' entry
    done = _cli("import", "sbi", str(path), "-o", str(tmp_path / "o"))
    assert done.returncode == 2 and "not a sbi checkpoint" in done.stderr


def tiny_classifier(path: Path, size: int = 64, layout: str = "NCHW", classes: int = 2) -> Path:
    """A small conv net exported to ONNX, with a dynamic batch: stands in for a user's own classifier."""
    torch.manual_seed(2)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 5, stride=2), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, stride=2),
                              torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(8, classes))

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.net(x.permute(0, 3, 1, 2) if layout == "NHWC" else x)
            return out

    shape = (2, 3, size, size) if layout == "NCHW" else (2, size, size, 3)
    torch.onnx.export(Wrapped(), (torch.rand(shape),), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, opset_version=17, dynamo=False)
    return path


def test_onnx_import_folds_softmax_and_refuses_a_spec_the_graph_contradicts(tmp_path: Path) -> None:
    import onnxruntime as ort

    graph = tiny_classifier(tmp_path / "mine.onnx", layout="NHWC")
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: mine\ninput_size: 64\nlayout: NHWC\ncolor_order: BGR\ninput_scale: 0-255\n"
                    "crop: sbi\noutput: softmax\nfake_index: 0\n")
    done = _cli("import", "onnx", str(graph), "--spec", str(spec), "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    model = FaceModel.load(tmp_path / "out" / "mine.onnx", "cpu")
    crops = [np.random.default_rng(i).integers(0, 256, (64, 64, 3), dtype=np.uint8) for i in range(3)]
    logits = ort.InferenceSession(str(graph)).run(None, {"x": np.stack(crops).astype(np.float32)})[0]
    expected = np.exp(logits[:, 0]) / np.exp(logits).sum(1)
    assert np.allclose(model.scores(crops), expected, atol=1e-6) and model.crop_policy == SBI_CROP

    spec.write_text(spec.read_text().replace("input_size: 64", "input_size: 96"))
    done = _cli("import", "onnx", str(graph), "--spec", str(spec), "-o", str(tmp_path / "bad"))
    assert done.returncode == 2 and "input 'x' has shape" in done.stderr and "input_size 96" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    spec.write_text(spec.read_text().replace("output: softmax", "output: logits"))
    done = _cli("import", "onnx", str(graph), "--spec", str(spec), "-o", str(tmp_path / "bad"))
    assert done.returncode == 2 and "output:" in done.stderr and len(done.stderr.strip().splitlines()) == 1
