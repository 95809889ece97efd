"""Train and evaluate model A on notebook A's ``train/ val/ test/`` × ``real/ fake/`` folders."""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dfstream.models import cnn_cbam
from dfstream.models.calibration import decision_record
from dfstream.models.checkpoint_cards import checkpoint_card, frame_architecture, write_keras_card
from dfstream.models.configs import EvalCnnConfig, TrainCnnConfig
from dfstream.models.datasets import ImageSplit, scan_image_split
from dfstream.models.distill import DistillPool, make_pool
from dfstream.models.input_scale import resolve_input_scale
from dfstream.models.metrics import (
    BinaryReport,
    binary_report,
    f1_optimal_threshold,
    write_clip_level,
    write_per_sample,
    write_reports,
)
from dfstream.stream.contract.metadata import INPUT_MAX

log = logging.getLogger(__name__)

SCALE = cnn_cbam.INPUT_MAX


def make_dataset(split: ImageSplit, size: int, batch: int, augment: bool, seed: int, scale: float = SCALE) -> Any:
    """tf.data pipeline yielding RGB floats in 0..``scale`` (model A's input scale), labels 1 = fake."""
    import tensorflow as tf

    paths = [str(p) for p in split.paths]
    labels = np.asarray(split.labels, dtype=np.float32)[:, None]
    ds = tf.data.Dataset.from_tensor_slices((paths, labels))
    if augment:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)

    def load(path: Any, label: Any) -> tuple[Any, Any]:
        img = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        img = tf.image.resize(tf.cast(img, tf.float32), (size, size))  # 0..255 floats, bilinear
        return img * (scale / 255.0), label

    def jitter(img: Any, label: Any) -> tuple[Any, Any]:
        # Notebook A's augment() body is not in the notebook text; these are mild photometric and
        # mirror changes that keep manipulation traces intact.
        img = tf.image.random_flip_left_right(img, seed=seed)
        img = tf.image.random_brightness(img, 0.1 * scale, seed=seed)
        img = tf.image.random_contrast(img, 0.9, 1.1, seed=seed)
        return tf.clip_by_value(img, 0.0, scale), label

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if augment:
        ds = ds.map(jitter, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch).prefetch(tf.data.AUTOTUNE)


def pool_dataset(pool: DistillPool, targets: np.ndarray, batch: int, seed: int) -> Any:
    """Batches of a distillation pool at model A's input (RGB, its scale), reshuffled and mirrored each epoch."""
    import keras

    class PoolBatches(keras.utils.PyDataset):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(targets))

        def __len__(self) -> int:
            return (len(targets) + batch - 1) // batch

        def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
            idx = np.sort(self.order[i * batch : (i + 1) * batch])
            x = pool.images[idx][..., ::-1].astype(np.float32) * (SCALE / 255.0)
            flip = self.rng.random(len(idx)) < 0.5
            x[flip] = x[flip, :, ::-1]
            return x, targets[idx, None]

        def on_epoch_end(self) -> None:
            self.order = self.rng.permutation(len(targets))

    return PoolBatches()


RESUME_DIR = "resume"
"""Keras' backup of an unfinished run (weights, optimizer, epoch); removed when the run ends."""


def train_cnn(cfg: TrainCnnConfig) -> Path:
    """Fit with Adam + BCE; best (val AUC) and last checkpoints; returns the best model's path.

    With a teacher (``cfg.teacher``), the training set is a pool of on-the-fly fakes whose targets
    mix the hard label and the teacher's P(fake); validation stays the data build's val frames."""
    pool = None
    if cfg.teacher is not None:  # torch runs before TensorFlow starts
        if not cfg.faces:
            raise ValueError("distillation needs --faces (the data build's faces/train.npz)")
        fixed = scan_image_split(cfg.data_dir, "train") if cfg.fixed_share > 0 else None
        pool = make_pool(cfg.faces, cfg.teacher, cfg.pool, cfg.img_size, cfg.seed, fixed, cfg.fixed_share)
    import keras

    train = scan_image_split(cfg.data_dir, "train")
    val = scan_image_split(cfg.data_dir, "val")
    log.info(
        "train: %d images (%d fake), val: %d images (%d fake)", len(train), sum(train.labels), len(val), sum(val.labels)
    )
    keras.utils.set_random_seed(cfg.seed)
    model = cnn_cbam.build_model(cfg.img_size)
    model.compile(
        optimizer=keras.optimizers.Adam(cfg.lr),
        loss="binary_crossentropy",
        metrics=[
            keras.metrics.BinaryAccuracy(name="acc"),
            keras.metrics.AUC(name="auc"),
            keras.metrics.Precision(name="prec"),
            keras.metrics.Recall(name="recall"),
        ],
    )
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    (cfg.out_dir / "config.json").write_text(cfg.model_dump_json(indent=2) + "\n")  # the card's distillation table
    best = cfg.out_dir / "best_model.keras"
    callbacks = [
        keras.callbacks.ModelCheckpoint(best, monitor="val_auc", mode="max", save_best_only=True, verbose=1),
        keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=5, restore_best_weights=True, verbose=1),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=3, verbose=1),
        keras.callbacks.CSVLogger(str(cfg.out_dir / "history.csv"), append=(cfg.out_dir / RESUME_DIR).is_dir()),
        # an interrupted run, started again with the same --out, goes on from its last finished epoch
        keras.callbacks.BackupAndRestore(str(cfg.out_dir / RESUME_DIR)),
    ]
    if pool is not None:
        training = pool_dataset(pool, pool.targets(cfg.hard_weight), cfg.batch_size, cfg.seed)
    else:
        training = make_dataset(train, cfg.img_size, cfg.batch_size, augment=True, seed=cfg.seed)
    model.fit(
        training,
        validation_data=make_dataset(val, cfg.img_size, cfg.batch_size, augment=False, seed=cfg.seed),
        epochs=cfg.epochs,
        callbacks=callbacks,
        shuffle=False,  # the tf.data pipeline shuffles each epoch itself
        verbose=2,
    )
    last = cfg.out_dir / "last_model.keras"
    model.save(last)
    write_cards(cfg, best, last)
    log.info("best model: %s, last model: %s", best, last)
    return best


