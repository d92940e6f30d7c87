"""Teaching a model to follow hints: the hint branch and the decoder, from a trained checkpoint.

The encoder (VGG16), the decoder and the head stay frozen, so for each augmented crop the
encoder's stage 4, the decoder's last features and the network's own ab are computed once and
cached (``FeatureCache``); every step then runs only the hint branch, on hints simulated afresh
from the crop's true colors (``hint_sim``), scored by the squared error of its ab. On a 2-core CPU this is what makes a
run of tens of minutes worth having: the frozen part is nearly all of the arithmetic. The model
without hints is exactly the one it extends; what it does without hints is calibrated apart.

Kept apart from ``trainer.py`` (the general loop over photos): this is one configuration of
fine-tuning, with its own cache, and it calls the same schedule (``fitting.lr_at``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..color import normalize_ab, normalize_L, rgb_to_lab
from ..model.network import HINT_CHANNELS, ModelConfig, binned_ab, build_model
from .config import AugmentConfig
from .data import Batches, jitter_L, load_images
from .fitting import lr_at
from .hint_sim import HintSampler, batch_hint_maps


@dataclass
class GuidedConfig:
    """A hint-training run; stored (without machine paths) in the checkpoint it writes."""

    data: list[str] = field(default_factory=list)
    out: str = "guided.safetensors"
    init: str = "default"  # the checkpoint to extend ("default": the bundled model)
    exclude: list[str] = field(default_factory=list)  # file names never trained on (a validation set)
    crop: int = 176
    crops: int = 1500  # crops cached (each visited about steps * batch_size / crops times)
    batch_size: int = 16
    cache: str = ""  # a file to keep the feature cache in (reused when it exists)
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 30
    max_minutes: float = 25.0  # training steps (the cache is built before the clock starts)
    max_steps: int = 100_000
    save_every_minutes: float = 5.0
    l_jitter: float = 0.15
    cutmix: float = 0.5
    seed: int = 0
    hint_p: float = 1 / 8
    hint_max_size: int = 9


def hinted_model(init: str = "default"):
    """The checkpoint ``init`` as a hint-capable network: its weights, and a new hint branch that
    starts at zero (so it starts as exactly the model it extends). Returns (model, checkpoint)."""
    from ..model.weights import load_checkpoint

    ckpt = load_checkpoint(None if init == "default" else init)
    cfg = ModelConfig.from_dict({**ckpt.model.config.to_dict(), "hint_channels": HINT_CHANNELS})
    if not cfg.ab_bins:
        raise ValueError(f"{init}: hint training needs a binned head (ab_bins), this model predicts ab directly")
    model = build_model(cfg)
    result = model.load_state_dict(ckpt.model.state_dict(), strict=False)
    if result.unexpected_keys or any(not k.startswith("hints.") for k in result.missing_keys):
        raise ValueError(f"{init}: does not match the network it declares ({result})")
    return model, ckpt


class FeatureCache:
    """The frozen network's outputs for a fixed pool of crops: the decoder's last features and the
    network's own ab (1/2 of the input), encoder stage 4 (1/8), and the crop's true ab at full
    resolution (what hints are simulated from), all fp16. ``save``/``load`` keep it on disk."""

    def __init__(self, y: torch.Tensor, f4: torch.Tensor, ab_net: torch.Tensor, ab: torch.Tensor) -> None:
        self.y, self.f4, self.ab_net, self.ab = y, f4, ab_net, ab

    @classmethod
    @torch.no_grad()
    def build(cls, model, batches: Batches, crops: int, l_jitter: float, gen: torch.Generator, log=print):
        model.eval()
        parts: list[list[torch.Tensor]] = [[], [], [], []]
        n, t0 = 0, time.time()
        c = model.config
        while n < crops:
            rgb = batches.next()
            lab = rgb_to_lab(rgb.float() / 255.0)
            feats = model.encode(jitter_L(normalize_L(lab[:, :1]), l_jitter, gen))
            y = model.decode_features(feats)
            ab_net = binned_ab(y, model.head, c.ab_bins, c.temperature, c.estimator)
            for part, t in zip(parts, (y, feats[3], ab_net, normalize_ab(lab[:, 1:])), strict=True):
                part.append(t.half().contiguous())
            n += len(rgb)
            if len(parts[0]) % 10 == 0:
                log(f"  cached {n}/{crops} crops ({time.time() - t0:.0f} s)")
        out = cls(*(torch.cat(p)[:crops] for p in parts))
        size = sum(t.numel() * 2 for t in out.tensors())
        log(f"cached {len(out)} crops ({size / 2**30:.2f} GiB) in {time.time() - t0:.0f} s")
        return out

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return self.y, self.f4, self.ab_net, self.ab

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        save_file(
            {k: t.contiguous() for k, t in zip(("y", "f4", "ab_net", "ab"), self.tensors(), strict=True)}, str(path)
        )

    @classmethod
    def load(cls, path: Path) -> FeatureCache:
        from safetensors.torch import load_file

        t = load_file(str(path))
        return cls(t["y"], t["f4"], t["ab_net"], t["ab"])

    def __len__(self) -> int:
        return len(self.ab)

    def batch(self, idx: torch.Tensor):
        return tuple(t[idx].float() for t in self.tensors())


def _training_images(cfg: GuidedConfig):
    data = load_images(cfg.data)
    excluded = set(cfg.exclude)
    keep = [i for i, name in enumerate(data.names) if name not in excluded]
    return data, keep


def train_guided(cfg: GuidedConfig, log=print) -> dict:
    """Run it; writes ``cfg.out`` (every ``save_every_minutes`` and at the end) and returns a summary."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model, ckpt = hinted_model(cfg.init)
    data, keep = _training_images(cfg)
    log(f"data: {len(keep)} color pictures ({len(data.names) - len(keep)} excluded)")
    if cfg.cache and Path(cfg.cache).is_file():
        cache = FeatureCache.load(Path(cfg.cache))
        log(f"feature cache: {len(cache)} crops from {Path(cfg.cache).name}")
    else:
        aug = AugmentConfig(crop=cfg.crop, cutmix=cfg.cutmix, paste_prob=0.0, l_jitter=cfg.l_jitter)
        batches = Batches(data.images, keep, aug, 16, np.random.default_rng(cfg.seed + 1))
        try:
            cache = FeatureCache.build(model, batches, cfg.crops, cfg.l_jitter, gen, log)
        finally:
            batches.close()
        if cfg.cache:
            cache.save(Path(cfg.cache))

    # Only the hint branch learns: the model without hints stays exactly the one it extends.
    for p in model.parameters():
        p.requires_grad_(False)
    branch = list(model.hints.parameters())
    for p in branch:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(branch, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sampler = HintSampler(p=cfg.hint_p, max_size=cfg.hint_max_size)
    meta = _meta(cfg, ckpt, data, keep)
    t0 = last_save = time.time()
    losses: list[float] = []
    step = 0
    model.train()
    while step < cfg.max_steps:
        frac = (time.time() - t0) / (60 * cfg.max_minutes)
        if frac >= 1:
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg.max_steps, cfg.lr, cfg.warmup_steps, frac)
        idx = torch.from_numpy(rng.choice(len(cache), size=cfg.batch_size, replace=False))
        y, f4, ab_net, ab = cache.batch(idx)
        hints = torch.from_numpy(batch_hint_maps(ab.numpy(), sampler, rng))
        # Squared error on ab, what PSNR measures; the network's own ab is what a pixel no hint
        # reaches keeps.
        loss = F.mse_loss(model.add_hints(ab_net, y, f4, hints), F.avg_pool2d(ab, 2))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % 25 == 0:
            log(f"step {step}: loss {np.mean(losses[-25:]):.4f} ({time.time() - t0:.0f} s)")
        if time.time() - last_save > 60 * cfg.save_every_minutes:
            _save(model, cfg, meta, step, losses, time.time() - t0)
            last_save = time.time()
    _save(model, cfg, meta, step, losses, time.time() - t0)
    model.eval()
    return {"steps": step, "loss": float(np.mean(losses[-50:])) if losses else None, "seconds": time.time() - t0}


