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
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from dfstream.config import TrainClipConfig
from dfstream.models import clip_lstm
from dfstream.models.clip_checkpoints import BEST_NAME, LAST_NAME, PROBE_NAME
from dfstream.models.data.bank import read_banks
from dfstream.models.data.onthefly import FakeConfig, FakeMaker
from dfstream.models.data.texture import colour_change, denoise, global_augment
from dfstream.models.datasets import ClipRef, load_clip, load_clip_frame, scan_clip_folders
from dfstream.models.device import MixedPrecision, model_device, place, workers_for
from dfstream.models.efficientnet_b0 import STAGES, load_imagenet_weights
from dfstream.models.encoder_soup import soup_encoder
from dfstream.stream.types import CLIP_LEN, EMBED_DIM

log = logging.getLogger(__name__)

VAL_FRAMES = (0, CLIP_LEN // 2)
BLEND_MAP_BLOCK = 5
"""Encoder block whose output (stride 16, 112 channels) the blend-map head reads."""
BLEND_MAP_STRIDE = 16


def blend_targets(mask: np.ndarray | None, side: int) -> np.ndarray:
    """2×side×side targets of one sample: the replaced region and its boundary, 4·M·(1−M) of the
    mask softened (after Face X-ray), both area-averaged to the encoder map; the boundary then peaks
    at 1. A hard paste or a Poisson clone has a sharp mask, so the softening gives every kind a band."""
    if mask is None:
        return np.zeros((2, side, side), np.float32)
    soft = cv2.GaussianBlur(mask, (0, 0), max(1.0, mask.shape[0] / 48))
    region, band = (cv2.resize(m, (side, side), interpolation=cv2.INTER_AREA) for m in (mask, 4 * soft * (1 - soft)))
    peak = float(band.max())
    return np.stack([region, band / peak if peak > 1e-3 else band]).astype(np.float32)


def to_tensor(crops: np.ndarray) -> torch.Tensor:
    """N×S×S×3 BGR uint8 → N×3×S×S float 0..1 (notebook B's input)."""
    return torch.from_numpy(np.ascontiguousarray(crops.transpose(0, 3, 1, 2))).float() / 255.0


FrameBatch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
"""Frames, labels, blend-map targets (N×2×s×s) and whether each sample's targets are known."""


class FrameStream(IterableDataset[FrameBatch]):
    """Batches of on-the-fly frames, optionally mixed with frames of fixed clips (the data build's
    training clips, filmed through its camera and codec); batch ``k`` depends only on the seed and ``k``.
    A fixed clip's fake has no known mask, so its blend-map targets are marked unknown. Without
    ``blend_maps`` (no blend-map loss) the targets are left at zero rather than computed."""

    def __init__(
        self, maker: FakeMaker, size: int, batch: int, seed: int, steps: int,
        fixed: list[ClipRef] | None = None, fixed_share: float = 0.0, paired: bool = False,
        blend_maps: bool = False,
    ) -> None:
        self.maker, self.size, self.batch, self.seed, self.steps = maker, size, batch, seed, steps
        self.paired, self.blend_maps = paired, blend_maps
        self.fixed = fixed or []
        self.n_fixed = round(batch * fixed_share) if self.fixed else 0

    def __iter__(self) -> Iterator[FrameBatch]:
        info = get_worker_info()
        first, every = (info.id, info.num_workers) if info is not None else (0, 1)
        if info is not None:
            cv2.setNumThreads(1)  # one core per worker: many workers would otherwise each start a thread pool
        for k in range(first, self.steps, every):
            rng = np.random.default_rng([self.seed, k])
            made = self.batch - self.n_fixed
            samples = (
                [s for _ in range(made // 2) for s in self.maker.pair(rng, self.size)]
                + [self.maker.frame(rng, self.size) for _ in range(made % 2)]
                if self.paired
                else [self.maker.frame(rng, self.size) for _ in range(made)]
            )
            parts = [to_tensor(np.stack([s.image for s in samples]))] if samples else []
            y = [float(s.label) for s in samples]
            side = max(1, self.size // BLEND_MAP_STRIDE)
            maps = [blend_targets(s.mask if self.blend_maps else None, side) for s in samples]
            known = [s.mask is not None for s in samples]
            if self.n_fixed:
                refs = [self.fixed[int(j)] for j in rng.integers(len(self.fixed), size=self.n_fixed)]
                frames = [load_clip_frame(r, int(rng.integers(CLIP_LEN)), self.size) for r in refs]
                if self.maker.config.changes_fixed_frames:
                    frames = [augmented_frame(f, rng, self.maker.config) for f in frames]
                flips = [f[:, :, ::-1] if rng.random() < 0.5 else f for f in frames]
                parts.append(torch.from_numpy(np.ascontiguousarray(np.stack(flips))))
                y += [float(r.label) for r in refs]
                maps += [blend_targets(None, side) for _ in refs]
                known += [r.label == 0 for r in refs]  # a genuine face has nothing pasted
            yield torch.cat(parts), torch.tensor(y), torch.from_numpy(np.stack(maps)), torch.tensor(known)


def augmented_frame(frame: np.ndarray, rng: np.random.Generator, config: FakeConfig) -> np.ndarray:
    """A fixed clip's 3×S×S BGR 0..1 frame through the on-the-fly frames' texture-both-ways changes.

    With ``sharpness_both_ways`` it gets all of their global changes; otherwise only the noise
    reduction of a ``denoise_share`` and the colour change of a ``colour_share`` (its codec and camera
    are already the build's)."""
    image = np.ascontiguousarray(np.rint(frame.transpose(1, 2, 0) * 255.0).astype(np.uint8))
    if config.sharpness_both_ways:
        image = global_augment(image, rng, both_ways=True, denoise_share=config.denoise_share,
                               colour_share=config.colour_share)
    else:
        if config.colour_share > 0 and rng.random() < config.colour_share:  # no draw when off: old runs repeat
            image = colour_change(image, rng)
        if rng.random() < config.denoise_share:
            image = denoise(image, rng)
    return image.transpose(2, 0, 1).astype(np.float32) / 255.0


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


class BlendMapHead(torch.nn.Module):
    """Training-only head that locates the pasted region and its boundary from an encoder block.

    Asking the encoder *where* a face was blended, not only whether, points it at the pasting
    trace every fake has, rather than at the people or textures of two dozen training faces. The
    head is dropped after training: the exported encoder is unchanged."""

    def __init__(self, model: clip_lstm.ClipDetector) -> None:
        super().__init__()
        block = model.cnn.features[BLEND_MAP_BLOCK]
        channels = STAGES[BLEND_MAP_BLOCK - 1][4]  # features[0] is the stem, features[k] the k-th stage
        self.layers = torch.nn.Sequential(
            torch.nn.Conv2d(channels, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(64, 2, 1)
        )
        self._last: torch.Tensor | None = None
        self._hook = block.register_forward_hook(self._keep)

    def _keep(self, _module: torch.nn.Module, _inputs: object, out: torch.Tensor) -> None:
        self._last = out

    def loss(self, targets: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        """Pixel BCE over the samples whose targets are known, from the encoder's last forward pass."""
        if self._last is None:
            raise RuntimeError("the blend-map head reads the encoder's forward pass; run the encoder first")
        logits, self._last = self.layers(self._last), None
        if logits.shape[-2:] != targets.shape[-2:]:
            logits = torch.nn.functional.interpolate(logits, size=targets.shape[-2:], mode="bilinear")
        if not bool(known.any()):
            return logits.sum() * 0.0
        return torch.nn.functional.binary_cross_entropy_with_logits(logits[known], targets[known])

    def close(self) -> None:
        self._hook.remove()
        self._last = None


def freeze_start(model: clip_lstm.ClipDetector, blocks: int) -> list[torch.nn.Module]:
    """Leave the first ``blocks`` encoder blocks at their start weights and statistics.

    With two dozen training people, the early ImageNet filters are what generalises; fitting them
    fits those people's cameras. Returns the frozen blocks (to keep in eval mode while training)."""
    frozen = list(model.cnn.features[:blocks])
    for block in frozen:
        block.requires_grad_(False)
    return frozen


def finetune_encoder(
    model: clip_lstm.ClipDetector, maker: FakeMaker, val: list[ClipRef], cfg: TrainClipConfig,
    fixed: list[ClipRef] | None = None,
) -> tuple[torch.nn.Linear, list[dict[str, float]]]:
    """Frame-level fine-tune with a cosine schedule; the best val-AUC state is kept.

    With ``weight_average`` the states validated and kept are those of a running average of the
    weights (buffers included), which lies in a flatter region than any single step's."""
    device = model_device(model)
    probe = torch.nn.Linear(EMBED_DIM, 1).to(device)
    frozen = freeze_start(model, cfg.freeze_blocks)
    trained = [p for p in model.cnn.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": trained, "lr": cfg.lr}, {"params": probe.parameters(), "lr": cfg.lr * 10}],
        weight_decay=1e-4,
    )
    blend_map = BlendMapHead(model).to(device) if cfg.boundary_weight > 0 else None
    if blend_map is not None:
        optimizer.add_param_group({"params": blend_map.layers.parameters(), "lr": cfg.lr * 10})
    pair = torch.nn.ModuleDict({"cnn": model.cnn, "probe": probe})
    average = (
        AveragedModel(pair, multi_avg_fn=get_ema_multi_avg_fn(cfg.weight_average), use_buffers=True)
        if cfg.weight_average > 0
        else None
    )
    if average is not None:
        average.update_parameters(pair)  # the average starts from the start weights, not the first step's
    base = [g["lr"] for g in optimizer.param_groups]
    criterion = torch.nn.BCEWithLogitsLoss()
    amp = MixedPrecision(device, cfg.amp)
    vx, vy = val_frames(val, cfg.img_size)
    loader = DataLoader(
        FrameStream(maker, cfg.img_size, cfg.frame_batch, cfg.seed, cfg.steps, fixed, cfg.fixed_share,
                    cfg.paired, blend_map is not None),
        batch_size=None,
        num_workers=workers_for(cfg.workers, device),
        pin_memory=device.type == "cuda",
    )
    best, best_state, history = -1.0, None, []
    total, started = 0.0, time.perf_counter()
    for step, batch in enumerate(loader, start=1):
        x, y, maps, known = (t.to(device, non_blocking=True) for t in batch)
        scale = 0.5 * (1 + math.cos(math.pi * (step - 1) / cfg.steps))
        for g, lr in zip(optimizer.param_groups, base, strict=True):
            g["lr"] = lr * max(scale, 0.02)
        model.cnn.train()
        for block in frozen:
            block.eval()
        with amp.autocast():  # logits: BCEWithLogitsLoss is safe under autocast
            loss = criterion(probe(model.cnn(x)).squeeze(1), y)
            if blend_map is not None:
                loss = loss + cfg.boundary_weight * blend_map.loss(maps, known)
        amp.step(loss, optimizer)
        if average is not None:
            average.update_parameters(pair)
        total += float(loss.item())
        if step % cfg.eval_every == 0 or step == cfg.steps:
            if average is not None:  # validate the average; training goes on from the step's own weights
                own = {k: v.clone() for k, v in pair.state_dict().items()}
                pair.load_state_dict(average.module.state_dict())
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
            if average is not None:
                pair.load_state_dict(own)
    if blend_map is not None:
        blend_map.close()
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
    model: clip_lstm.ClipDetector, maker: FakeMaker, refs: list[ClipRef], cfg: TrainClipConfig
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
    cfg: TrainClipConfig,
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


def train_clip_onthefly(cfg: TrainClipConfig) -> Path:
    """The whole model B run; writes last_model.pth (= the kept state), probe.pth and history.json."""
    if not cfg.faces:
        raise ValueError("on-the-fly training needs --faces (the data build's faces/train.npz)")
    torch.manual_seed(cfg.seed)
    bank = read_banks(cfg.faces)
    maker = FakeMaker(bank, FakeConfig(exclude=cfg.exclude, sharpness_both_ways=cfg.sharpness_both_ways,
                                       denoise_share=cfg.denoise_share, colour_share=cfg.colour_share))
    log.info("face bank: %d faces of %d people; fakes made on the fly%s", len(bank), len(bank.people()),
             f" (never {cfg.exclude})" if cfg.exclude else "")
    val = scan_clip_folders(cfg.val_dir) if cfg.val_dir is not None else []
    if not val:
        raise ValueError("on-the-fly training needs --val-data (the data build's clips/val)")
    model = clip_lstm.ClipDetector(cfg.activation)
    if not cfg.encoder_soup:
        load_imagenet_weights(model.cnn, cfg.imagenet_weights)
    device = place(model, cfg.device)
    train_refs = scan_clip_folders(cfg.data_dir) if cfg.data_dir.is_dir() else []
    if cfg.exclude is not None:  # a left-out method is left out of the fixed clips too (class folder = kind)
        train_refs = [r for r in train_refs if not cfg.exclude.startswith(r.folder.name)]
    if cfg.encoder_soup:
        probe = soup_encoder(model, cfg.encoder_soup).to(device)
        vx, vy = val_frames(val, cfg.img_size)
        enc_history = [{"step": 0, "val_frame_auc": _auc(vy, frame_scores(model, probe, vx)),
                        "soup_of": len(cfg.encoder_soup)}]
        log.info("encoder soup: val frame AUC %.4f", enc_history[0]["val_frame_auc"])
    else:
        probe, enc_history = finetune_encoder(model, maker, val, cfg, train_refs)
    head_train = clip_features(model, maker, train_refs, cfg)
    head_val = clip_features(model, maker, val, cfg.model_copy(update={"head_clips": 0}))
    model.cpu()  # the head trains on the cached embeddings, on the CPU
    probe.cpu()
    head_history = train_head(model, head_train, head_val, cfg)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    clip_lstm.save_state(model, cfg.out_dir / LAST_NAME)
    clip_lstm.save_state(model, cfg.out_dir / BEST_NAME)
    torch.save(probe.state_dict(), cfg.out_dir / PROBE_NAME)
    (cfg.out_dir / "history.json").write_text(
        json.dumps({"encoder": enc_history, "head": head_history, "config": json.loads(cfg.model_dump_json())},
                   indent=2) + "\n"
    )
    return cfg.out_dir / LAST_NAME
