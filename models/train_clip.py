"""Train and evaluate model B on notebook B's class folders of ``{video}_{i}.jpg`` + ``.npy``."""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from dfstream.config import EvalClipConfig, TrainClipConfig
from dfstream.models import clip_lstm
from dfstream.models.datasets import ClipRef, load_clip, scan_clip_folders, split_by_video
from dfstream.models.efficientnet_b0 import load_imagenet_weights
from dfstream.models.metrics import BinaryReport, binary_report, f1_optimal_threshold, write_reports

log = logging.getLogger(__name__)

BEST_NAME = "mediapipe_model.pth"
"""Notebook B's file name for the best-F1 state dict, kept so its users find it where they expect."""


class ClipDataset(Dataset[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]):
    def __init__(self, refs: list[ClipRef], size: int) -> None:
        self.refs = refs
        self.size = size

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        frames, lmks = load_clip(self.refs[idx], self.size)
        return torch.from_numpy(frames), torch.from_numpy(lmks), torch.tensor(float(self.refs[idx].label))


def _loader(refs: list[ClipRef], cfg: TrainClipConfig | EvalClipConfig, shuffle: bool, workers: int = 0) -> DataLoader:  # type: ignore[type-arg]
    g = torch.Generator().manual_seed(cfg.seed)
    return DataLoader(
        ClipDataset(refs, cfg.img_size), batch_size=cfg.batch_size, shuffle=shuffle, num_workers=workers, generator=g
    )


def predict(model: clip_lstm.ClipDetector, loader: DataLoader) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    model.eval()
    probs: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    with torch.no_grad():
        for frames, lmks, y in loader:
            probs.append(model(frames, lmks).numpy())
            labels.append(y.numpy())
    return np.concatenate(labels).astype(int), np.concatenate(probs)


def train_clip(cfg: TrainClipConfig) -> Path:
    """Adam + BCE; the state dict with the best val F1 (at 0.5, as notebook B) is kept."""
    from sklearn.metrics import f1_score

    refs = scan_clip_folders(cfg.data_dir)
    if cfg.val_dir is not None:
        train_refs, val_refs = refs, scan_clip_folders(cfg.val_dir)
    else:
        train_refs, val_refs = split_by_video(refs, cfg.val_fraction, cfg.seed)
    for name, part in (("train", train_refs), ("val", val_refs)):
        n_fake = sum(r.label for r in part)
        log.info("%s: %d clips (real %d, fake %d)", name, len(part), len(part) - n_fake, n_fake)
    if not val_refs or len({r.label for r in val_refs}) < 2:
        log.warning("the validation split lacks one class; F1 there is not informative")
    torch.manual_seed(cfg.seed)
    model = clip_lstm.ClipDetector()
    load_imagenet_weights(model.cnn, cfg.imagenet_weights)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    criterion = torch.nn.BCELoss()
    train_loader = _loader(train_refs, cfg, shuffle=True, workers=cfg.workers)
    val_loader = _loader(val_refs, cfg, shuffle=False, workers=cfg.workers)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    best_path = cfg.out_dir / BEST_NAME
    best_f1 = -1.0
    history = []
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        total = 0.0
        for frames, lmks, y in train_loader:
            loss = criterion(model(frames, lmks), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.item())
        y_true, p = predict(model, val_loader)
        f1 = float(f1_score(y_true, (p > 0.5).astype(int), zero_division=0))
        acc = float(np.mean((p > 0.5).astype(int) == y_true))
        row = {"epoch": epoch, "loss": total / max(len(train_loader), 1), "val_acc": acc, "val_f1": f1}
        history.append(row)
        log.info("epoch %d: loss %.4f | val acc %.4f | val F1 %.4f", epoch, row["loss"], acc, f1)
        if f1 > best_f1:
            best_f1 = f1
            torch.save(model.state_dict(), best_path)
            log.info("saved %s (val F1 %.4f)", best_path, f1)
    torch.save(model.state_dict(), cfg.out_dir / "last_model.pth")
    with (cfg.out_dir / "history.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(history[0]))
        w.writeheader()
        w.writerows(history)
    return best_path


def evaluate_clip(cfg: EvalClipConfig) -> BinaryReport:
    """Classification report, AUC and plots on the val videos (or all); F1-optimal threshold unless fixed."""
    model = clip_lstm.load_state(cfg.model)
    refs = scan_clip_folders(cfg.data_dir)
    if cfg.split == "val":
        refs = split_by_video(refs, cfg.val_fraction, cfg.seed)[1]
    y_true, p_fake = predict(model, _loader(refs, cfg, shuffle=False))
    threshold = cfg.threshold if cfg.threshold is not None else f1_optimal_threshold(y_true, p_fake)
    report = binary_report(y_true, p_fake, threshold)
    names = [f"{r.folder.name}/{r.video}" for r in refs]
    write_reports(cfg.out_dir, report, names, y_true, p_fake, y_true, p_fake)
    source = "fixed" if cfg.threshold is not None else f"F1-optimal on the evaluated '{cfg.split}' videos"
    (cfg.out_dir / "threshold.json").write_text(
        json.dumps({"threshold": threshold, "chosen_on": source}, indent=2) + "\n"
    )
    log.info("report: %s", json.dumps(asdict(report)))
    return report
