"""The one trainer: setup, epoch, validate, save. ``rtcolor train`` and ``rtcolor adapt`` are two
configurations of it (``config.TrainConfig`` and ``config.adapt_config``); its losses and schedule
are ``fitting.py``'s, where its pictures and network come from is ``start.py``'s.

Run on one process (CPU or GPU) with ``rtcolor train``; on several GPUs with
``torchrun --nproc_per_node N -m realtime_color.cli train ...`` (DistributedDataParallel; gloo on
CPU, nccl on CUDA). Rank 0 validates and writes checkpoints.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, NotFoundError
from ..evaluation.evaluate import evaluate_gains
from ..evaluation.rules import GainRule
from ..evaluation.scores import Validation
from ..model.backbones import init_backbone, load_backbone
from ..model.network import build_model
from ..model.weights import save_checkpoint
from .config import AugmentConfig, TrainConfig  # noqa: F401 - the configs of a run, importable from here
from .data import Batches, FeatureCache, jitter_L, lab_split
from .fitting import bin_prior, fit_loss, lr_at, optimizer_step, rebalance_weights
from .start import dist_info, footage_data, photo_data, resolve, resolve_device, start_from


def state_path(out: str | Path) -> Path:
    """Where the resumable training state of ``out`` lives."""
    out = Path(out)
    return out.with_name(out.stem + ".train-state.pt")


@dataclass
class TrainResult:
    """What a run did: its best validation (None on ranks other than 0), every epoch's, and the
    start's own figures when it started from a checkpoint."""

    best: Validation | None
    history: list[Validation] = field(default_factory=list)
    before: Validation | None = None
    steps: int = 0
    seconds: float = 0.0
    train_pictures: int = 0
    val_pictures: int = 0