def write_cards(cfg: TrainCnnConfig, best: Path, last: Path) -> None:
    """Each checkpoint's card (``checkpoint_cards``), its metrics from history.csv (the whole run's rows,
    resumed epochs included): the best val AUC's epoch in the best file, the last epoch in the last."""
    with (cfg.out_dir / "history.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    recipe = "distilled on the fly" if cfg.teacher is not None else "frame folders"

    def metrics(row: dict[str, str]) -> dict[str, float]:
        return {"epoch": int(row["epoch"]) + 1, **{k: float(row[k]) for k in ("val_auc", "val_acc", "val_loss")}}

    kept = max(rows, key=lambda r: float(r["val_auc"]))  # the first of equal AUCs is the one ModelCheckpoint kept
    for path, row in ((best, kept), (last, rows[-1])):
        if path.is_file():
            write_keras_card(path, checkpoint_card(frame_architecture(cfg.img_size), recipe, cfg, metrics(row)))


def predict_p_fake(model: Any, split: ImageSplit, batch: int, positive: str, scale: float = SCALE) -> np.ndarray:
    size = cnn_cbam.input_size(model)
    data = make_dataset(split, size, batch, augment=False, seed=0, scale=scale)
    p = np.asarray(model.predict(data, verbose=0)).reshape(-1)
    return p if positive == "fake" else 1.0 - p


def evaluate_cnn(cfg: EvalCnnConfig) -> BinaryReport:
    """F1-optimal threshold on val, then the full report and Grad-CAM overlays on test."""
    from dfstream.models.gradcam import gradcam, write_overlay

    model = cnn_cbam.load_model(cfg.model)
    positive = cnn_cbam.positive_class(model)
    size = cnn_cbam.input_size(model)

    def predict(x: np.ndarray) -> np.ndarray:
        return np.asarray(model(x, training=False))

    input_scale = resolve_input_scale(cfg.input_scale, size, predict, cfg.model.name, cnn_cbam.known_input_scale(model))
    scale = INPUT_MAX[input_scale]
    val = scan_image_split(cfg.data_dir, "val")
    test = scan_image_split(cfg.data_dir, "test")
    val_true = np.asarray(val.labels)
    val_p = predict_p_fake(model, val, cfg.batch_size, positive, scale)
    threshold = f1_optimal_threshold(val_true, val_p, cfg.max_fpr)
    y_true = np.asarray(test.labels)
    p_fake = predict_p_fake(model, test, cfg.batch_size, positive, scale)
    names = [str(p) for p in test.paths]
    report = binary_report(y_true, p_fake, threshold, names)
    write_reports(cfg.out_dir, report, names, y_true, p_fake, val_true, val_p)
    write_per_sample(cfg.out_dir / "val_per_sample.csv", [str(p) for p in val.paths], val_true, val_p, threshold)
    write_clip_level(cfg.out_dir, names, y_true, p_fake, threshold)
    decision = decision_record(val_true, val_p, threshold, "val", cfg.max_fpr) | {
        "positive_class": positive,
        "input_scale": input_scale,
    }
    (cfg.out_dir / "threshold.json").write_text(json.dumps(decision, indent=2) + "\n")

    picks = _gradcam_picks(test, cfg.gradcam_samples)
    for path in picks:
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        image = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32) * (scale / 255.0)
        heat, p = gradcam(model, image, positive)
        write_overlay(cfg.out_dir / "gradcam" / f"{path.parent.name}_{path.stem}.png", image * (255.0 / scale), heat, p)
    log.info("test report: %s", json.dumps(asdict(report)))
    return report


def _gradcam_picks(split: ImageSplit, n: int) -> list[Path]:
    """Up to n test images, alternating real and fake."""
    real = [p for p, y in zip(split.paths, split.labels, strict=True) if y == 0]
    fake = [p for p, y in zip(split.paths, split.labels, strict=True) if y == 1]
    picks: list[Path] = []
    for a, b in zip(real, fake, strict=False):
        picks += [a, b]
    return picks[:n]
