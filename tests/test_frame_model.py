"""Model A: built, saved, reloaded; notebook A's saved files load unchanged; bad files refused."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from dfstream.models import cnn_cbam
from dfstream.stream.contract.exceptions import InputPathError, ModelLoadError

FIXTURES = Path(__file__).parent / "fixtures"


def test_architecture_matches_notebook_a() -> None:
    model = cnn_cbam.build_model(224)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "InputLayer",
        *["Conv2D", "BatchNormalization", "Conv2D", "MaxPooling2D"] * 3,
        "CBAM",
        "Flatten",
        "Dropout",
        "Dense",
        "Dropout",
        "Dense",
    ]
    convs = [layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs == [32, 32, 64, 64, 128, 128]
    cbam = model.layers[13]
    assert (cbam.reduction, cbam.kernel_size) == (16, 7)
    assert cbam.channel_attention.fc1.units == 8 and cbam.spatial_attention.conv.kernel_size == (7, 7)
    assert model.input_shape == (None, 224, 224, 3) and model.output_shape == (None, 1)
    assert model.count_params() == 13_135_499  # 287,904 conv+BN, 2,282 CBAM, 12,845,313 dense


def test_registered_names() -> None:
    for name in ("Custom>ChannelAttention", "Custom>SpatialAttention", "Custom>CBAM"):
        assert keras.saving.get_registered_object(name) is not None


def test_save_and_reload_gives_same_outputs(tmp_path: Path) -> None:
    model = cnn_cbam.build_model(32)
    x = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    before = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = cnn_cbam.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), before, atol=1e-6)
    assert cnn_cbam.positive_class(loaded) == "fake"


def test_model_saved_by_notebook_a_loads_unchanged(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(FIXTURES / "notebook_a_save.py"), str(tmp_path), "32"],
        check=True,
        capture_output=True,
    )
    model = cnn_cbam.load_model(tmp_path / "best_model.keras")  # safe_mode stays on inside
    probe = np.load(tmp_path / "probe.npy")
    expected = np.load(tmp_path / "probe_pred.npy")
    assert expected.std() > 1e-4  # a trained, non-constant model
    np.testing.assert_allclose(model.predict(probe, verbose=0), expected, atol=1e-5)
    assert model.name == "deepfake_detector"
    assert cnn_cbam.positive_class(model) == "real"  # its folders sorted fake=0, real=1


def test_missing_file_and_non_archive_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputPathError, match="model file not found"):
        cnn_cbam.load_model(tmp_path / "absent.keras")
    (tmp_path / "junk.keras").write_bytes(b"\x00not a zip")
    with pytest.raises(ModelLoadError, match=r"not a Keras \.keras archive"):
        cnn_cbam.load_model(tmp_path / "junk.keras")


def test_model_without_cbam_is_refused(tmp_path: Path) -> None:
    inputs = keras.Input((32, 32, 3))
    plain = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(inputs)))
    plain.save(tmp_path / "plain.keras")
    with pytest.raises(ModelLoadError, match="has no Custom>CBAM layer"):
        cnn_cbam.load_model(tmp_path / "plain.keras")


def test_archive_with_unknown_custom_layer_is_refused(tmp_path: Path) -> None:
    model = cnn_cbam.build_model(32)
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as src, zipfile.ZipFile(tmp_path / "odd.keras", "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "config.json":
                data = data.replace(b'"Custom>CBAM"', b'"Custom>Mystery"')
            dst.writestr(item, data)
    with pytest.raises(ModelLoadError, match="cannot load as model A"):
        cnn_cbam.load_model(tmp_path / "odd.keras")