class Trainer:
    """One training run: ``setup()`` (data, network, optimizer, resume), then ``epoch()`` and
    ``validate()`` in turn, ``save()`` on each new best; ``run()`` does it all.

    The run's length is a fraction from 0 to 1 (``fraction()``): steps over the run's steps, or
    time over its budget, whichever is further along; epoch k ends at k / epochs of it, and the
    learning rate decays with it."""

    def __init__(self, cfg: TrainConfig, log=print, progress=None):
        self.cfg, self.log, self.progress = cfg, log, progress
        self.rank, self.world = dist_info()
        self.device = resolve_device(cfg.device)
        self.on_cuda = self.device.startswith("cuda")
        self.step, self.best, self.history, self.before = 0, None, [], None
        self.elapsed_before = 0.0  # seconds of the run before a resume
        self._task = None

    # ---- setup -------------------------------------------------------------------------------

    def setup(self) -> None:
        cfg, rank, world = self.cfg, self.rank, self.world
        if cfg.cache_crops and world > 1:
            raise ConfigError([("cache_crops", cfg.cache_crops, "0 under torchrun (caching runs on one process)")])
        if world > 1:
            import torch.distributed as dist

            dist.init_process_group("nccl" if self.on_cuda else "gloo")
            if self.on_cuda:
                torch.cuda.set_device(self.device)
            if rank == 0:
                self.log(f"DDP: {world} processes ({'nccl' if self.on_cuda else 'gloo'})")
        torch.manual_seed(cfg.seed + rank)
        self.rng = np.random.default_rng(cfg.seed + rank)
        cfg, net_cfg = resolve(cfg)  # the settings left to the start (init's head) filled in
        self.cfg, self.rule = cfg, GainRule(cfg.min_colorfulness)
        self.data = footage_data(cfg, self.log) if cfg.footage else photo_data(cfg, self.log, rank)
        self.model = build_model(net_cfg)
        self._start_weights()
        self.model.to(self.device)
        if self.on_cuda:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.net, self._net_frozen = self.model, None
        stages = self.model.encoder[: cfg.freeze_stages]
        self.frozen_params = {id(p) for stage in stages for p in stage.parameters()}
        stages.requires_grad_(False)
        self.opt = torch.optim.AdamW(
            [
                {
                    "params": [p for p in self.model.encoder_parameters() if id(p) not in self.frozen_params],
                    "lr_mult": cfg.encoder_lr_mult,
                },
                {"params": self.model.decoder_parameters(), "lr_mult": 1.0},
            ],
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
        )
        # The same step count on every rank: DDP's all-reduces must pair up or the ranks hang.
        per_epoch = math.ceil(len(self.data.train) * cfg.repeat / (cfg.batch_size * world))
        self.total_steps = cfg.max_steps or (max(1, per_epoch) * cfg.epochs if cfg.repeat else 0)
        self.start_epoch = self._resume() if cfg.resume else 0
        self.amp_dtype = torch.bfloat16 if self.on_cuda and torch.cuda.is_bf16_supported() else torch.float16
        shard = list(range(len(self.data.train)))[rank::world] or list(range(len(self.data.train)))
        self.batches = Batches(self.data.train, shard, cfg.augment, cfg.batch_size, self.rng, cutouts=self.data.cutouts)
        self.jitter_gen = torch.Generator().manual_seed(cfg.seed + rank)
        self.cache = None
        if cfg.cache_crops:
            self.cache = FeatureCache.build(
                self.model,
                self.batches,
                cfg.freeze_stages,
                cfg.cache_crops,
                cfg.augment.l_jitter,
                self.jitter_gen,
                self.device,
                self.log,
                self.progress,
            )
            self.batches.close()  # every step now samples the cache
        self.bin_weights = self._rebalancing() if cfg.rebalance else None
        if cfg.init and rank == 0 and not cfg.resume:  # the start's own figures, at its own gain
            self.before = self.validate(gains=(self.start_gain,))
            self.log(f"before: {self.before.describe()}")

    def _start_weights(self) -> None:
        cfg = self.cfg
        if cfg.init:
            self.start_record, self.start_gain = start_from(self.model, cfg.init, self.data.val_names)
            pretrained = True
        else:
            backbone = load_backbone(cfg.backbone)
            if backbone is not None:
                init_backbone(self.model, backbone)
            self.start_record, self.start_gain = (backbone.source if backbone else {"spec": "none"}), None
            pretrained = backbone is not None
        self.freeze_epochs = cfg.freeze_epochs if cfg.freeze_epochs >= 0 else (2 if pretrained else 0)

    def _resume(self) -> int:
        sp = state_path(self.cfg.out)
        if not sp.is_file():
            raise NotFoundError(f"cannot resume: no training state at {sp}")
        st = torch.load(sp, map_location="cpu", weights_only=True)
        self.model.load_state_dict(st["model"])
        self.opt.load_state_dict(st["optimizer"])
        best = st.get("best")
        epoch, best = int(st["epoch"]), json.loads(best) if isinstance(best, str) else best  # a dict before 0.2
        self.best = Validation.from_dict(best) if best else None
        self.history = [Validation.from_dict(v) for v in json.loads(st.get("history", "[]"))]
        self.step = int(st.get("step", 0)) or round(epoch / self.cfg.epochs * self.total_steps)
        self.elapsed_before = float(st.get("seconds", 0.0))
        self.rng = np.random.default_rng(self.cfg.seed + self.rank + 1000 * epoch)
        self.log(f"resumed from {sp} at epoch {epoch}")
        return epoch

    def _rebalancing(self) -> torch.Tensor:
        # The color prior from what this run trains on: the cached crops, or 32 fresh batches.
        # (Under torchrun each rank estimates it from its own shard.)
        cache, batches = self.cache, self.batches
        seen = cache.ab if cache is not None else torch.cat([lab_split(batches.next())[1] for _ in range(32)])
        prior = bin_prior(seen, self.model.config.ab_bins)
        weights = rebalance_weights(prior, self.cfg.rebalance).to(self.device)
        used = weights[prior > 1e-4]
        self.log(f"rebalancing colors (mix {self.cfg.rebalance}): bin weights {used.min():.2f} to {used.max():.2f}")
        return weights

    # ---- how far along -----------------------------------------------------------------------

    def seconds(self) -> float:
        """Seconds of this run so far, by this process's clock."""
        return self.elapsed_before + time.time() - self.t0

    def elapsed(self) -> float:
        """Seconds of this run so far, by rank 0's clock under torchrun, so that every rank takes
        the same number of steps (DDP's all-reduces must pair up). Every rank must call it."""
        seconds = self.seconds()
        if self.world > 1 and self.cfg.max_minutes > 0:
            import torch.distributed as dist

            t = torch.tensor([seconds], dtype=torch.float64, device=self.device if self.on_cuda else "cpu")
            dist.broadcast(t, 0)
            seconds = float(t.item())
        return seconds

    def fraction(self) -> float:
        """How far along the run is, 0 to 1: steps or time, whichever is further."""
        steps = self.step / self.total_steps if self.total_steps else 0.0
        return max(steps, self.time_fraction())

    def time_fraction(self) -> float:
        return self._seconds / (60 * self.cfg.max_minutes) if self.cfg.max_minutes > 0 else 0.0

    def _tick(self) -> float:
        self._seconds = self.elapsed()
        return self.fraction()

    # ---- one epoch ---------------------------------------------------------------------------

    def epoch(self, k: int) -> tuple[list[float], bool]:
        """Optimizer steps until the run is (k + 1) / epochs along; their losses, and whether the
        encoder was frozen."""
        frozen = k < self.freeze_epochs
        for p in self.model.encoder_parameters():
            p.requires_grad_(not frozen and id(p) not in self.frozen_params)
        if self.world > 1 and self._net_frozen != frozen:
            # DDP fixes the set of parameters it reduces when it is built: rebuild it on (un)freeze.
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device] if self.on_cuda else None
            self.net, self._net_frozen = DistributedDataParallel(self.model, device_ids=ids), frozen
        self.net.train()
        losses: list[float] = []
        end = (k + 1) / self.cfg.epochs
        while self._tick() < end:
            losses.append(self.train_step())
            if self.progress:
                label = f"epoch {k + 1}/{self.cfg.epochs} loss {losses[-1]:.4f}"
                self.progress.update(self._task, completed=min(1.0, self.fraction()), description=label)
        return losses, frozen

    def train_step(self) -> float:
        """One optimizer step on one batch; returns its loss."""
        cfg, model = self.cfg, self.model
        lr = lr_at(self.step, self.total_steps or 10**9, cfg.lr, cfg.warmup_steps, self.time_fraction())
        for g in self.opt.param_groups:
            g["lr"] = lr * g["lr_mult"]
        if self.cache is not None:
            feats, ab = self.cache.sample(cfg.batch_size, self.rng, self.device)
            with torch.autocast("cuda", dtype=self.amp_dtype, enabled=self.on_cuda):
                pred = model.decode(feats + model.encode(feats[-1], start=len(feats)), logits=True)
        else:
            lum, ab = lab_split(self.batches.next().to(self.device, non_blocking=True))
            lum = jitter_L(lum, cfg.augment.l_jitter, self.jitter_gen)
            if self.on_cuda:
                lum = lum.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=self.amp_dtype, enabled=self.on_cuda):
                pred = self.net(lum, logits=True)
        loss = fit_loss(pred.float(), ab, model.config.ab_bins, cfg.loss, cfg.chroma_weight, self.bin_weights)
        self.step += 1
        return optimizer_step(self.opt, loss)

    # ---- validate and save -------------------------------------------------------------------

    def validate(self, gains=None, **when) -> Validation:
        """The validation figures at the chroma gain the selection rule picks (of ``gains``)."""
        kw = {"gains": gains} if gains else {}
        sweep = evaluate_gains(self.model, self.data.val, self.cfg.inference_size, self.device, **kw)
        gain = self.rule.pick_gain(sweep)
        return Validation(**asdict(sweep[gain]), chroma_gain=gain, steps=self.step, **when)

    def save(self) -> None:
        """Write the best epoch's checkpoint, self-describing: its config, data and figures."""
        import os
        import platform

        cfg, best = self.cfg, self.best
        if self.on_cuda:
            machine = torch.cuda.get_device_name(self.device)
        else:
            machine = platform.processor() or platform.machine()
        meta = {
            "inference_size": cfg.inference_size,
            # The loss trades saturation against error; one scalar on ab, chosen on the validation
            # split by the selection rule (best PSNR among gains colorful enough), sets it.
            "chroma_gain": best.chroma_gain,
            "selection": self.rule.text(),
            "training": {
                "config": asdict(cfg),
                **self.data.record,
                "backbone": self.start_record,
                "steps": self.step,
                "seconds": round(self.seconds(), 1),
                "device": machine,
                "epochs_run": len(self.history),
                "world_size": int(os.environ.get("WORLD_SIZE", 1)),
            },
            "metrics": {"validation": best.to_dict(), "history": [v.to_dict() for v in self.history]},
        }
        if self.before:
            meta["metrics"]["before"] = self.before.to_dict()
        save_checkpoint(self.model, cfg.out, meta, half=True)

    def save_state(self, epoch: int) -> None:
        """What ``--resume`` continues from; Ctrl-C while saving keeps the last whole state."""
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "epoch": epoch,
            "step": self.step,
            "seconds": self.seconds(),
            "best": json.dumps(self.best.to_dict() if self.best else None),
            "history": json.dumps([v.to_dict() for v in self.history]),
        }
        sp = state_path(self.cfg.out)
        torch.save(state, sp.with_name(sp.name + ".partial"))
        sp.with_name(sp.name + ".partial").replace(sp)

    # ---- the run -----------------------------------------------------------------------------

    def run(self) -> TrainResult:
        try:
            self.setup()
            self.t0, self._seconds = time.time(), self.elapsed_before
            if self.progress:
                self._task = self.progress.add_task("train", total=1.0, completed=self.fraction())
            self._loop()
        finally:
            batches = getattr(self, "batches", None)
            if batches is not None:
                batches.close()
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()
        if self.before and self.best and self.best.psnr <= self.before.psnr:
            self.log(f"not better than the start on the held-out pictures; {self.cfg.out} holds its best epoch anyway")
        return TrainResult(
            self.best,
            self.history,
            self.before,
            self.step,
            self.seconds(),
            len(self.data.train),
            len(self.data.val),
        )

    def _loop(self) -> None:
        cfg, k = self.cfg, self.start_epoch
        while k < cfg.epochs:
            losses, frozen = self.epoch(k)
            if self.rank == 0:
                loss = float(np.mean(losses)) if losses else None
                val = self.validate(epoch=k + 1, train_loss=loss, frozen=frozen)
                self.history.append(val)
                said = f"loss {loss:.4f}  " if losses else ""
                self.log(
                    f"epoch {k + 1}: {said}{val.describe()}  luma PSNR {val.luma_psnr:.1f}  gain "
                    f"{val.chroma_gain:.2f}  ({self.step} steps)" + ("  [encoder frozen]" if frozen else "")
                )
                if self.rule.better(val, self.best):
                    self.best = val
                    self.save()
                if cfg.save_state:
                    self.save_state(k + 1)
            frac = self._tick()
            if frac >= 1.0 and k + 1 < cfg.epochs:
                if self.rank == 0:
                    budget = f"time budget of {cfg.max_minutes} min" if self.time_fraction() >= 1 else "step limit"
                    self.log(f"{budget} reached after epoch {k + 1}")
                break
            if cfg.stop_after and k + 1 >= cfg.stop_after:  # the same on every rank
                if self.rank == 0:
                    self.log(f"stopped after epoch {k + 1} of {cfg.epochs}, as --stop-after asked")
                break
            # A run cut by time may already be past the next epoch's end: no epoch of zero steps.
            k = max(k + 1, math.floor(frac * cfg.epochs))


def train(cfg: TrainConfig, log=print, progress=None) -> TrainResult:
    """Run a training (or, configured by ``config.adapt_config``, an adaptation)."""
    return Trainer(cfg, log, progress).run()
