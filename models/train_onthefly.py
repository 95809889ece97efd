"""Model B trained on fakes made on the fly: a frame-level encoder fine-tune, then the clip head.

1. The encoder (from ImageNet weights when given) is fine-tuned on single frames through a linear
   probe. Every batch is new: genuine faces from the bank, half of them manipulated with freshly
   drawn parameters, so the network cannot learn the fakes by heart or by person.
2. The BiLSTM head is trained on the frozen encoder's embeddings of clips, made on the fly too
   (one manipulation over 16 frames under a moving camera), plus the data build's training clips.

The probe's frame-level P(fake) is kept (``probe.pth``): it is the teacher model A is distilled from.
Validation is the data build's fixed clips of held-out identities.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from dfstream.models import clip_lstm
from dfstream.models.checkpoint_cards import checkpoint_card, clip_architecture
from dfstream.models.clip_checkpoints import BEST_NAME, LAST_NAME, PROBE_NAME
from dfstream.models.configs import TrainOnTheFlyConfig
from dfstream.models.data.bank import read_banks
from dfstream.models.data.onthefly import FakeConfig, FakeMaker
from dfstream.models.datasets import ClipRef, load_clip, load_clip_frame, scan_clip_folders
from dfstream.models.device import MixedPrecision, model_device, place, workers_for
from dfstream.models.efficientnet_b0 import load_imagenet_weights
from dfstream.stream.contract.types import CLIP_LEN, EMBED_DIM

log = logging.getLogger(__name__)

RECIPE = "on the fly"
"""The card's name for this recipe (``TrainOnTheFlyConfig``)."""

