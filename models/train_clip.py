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

from dfstream.models import clip_lstm
from dfstream.models.calibration import decision_record
from dfstream.models.checkpoint_cards import checkpoint_card, clip_architecture
from dfstream.models.clip_checkpoints import BEST_NAME, LAST_NAME, RESUME_NAME
from dfstream.models.configs import EvalClipConfig, TrainClipConfig
from dfstream.models.datasets import ClipRef, load_clip, load_clip_frame, scan_clip_folders, split_by_video
from dfstream.models.device import MixedPrecision, model_device, place, train_device, workers_for
from dfstream.models.efficientnet_b0 import load_imagenet_weights
from dfstream.models.metrics import BinaryReport, binary_report, f1_optimal_threshold, write_reports
from dfstream.stream.contract.exceptions import ModelLoadError
from dfstream.stream.contract.types import CLIP_LEN, EMBED_DIM

log = logging.getLogger(__name__)

RECIPE = "fixed clips"
"""The card's name for this recipe (``TrainClipConfig``)."""

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
    device = model_device(model)
    probs: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    with torch.no_grad():
        for frames, lmks, y in loader:
            probs.append(model(frames.to(device), lmks.to(device)).cpu().numpy())
            labels.append(y.numpy())
    return np.concatenate(labels).astype(int), np.concatenate(probs)


class FrameDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Single frames of clips, each labelled with its clip's label."""

    def __init__(self, items: list[tuple[ClipRef, int]], size: int) -> None:
        self.items = items
        self.size = size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        ref, i = self.items[idx]
        return torch.from_numpy(load_clip_frame(ref, i, self.size)), torch.tensor(float(ref.label))