def _meta(cfg: GuidedConfig, ckpt, data, keep: list[int]) -> dict:
    config = asdict(cfg)
    # Only the last two parts of each path: where this machine kept the data is nobody's business.
    config["data"] = ["/".join(Path(d).parts[-2:]) for d in cfg.data]
    config["out"] = Path(cfg.out).name
    config["init"] = cfg.init if cfg.init == "default" else Path(cfg.init).name
    return scrub_paths(
        {
            "inference_size": ckpt.inference_size,
            "chroma_gain": ckpt.chroma_gain,
            "training": {
                "kind": "hints",
                "config": config,
                "init": {"file": ckpt.path.name, "sha256": ckpt.sha256},
                "train_images": [data.names[i] for i in keep],
                "excluded_images": sorted(cfg.exclude),
                "backbone": (ckpt.meta.get("training") or {}).get("backbone"),
            },
        }
    )


def scrub_paths(value):
    """``value`` with every absolute path (a string starting with / or ~) cut to its file name: a
    checkpoint's header travels with the model and must not describe the machine it was made on."""
    if isinstance(value, dict):
        return {k: scrub_paths(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_paths(v) for v in value]
    if isinstance(value, str) and value[:1] in ("/", "~") and len(value) > 1:
        return Path(value).name
    return value


def _save(model, cfg: GuidedConfig, meta: dict, step: int, losses: list[float], seconds: float) -> None:
    from ..model.weights import save_checkpoint

    was = model.training
    model.eval()
    doc = dict(meta)
    doc["training"] = dict(meta["training"], steps=step, seconds=round(seconds, 1))
    doc["training"]["final_loss"] = float(np.mean(losses[-50:])) if losses else None
    save_checkpoint(model, cfg.out, doc, half=True)
    model.train(was)
