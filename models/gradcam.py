"""Grad-CAM overlays for model A, fed at the model's own input scale (notebook A fed 0..1 here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np


def last_conv_layer(model: Any) -> Any:
    import keras

    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    if not convs:
        raise ValueError(f"model {model.name!r} has no Conv2D layer for Grad-CAM")
    return convs[-1]


def gradcam(model: Any, image: np.ndarray, positive: str) -> tuple[np.ndarray, float]:
    """Heatmap in 0..1 at the conv layer's resolution and P(fake) for one H×W×3 image."""
    import keras
    import tensorflow as tf

    conv = last_conv_layer(model)
    probe = keras.Model(model.inputs, [conv.output, model.outputs[0]])
    x = tf.convert_to_tensor(image[None].astype(np.float32))
    with tf.GradientTape() as tape:
        maps, out = probe(x, training=False)
        p_fake = out[:, 0] if positive == "fake" else 1.0 - out[:, 0]
        target = p_fake if float(p_fake[0]) >= 0.5 else 1.0 - p_fake
    grads = tape.gradient(target, maps)
    weights = tf.reduce_mean(grads, axis=(0, 1, 2))
    cam = tf.nn.relu(tf.reduce_sum(maps[0] * weights, axis=-1)).numpy()
    peak = float(cam.max())
    return (cam / peak if peak > 0 else cam), float(p_fake[0])


def overlay(image_rgb: np.ndarray, heat: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """JET heatmap blended over the image; returns BGR uint8 for cv2.imwrite."""
    base = cv2.cvtColor(np.clip(image_rgb, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    heat_u8 = cv2.resize((heat * 255).astype(np.uint8), (base.shape[1], base.shape[0]))
    return cv2.addWeighted(base, 1 - alpha, cv2.applyColorMap(heat_u8, cv2.COLORMAP_JET), alpha, 0)


def write_overlay(path: Path, image_rgb: np.ndarray, heat: np.ndarray, p_fake: float) -> None:
    img = overlay(image_rgb, heat)
    cv2.putText(img, f"P(fake) {p_fake:.2f}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)
