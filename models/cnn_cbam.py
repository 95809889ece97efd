"""Model A: the frame CNN with CBAM attention, layer for layer as the origin Keras notebook.

The three attention layers keep the notebook's registered names (``Custom>ChannelAttention``,
``Custom>SpatialAttention``, ``Custom>CBAM``) and sub-layer attribute names, so a
``best_model.keras`` saved there loads here with ``safe_mode`` on.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Any

import keras
from keras import layers, ops

from dfstream.stream.contract.exceptions import InputPathError, ModelLoadError, first_line
from dfstream.stream.contract.metadata import INPUT_MAX as METADATA_INPUT_MAX
from dfstream.stream.contract.metadata import InputScale
from dfstream.stream.contract.types import FRAME_CROP

log = logging.getLogger(__name__)

MODEL_NAME = "dfstream_frame_cnn"
"""Name given to models built here. Notebook A names its model 'deepfake_detector'."""

INPUT_SCALE: InputScale = "0-255"
"""The input scale models trained here use.

Notebook A's pipeline feeds ``image_dataset_from_directory`` floats in 0..255 (its
``convert_image_dtype`` between float types does not rescale), so its models usually expect 0..255
and ours match them. A notebook user who rescaled gets a 0..1 model: evaluation, Grad-CAM and export
find out which (``models/input_scale.py``), and export writes the scale into the metadata the
runtime reads.
"""
INPUT_MAX = METADATA_INPUT_MAX[INPUT_SCALE]
"""Pixel value of full white at that scale."""
COLOR_ORDER = "RGB"
CLASS_NAMES = ("real", "fake")
"""Label order used here: index 1 (the sigmoid's positive class) is 'fake'."""


@keras.saving.register_keras_serializable(package="Custom", name="ChannelAttention")
class ChannelAttention(layers.Layer):  # type: ignore[misc]
    """Shared two-layer MLP over global average and max pooling; sum of both gates the channels."""

    def __init__(self, ratio: int = 8, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ratio = ratio

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        channels = int(input_shape[-1])  # type: ignore[arg-type]
        self.fc1 = layers.Dense(max(channels // self.ratio, 1), activation="relu")
        self.fc2 = layers.Dense(channels, activation="sigmoid")
        self.avg_pool = layers.GlobalAveragePooling2D()
        self.max_pool = layers.GlobalMaxPooling2D()
        super().build(input_shape)

    def call(self, inputs: Any) -> Any:
        avg = self.fc2(self.fc1(self.avg_pool(inputs)))
        mx = self.fc2(self.fc1(self.max_pool(inputs)))
        gate = ops.expand_dims(ops.expand_dims(avg + mx, 1), 1)
        return inputs * gate

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "ratio": self.ratio}


@keras.saving.register_keras_serializable(package="Custom", name="SpatialAttention")
class SpatialAttention(layers.Layer):  # type: ignore[misc]
    """A 7x7 sigmoid convolution over [channel mean, channel max] gates each position."""

    def __init__(self, kernel_size: int = 7, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kernel_size = kernel_size

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.conv = layers.Conv2D(
            filters=1,
            kernel_size=self.kernel_size,
            strides=1,
            padding="same",
            activation="sigmoid",
            kernel_initializer="he_normal",
            use_bias=False,
        )
        super().build(input_shape)

    def call(self, inputs: Any) -> Any:
        mean = ops.mean(inputs, axis=-1, keepdims=True)
        mx = ops.max(inputs, axis=-1, keepdims=True)
        return inputs * self.conv(ops.concatenate([mean, mx], axis=-1))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kernel_size": self.kernel_size}


@keras.saving.register_keras_serializable(package="Custom", name="CBAM")
class CBAM(layers.Layer):  # type: ignore[misc]
    """Channel attention then spatial attention (Woo et al., 2018)."""

    def __init__(self, reduction: int = 16, kernel_size: int = 7, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reduction = reduction
        self.kernel_size = kernel_size or 7

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.channel_attention = ChannelAttention(self.reduction)
        self.spatial_attention = SpatialAttention(self.kernel_size)
        super().build(input_shape)

    def call(self, inputs: Any) -> Any:
        return self.spatial_attention(self.channel_attention(inputs))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "reduction": self.reduction, "kernel_size": self.kernel_size}


def build_model(img_size: int = FRAME_CROP) -> keras.Model:
    """Three conv blocks (32/64/128), CBAM, then the dense classifier; sigmoid = P(fake)."""
    inputs = keras.Input(shape=(img_size, img_size, 3))
    x = inputs
    for filters in (32, 64, 128):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPool2D()(x)
    x = CBAM()(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name=MODEL_NAME)


def load_model(path: str | Path) -> keras.Model:
    """Load a model A ``.keras`` file (ours or notebook A's) with safe_mode on, or fail in one line."""
    path = Path(path)
    if not path.is_file():
        raise InputPathError(f"model file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise ModelLoadError(f"{path}: not a Keras .keras archive")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises TypeError/ValueError/KeyError for bad archives
        raise ModelLoadError(f"{path}: cannot load as model A ({first_line(exc)})") from None
    check_frame_model(model, path)
    return model


def check_frame_model(model: Any, where: str | Path) -> None:
    """Refuse anything that is not an image → one-sigmoid model with a CBAM block."""
    if not isinstance(model, keras.Model):
        raise ModelLoadError(f"{where}: holds a {type(model).__name__}, not a Keras model")
    shape = tuple(model.input_shape) if not isinstance(model.input_shape, list) else None
    if shape is None or len(shape) != 4 or shape[-1] != 3 or shape[1] != shape[2]:
        raise ModelLoadError(f"{where}: input shape {model.input_shape} is not (N, S, S, 3)")
    if tuple(model.output_shape) != (None, 1):
        raise ModelLoadError(f"{where}: output shape {model.output_shape} is not (N, 1)")
    if not any(isinstance(layer, CBAM) for layer in model.layers):
        raise ModelLoadError(f"{where}: has no Custom>CBAM layer; not a model A")


def positive_class(model: keras.Model) -> str:
    """Which class the sigmoid measures.

    Models built here put 'fake' at index 1. Notebook A let ``image_dataset_from_directory`` order
    the folders alphabetically (fake=0, real=1), so its sigmoid measures P(real) even where it is
    labelled ``y_prob_fake``.
    """
    if model.name == MODEL_NAME:
        return "fake"
    log.info("model %r was not built by dfstream: reading it as notebook A's P(real) output", model.name)
    return "real"


def known_input_scale(model: keras.Model) -> InputScale | None:
    """The input scale of a model built here; None for a notebook's, whose scale must be found."""
    return INPUT_SCALE if model.name == MODEL_NAME else None


def input_size(model: keras.Model) -> int:
    return int(model.input_shape[1])