def pretrain_encoder(
    model: clip_lstm.ClipDetector, train: list[ClipRef], val: list[ClipRef], cfg: TrainClipConfig
) -> None:
    """Train the encoder on single frames through a throw-away linear probe.

    A clip costs 16 encoder passes for one label; a frame costs one. A from-scratch encoder
    learns the per-frame traces (blending edges, colour mismatch) much sooner this way, and the
    clip stage then starts from features that already separate real from fake.
    """
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(cfg.seed)
    device = model_device(model)
    probe = torch.nn.Linear(EMBED_DIM, 1).to(device)
    params = list(model.cnn.parameters()) + list(probe.parameters())
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    criterion = torch.nn.BCEWithLogitsLoss()
    val_items = [(r, i) for r in val for i in (0, CLIP_LEN // 2)]
    g = torch.Generator().manual_seed(cfg.seed)
    val_loader = DataLoader(FrameDataset(val_items, cfg.img_size), batch_size=16, shuffle=False)
    for epoch in range(1, cfg.pretrain_epochs + 1):
        items = [(r, int(i)) for r in train for i in rng.choice(CLIP_LEN, cfg.pretrain_frames, replace=False)]
        loader = DataLoader(
            FrameDataset(items, cfg.img_size), batch_size=16, shuffle=True, generator=g, num_workers=cfg.workers
        )
        model.cnn.train()
        total = 0.0
        for x, y in loader:
            loss = criterion(probe(model.cnn(x.to(device))).squeeze(1), y.to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.item())
        model.cnn.eval()
        with torch.no_grad():
            scores = [(probe(model.cnn(x.to(device))).squeeze(1).cpu().numpy(), y.numpy()) for x, y in val_loader]
        p = np.concatenate([s for s, _ in scores])
        t = np.concatenate([y for _, y in scores])
        auc = float(roc_auc_score(t, p)) if len(set(t.tolist())) == 2 else float("nan")
        log.info("pretrain epoch %d: loss %.4f | val frame AUC %.4f", epoch, total / max(len(loader), 1), auc)


def train_clip(cfg: TrainClipConfig) -> Path:
    """Adam + BCE; the state dict with the best val F1 (at 0.5, as notebook B) is kept."""
    from sklearn.metrics import f1_score

    cfg = cfg.model_copy(update={"workers": workers_for(cfg.workers, train_device(cfg.device))})
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
    model = clip_lstm.ClipDetector(cfg.activation)
    load_imagenet_weights(model.cnn, cfg.imagenet_weights)
    device = place(model, cfg.device)
    amp = MixedPrecision(device, cfg.amp)
    if cfg.pretrain_epochs:
        pretrain_encoder(model, train_refs, val_refs, cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    criterion = torch.nn.BCELoss()
    train_loader = _loader(train_refs, cfg, shuffle=True, workers=cfg.workers)
    val_loader = _loader(val_refs, cfg, shuffle=False, workers=cfg.workers)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    best_path = cfg.out_dir / BEST_NAME
    best_f1 = -1.0
    history: list[dict[str, float]] = []
    first = 1
    resume = cfg.out_dir / RESUME_NAME
    if resume.is_file():
        state = torch.load(resume, map_location="cpu", weights_only=True)
        if state["config"] != cfg.model_dump(mode="json"):
            raise ModelLoadError(f"{resume}: left by a run with other options; use another --out or delete it")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        train_loader.generator.set_state(state["order_rng"])  # the next epoch's order, not the first's again
        first, best_f1, history = state["epoch"] + 1, state["best_f1"], state["history"]
        log.info("going on from epoch %d of an interrupted run (%s)", first, resume)
    for epoch in range(first, cfg.epochs + 1):
        model.train()
        total = 0.0
        for frames, lmks, y in train_loader:
            with amp.autocast():
                out = model(frames.to(device), lmks.to(device))
            loss = criterion(out.float(), y.to(device))
            amp.step(loss, optimizer)
            total += float(loss.item())
        y_true, p = predict(model, val_loader)
        f1 = float(f1_score(y_true, (p > 0.5).astype(int), zero_division=0))
        acc = float(np.mean((p > 0.5).astype(int) == y_true))
        row = {"epoch": epoch, "loss": total / max(len(train_loader), 1), "val_acc": acc, "val_f1": f1}
        history.append(row)
        log.info("epoch %d: loss %.4f | val acc %.4f | val F1 %.4f", epoch, row["loss"], acc, f1)
        if f1 > best_f1:
            best_f1 = f1
            card = checkpoint_card(clip_architecture(model.cnn.activation, cfg.img_size), RECIPE, cfg,
                                   {"epoch": epoch, "val_f1": f1, "val_acc": acc})
            clip_lstm.save_state(model, best_path, card)
            log.info("saved %s (val F1 %.4f)", best_path, f1)
        _save_resume(resume, model, optimizer, train_loader, cfg, epoch, best_f1, history)
    last = {k: history[-1][k] for k in ("epoch", "val_f1", "val_acc")}
    architecture = clip_architecture(model.cnn.activation, cfg.img_size)
    clip_lstm.save_state(model, cfg.out_dir / LAST_NAME, checkpoint_card(architecture, RECIPE, cfg, last))
    resume.unlink(missing_ok=True)
    with (cfg.out_dir / "history.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(history[0]))
        w.writeheader()
        w.writerows(history)
    return best_path


def _save_resume(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader,  # type: ignore[type-arg]
                 cfg: TrainClipConfig, epoch: int, best_f1: float, history: list[dict[str, float]]) -> None:
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
             "order_rng": loader.generator.get_state(), "epoch": epoch, "best_f1": best_f1, "history": history,
             "config": cfg.model_dump(mode="json")}
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # never a half-written state to go on from


def evaluate_clip(cfg: EvalClipConfig) -> BinaryReport:
    """Classification report, AUC and plots on the val videos (or all); F1-optimal threshold unless fixed."""
    model = clip_lstm.load_state(cfg.model)
    place(model, cfg.device, "is evaluated")
    refs = scan_clip_folders(cfg.data_dir)
    if cfg.split == "val":
        refs = split_by_video(refs, cfg.val_fraction, cfg.seed)[1]
    y_true, p_fake = predict(model, _loader(refs, cfg, shuffle=False, workers=cfg.workers))
    threshold = cfg.threshold if cfg.threshold is not None else f1_optimal_threshold(y_true, p_fake, cfg.max_fpr)
    names = [f"{r.folder.name}/{r.video}" for r in refs]
    report = binary_report(y_true, p_fake, threshold, names)
    write_reports(cfg.out_dir, report, names, y_true, p_fake, y_true, p_fake)
    if cfg.threshold is not None:
        decision: dict[str, object] = {"threshold": threshold, "threshold_raw": threshold, "chosen_on": "fixed"}
    else:
        source = f"F1-optimal on the evaluated '{cfg.split}' videos"
        decision = decision_record(y_true, p_fake, threshold, source, cfg.max_fpr)
    (cfg.out_dir / "threshold.json").write_text(json.dumps(decision, indent=2) + "\n")
    log.info("report: %s", json.dumps(asdict(report)))
    return report
