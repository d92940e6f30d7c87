"""What a training or adaptation run is asked to do: each setting's one default and its rule.

``AugmentConfig`` is how a training crop is made (``data.py`` makes them); ``TrainConfig`` is a
training run (``train.py``), ``AdaptConfig`` a fine-tuning run (``adapt.py``); both hold an
``AugmentConfig``. Kept free of PyTorch so that the CLI can show these defaults in ``--help``
without loading it. Errors name the fields (``batch_size``); the CLI spells them as its options.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError

_CROP_RULE = "a multiple of 16, at least 16"


@dataclass(frozen=True)
class AugmentConfig:
    """How a training crop is made from a picture: its size and area, CutMix, pasted cut-outs, L jitter."""

    crop: int = 176
    min_scale: float = 0.15  # random resized crops cover 15%..100% of the picture's area
    cutmix: float = 0.5  # probability of pasting a patch of another crop into each crop
    paste_prob: float = 0.5  # each crop gets up to two cut-outs, each with this probability
    paste_scale: tuple[float, float] = (0.25, 0.7)  # a cut-out's long side, as a fraction of the crop
    l_jitter: float = 0.15  # random contrast/brightness/gamma of the input L (targets unchanged)

    def __post_init__(self) -> None:
        ConfigError.check(
            self,
            {
                "crop": (self.crop >= 16 and self.crop % 16 == 0, _CROP_RULE),
                "min_scale": (0 < self.min_scale <= 1, "in (0, 1]"),
                "cutmix": (0 <= self.cutmix <= 1, "in [0, 1]"),
                "paste_prob": (0 <= self.paste_prob <= 1, "in [0, 1]"),
                "paste_scale": (
                    len(self.paste_scale) == 2 and 0 < self.paste_scale[0] <= self.paste_scale[1] <= 2,
                    "two fractions LO HI with 0 < LO <= HI <= 2",
                ),
            },
        )


@dataclass
class TrainConfig:
    """Every knob of a training run; stored in the checkpoint it produces."""

    data: list[str] = field(default_factory=list)
    out: str = "model.safetensors"
    backbone: str = "imagenet"
    init: str = ""  # a checkpoint whose weights start the run ("default": the bundled model); backbone unused
    epochs: int = 20
    repeat: int = 8  # passes over the training images per epoch (each pass new random crops)
    batch_size: int = 16
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    lr: float = 3e-4
    encoder_lr_mult: float = 0.2  # transfer learning: the pretrained encoder moves more slowly
    weight_decay: float = 0.05
    warmup_steps: int = 50
    freeze_epochs: int = -1  # -1: 2 when the backbone is pretrained, 0 when it is random
    freeze_stages: int = 0  # the first N VGG stages (of 5) stay frozen for the whole run
    cache_crops: int = 0  # >0: compute the frozen stages once for this many augmented crops, train on those
    paste: str = ""  # folder of RGBA cut-outs pasted onto the crops (copy-paste augmentation)
    paste_val_fraction: float = 0.15  # cut-outs held out and pasted onto the validation photos
    loss: str = "mse"
    ab_bins: int = 0  # >0: predict a distribution over an N x N ab grid (cross-entropy) instead of ab itself
    temperature: float = 0.38  # with ab_bins: the annealed mean's temperature the model is saved with
    rebalance: float = 0.0  # with ab_bins: weight rare colors up (Zhang et al.'s lambda, 0.5 there); 0: off
    dropout: float = 0.1
    chroma_weight: float = 0.0  # anti-sepia term, see fitting.chroma_loss(); it costs PSNR
    val_fraction: float = 0.15
    inference_size: int = 256
    min_colorfulness: float = 12.0
    seed: int = 0
    split_seed: int = -1  # the train/validation split's and validation composites' seed; -1: seed's
    device: str = "auto"
    resume: bool = False
    max_minutes: float = 0.0  # 0 = no time budget
    stop_after: int = 0  # stop after this many epochs, the schedule still spanning ``epochs``; 0 = all

    def __post_init__(self) -> None:
        ConfigError.check(
            self,
            {
                "epochs": (self.epochs >= 1, "at least 1"),
                "repeat": (self.repeat >= 1, "at least 1"),
                "batch_size": (self.batch_size >= 1, "at least 1"),
                "lr": (self.lr > 0, "positive"),
                "dropout": (0 <= self.dropout < 1, "in [0, 1)"),
                "val_fraction": (0 < self.val_fraction < 1, "between 0 and 1"),
                "loss": (self.loss in ("mse", "huber", "l1"), "mse, huber or l1"),
                "ab_bins": (self.ab_bins == 0 or 2 <= self.ab_bins <= 64, "0 (predict ab) or 2..64 bins a side"),
                "temperature": (self.temperature > 0, "positive (1: the mean; lower: more vivid)"),
                "rebalance": (  # with init, the checkpoint's head decides (train._network_config)
                    self.rebalance == 0 or ((self.ab_bins > 0 or bool(self.init)) and 0 < self.rebalance <= 1),
                    "0 (off), or in (0, 1] with {ab_bins} (it weights the cross-entropy over bins)",
                ),
                "chroma_weight": (
                    self.ab_bins == 0 or (self.chroma_weight == 0 and self.loss == "mse"),
                    "0 with {ab_bins}, whose loss is the cross-entropy over bins (leave {loss} unset too)",
                ),
                "max_minutes": (self.max_minutes >= 0, "0 (no budget) or more"),
                "stop_after": (0 <= self.stop_after <= self.epochs, "0 (all) to {epochs}"),
                "freeze_stages": (0 <= self.freeze_stages <= 5, "0 to 5 (VGG16 has five stages)"),
                "cache_crops": (
                    self.cache_crops == 0 or (self.cache_crops > 0 and self.freeze_stages >= 1),
                    "0, or positive with {freeze_stages} 1..5 (only frozen stages can be cached)",
                ),
                "paste_val_fraction": (0 <= self.paste_val_fraction < 1, "in [0, 1)"),
            },
        )


# Fine-tuning on a camera's own frames: smaller crops that keep more of each frame, no CutMix
# (its frames share one scene) and no L jitter (its exposure is the camera's own).
ADAPT_AUGMENT = AugmentConfig(crop=128, min_scale=0.3, cutmix=0.0, l_jitter=0.0)


@dataclass
class AdaptConfig:
    """Every knob of ``rtcolor adapt``; stored in the checkpoint it produces."""

    sources: list[str] = field(default_factory=list)
    out: str = "adapted.safetensors"
    base: str | None = None  # the bundled default model when None
    minutes: float = 5.0
    steps: int = 0  # stop after this many optimizer steps if the time budget has not ended it (0: none)
    max_frames: int = 300  # frames sampled per source at most
    frame_long_side: int = 384  # sampled frames are stored this size (training crops come from them)
    dedup: float = 0.01  # a frame where less than this fraction of a 64x36 thumbnail moved is skipped
    val_fraction: float = 0.2  # the last part of each source, in time
    frozen_stages: int = 3  # encoder stages kept as they are (of 5)
    augment: AugmentConfig = ADAPT_AUGMENT  # frozen, so one shared default is safe
    batch_size: int = 8
    lr: float = 2e-4
    eval_every: float = 0.25  # validate after each quarter of the budget; the best state is kept
    seed: int = 0

    def __post_init__(self) -> None:
        ConfigError.check(
            self,
            {
                "minutes": (self.minutes > 0, "positive"),
                "steps": (self.steps >= 0, "0 (no step limit) or more"),
                "max_frames": (self.max_frames >= 2, "at least 2 (one to train on, one to hold out)"),
                "val_fraction": (0 < self.val_fraction < 1, "between 0 and 1"),
                "frozen_stages": (0 <= self.frozen_stages <= 5, "between 0 and 5"),
                "batch_size": (self.batch_size >= 1, "at least 1"),
                "lr": (self.lr > 0, "positive"),
            },
        )