VAL_FRAMES = (0, CLIP_LEN // 2)
def to_tensor(crops: np.ndarray) -> torch.Tensor:
    """N×S×S×3 BGR uint8 → N×3×S×S float 0..1 (notebook B's input)."""
    return torch.from_numpy(np.ascontiguousarray(crops.transpose(0, 3, 1, 2))).float() / 255.0


FrameBatch = tuple[torch.Tensor, torch.Tensor]
"""Frames and labels."""


class FrameStream(IterableDataset[FrameBatch]):
    """Batches of on-the-fly frames, optionally mixed with frames of fixed clips (the data build's
    training clips, filmed through its camera and codec); batch ``k`` depends only on the seed and ``k``."""

    def __init__(
        self, maker: FakeMaker, size: int, batch: int, seed: int, steps: int,
        fixed: list[ClipRef] | None = None, fixed_share: float = 0.0,
    ) -> None:
        self.maker, self.size, self.batch, self.seed, self.steps = maker, size, batch, seed, steps
        self.fixed = fixed or []
        self.n_fixed = round(batch * fixed_share) if self.fixed else 0

    def __iter__(self) -> Iterator[FrameBatch]:
        info = get_worker_info()
        first, every = (info.id, info.num_workers) if info is not None else (0, 1)
        if info is not None:
            cv2.setNumThreads(1)  # one core per worker: many workers would otherwise each start a thread pool
        for k in range(first, self.steps, every):
            rng = np.random.default_rng([self.seed, k])
            samples = [self.maker.frame(rng, self.size) for _ in range(self.batch - self.n_fixed)]
            parts = [to_tensor(np.stack([s.image for s in samples]))] if samples else []
            y = [float(s.label) for s in samples]
            if self.n_fixed:
                refs = [self.fixed[int(j)] for j in rng.integers(len(self.fixed), size=self.n_fixed)]
                frames = [load_clip_frame(r, int(rng.integers(CLIP_LEN)), self.size) for r in refs]
                flips = [f[:, :, ::-1] if rng.random() < 0.5 else f for f in frames]
                parts.append(torch.from_numpy(np.ascontiguousarray(np.stack(flips))))
                y += [float(r.label) for r in refs]
            yield torch.cat(parts), torch.tensor(y)


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if len(set(y.tolist())) == 2 else float("nan")


def val_frames(refs: list[ClipRef], size: int) -> tuple[torch.Tensor, np.ndarray]:
    x = np.stack([load_clip_frame(r, i, size) for r in refs for i in VAL_FRAMES])
    y = np.array([r.label for r in refs for _ in VAL_FRAMES])
    return torch.from_numpy(x), y


def frame_scores(model: clip_lstm.ClipDetector, probe: torch.nn.Linear, x: torch.Tensor) -> np.ndarray:
    model.cnn.eval()
    device = model_device(model.cnn)
    with torch.no_grad():
        return np.concatenate(
            [probe(model.cnn(x[i : i + 64].to(device))).squeeze(1).cpu().numpy() for i in range(0, len(x), 64)]
        )


def finetune_encoder(
    model: clip_lstm.ClipDetector, maker: FakeMaker, val: list[ClipRef], cfg: TrainOnTheFlyConfig,
    fixed: list[ClipRef] | None = None,
) -> tuple[torch.nn.Linear, list[dict[str, float]]]:
    """Frame-level fine-tune with a cosine schedule; the best val-AUC state is kept."""
    device = model_device(model)
    probe = torch.nn.Linear(EMBED_DIM, 1).to(device)
    optimizer = torch.optim.AdamW(
        [{"params": list(model.cnn.parameters()), "lr": cfg.lr}, {"params": probe.parameters(), "lr": cfg.lr * 10}],
        weight_decay=1e-4,
    )
    base = [g["lr"] for g in optimizer.param_groups]
    criterion = torch.nn.BCEWithLogitsLoss()
    amp = MixedPrecision(device, cfg.amp)
    vx, vy = val_frames(val, cfg.img_size)
    loader = DataLoader(
        FrameStream(maker, cfg.img_size, cfg.frame_batch, cfg.seed, cfg.steps, fixed, cfg.fixed_share),
        batch_size=None,
        num_workers=workers_for(cfg.workers, device),
        pin_memory=device.type == "cuda",
    )
    best, best_state, history = -1.0, None, []
    total, started = 0.0, time.perf_counter()
    for step, batch in enumerate(loader, start=1):
        x, y = (t.to(device, non_blocking=True) for t in batch)
        scale = 0.5 * (1 + math.cos(math.pi * (step - 1) / cfg.steps))
        for g, lr in zip(optimizer.param_groups, base, strict=True):
            g["lr"] = lr * max(scale, 0.02)
        model.cnn.train()
        with amp.autocast():  # logits: BCEWithLogitsLoss is safe under autocast
            loss = criterion(probe(model.cnn(x)).squeeze(1), y)
        amp.step(loss, optimizer)
        total += float(loss.item())
        if step % cfg.eval_every == 0 or step == cfg.steps:
            auc = _auc(vy, frame_scores(model, probe, vx))
            row = {"step": step, "loss": total / cfg.eval_every, "val_frame_auc": auc,
                   "minutes": (time.perf_counter() - started) / 60}
            history.append(row)
            log.info("step %d/%d: loss %.4f | val frame AUC %.4f | %.1f min", step, cfg.steps, row["loss"], auc,
                     row["minutes"])
            total = 0.0
            if auc > best:
                best = auc
                best_state = ({k: v.clone() for k, v in model.cnn.state_dict().items()},
                              {k: v.clone() for k, v in probe.state_dict().items()})
    if best_state is not None:
        model.cnn.load_state_dict(best_state[0])
        probe.load_state_dict(best_state[1])
        log.info("encoder: kept the state with val frame AUC %.4f", best)
    return probe, history


def embed_clip(model: clip_lstm.ClipDetector, frames: torch.Tensor, lmks: torch.Tensor) -> torch.Tensor:
    device = model_device(model)
    with torch.no_grad():
        return torch.cat([model.encode(frames.to(device)), lmks.to(device)], dim=1).cpu()


def clip_features(
    model: clip_lstm.ClipDetector, maker: FakeMaker, refs: list[ClipRef], cfg: TrainOnTheFlyConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Head inputs (N×16×1285) and labels: on-the-fly clips, then the given fixed clips."""
    model.eval()
    rows, labels = [], []
    rng = np.random.default_rng([cfg.seed, 1])
    for _ in range(cfg.head_clips):
        frames, lmks, label, _ = maker.clip(rng, cfg.img_size)
        rows.append(embed_clip(model, to_tensor(frames), torch.from_numpy(lmks)))
        labels.append(label)
    for ref in refs:
        frames_f, lmks_f = load_clip(ref, cfg.img_size)
        rows.append(embed_clip(model, torch.from_numpy(frames_f), torch.from_numpy(lmks_f)))
        labels.append(ref.label)
    return torch.stack(rows), torch.tensor(labels, dtype=torch.float32)


def train_head(
    model: clip_lstm.ClipDetector, train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor],
    cfg: TrainOnTheFlyConfig,
) -> list[dict[str, float]]:
    """BiLSTM + classifier on cached embeddings; the best val-AUC epoch is kept."""
    head_params = list(model.lstm.parameters()) + list(model.fc.parameters())
    optimizer = torch.optim.AdamW(head_params, lr=5e-4, weight_decay=1e-2)
    g = torch.Generator().manual_seed(cfg.seed)
    x, y = train
    noise = float(x[..., :EMBED_DIM].std()) * 0.3
    best, best_state, history = -1.0, None, []
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = torch.randperm(len(x), generator=g)
        total = 0.0
        for i in range(0, len(x), 32):
            idx = order[i : i + 32]
            feats = x[idx] * (torch.rand(len(idx), x.shape[1], 1, generator=g) > 0.1)  # frame dropout
            jitter = torch.randn(feats.shape, generator=g) * noise  # the encoder knows its training faces
            jitter[..., EMBED_DIM:] = 0.0
            feats = feats + jitter
            loss = torch.nn.functional.binary_cross_entropy(model.head(feats), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.item())
        model.eval()
        with torch.no_grad():
            p = model.head(val[0]).numpy()
        auc = _auc(val[1].numpy().astype(int), p)
        history.append({"epoch": epoch, "loss": total / max(1, math.ceil(len(x) / 32)), "val_clip_auc": auc})
        log.info("head epoch %d: loss %.4f | val clip AUC %.4f", epoch, history[-1]["loss"], auc)
        if auc > best:
            best, best_state = auc, {k: v.clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


def train_clip_onthefly(cfg: TrainOnTheFlyConfig) -> Path:
    """The whole model B run; writes last_model.pth (= the kept state), probe.pth and history.json."""
    torch.manual_seed(cfg.seed)
    bank = read_banks(cfg.faces)
    maker = FakeMaker(bank, FakeConfig(exclude=cfg.exclude))
    log.info("face bank: %d faces of %d people; fakes made on the fly%s", len(bank), len(bank.people()),
             f" (never {cfg.exclude})" if cfg.exclude else "")
    val = scan_clip_folders(cfg.val_dir) if cfg.val_dir is not None else []
    model = clip_lstm.ClipDetector(cfg.activation)
    load_imagenet_weights(model.cnn, cfg.imagenet_weights)
    place(model, cfg.device)
    train_refs = scan_clip_folders(cfg.data_dir) if cfg.data_dir.is_dir() else []
    if cfg.exclude is not None:  # a left-out method is left out of the fixed clips too (class folder = kind)
        train_refs = [r for r in train_refs if not cfg.exclude.startswith(r.folder.name)]
    probe, enc_history = finetune_encoder(model, maker, val, cfg, train_refs)
    head_train = clip_features(model, maker, train_refs, cfg)
    head_val = clip_features(model, maker, val, cfg.model_copy(update={"head_clips": 0}))
    model.cpu()  # the head trains on the cached embeddings, on the CPU
    probe.cpu()
    head_history = train_head(model, head_train, head_val, cfg)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    metrics = {"val_frame_auc": max((r["val_frame_auc"] for r in enc_history), default=float("nan")),
               "val_clip_auc": max((r["val_clip_auc"] for r in head_history), default=float("nan"))}
    card = checkpoint_card(clip_architecture(model.cnn.activation, cfg.img_size), RECIPE, cfg, metrics)
    clip_lstm.save_state(model, cfg.out_dir / LAST_NAME, card)
    clip_lstm.save_state(model, cfg.out_dir / BEST_NAME, card)
    torch.save(probe.state_dict(), cfg.out_dir / PROBE_NAME)
    (cfg.out_dir / "history.json").write_text(
        json.dumps({"encoder": enc_history, "head": head_history, "config": json.loads(cfg.model_dump_json())},
                   indent=2) + "\n"
    )
    return cfg.out_dir / LAST_NAME
