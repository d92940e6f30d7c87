"""What a training run is asked to do: each setting's one default and its rule.

``AugmentConfig`` is how a training crop is made (``data.py`` makes them); ``TrainConfig`` is a
training run (``trainer.py``), ``rtcolor train``'s or, configured by ``adapt_config``, ``rtcolor
adapt``'s fine-tuning on a camera's footage (sampled as ``FootageConfig`` says, ``footage.py``).
Kept free of PyTorch so that the CLI can show these defaults in ``--help`` without loading it.
Errors name the fields (``batch_size``); the CLI spells them as its options.
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


# The head of the bundled model (its header's model_config), which a new network gets unless told
# otherwise: a distribution over a 21 x 21 ab grid read out by its annealed mean at T = 0.6.
DEFAULT_AB_BINS = 21
DEFAULT_TEMPERATURE = 0.6
DEFAULT_INFERENCE_SIZE = 256


@dataclass(frozen=True)
class FootageConfig:
    """How frames are sampled from a camera's own color footage (``rtcolor adapt``): near-duplicates
    skipped, and the held-out part of each source is its end *in time* (neighboring frames would leak)."""

    max_frames: int = 300  # frames sampled per source at most
    frame_long_side: int = 384  # sampled frames are stored this size (training crops come from them)
    dedup: float = 0.01  # a frame where less than this fraction of a 64x36 thumbnail moved is skipped

    def __post_init__(self) -> None:
        ConfigError.check(
            self,
            {
                "max_frames": (self.max_frames >= 2, "at least 2 (one to train on, one to hold out)"),
                "frame_long_side": (self.frame_long_side >= 16, "at least 16"),
                "dedup": (0 <= self.dedup < 1, "in [0, 1)"),
            },
        )


@dataclass
class TrainConfig:
    """Every knob of a training run, ``rtcolor train``'s and ``rtcolor adapt``'s (``adapt_config``);
    stored in the checkpoint it produces.

    A run is ``epochs`` epochs, each followed by a validation. Its length is the first of: ``epochs``
    times ``repeat`` passes over the training pictures, ``max_steps`` optimizer steps, ``max_minutes``;
    the epochs split whichever ends it first into equal parts.
    """

    data: list[str] = field(default_factory=list)  # folders or files of color photos; with footage, videos too
    footage: FootageConfig | None = None  # set: data is a camera's footage, sampled and split in time
    out: str = "model.safetensors"
    backbone: str = "imagenet"
    init: str = ""  # a checkpoint whose weights start the run ("default": the bundled model); backbone unused
    epochs: int = 20
    repeat: int = 8  # passes over the training pictures per epoch (each pass new crops); 0: max_steps/minutes
    max_steps: int = 0  # stop after this many optimizer steps (0: no limit); the same run on any machine
    max_minutes: float = 0.0  # time budget (0: none); the learning rate decays with it
    stop_after: int = 0  # stop after this many epochs, the schedule still spanning ``epochs``; 0 = all
    batch_size: int = 16
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    lr: float = 3e-4
    encoder_lr_mult: float = 0.2  # transfer learning: the pretrained encoder moves more slowly
    weight_decay: float = 0.05
    warmup_steps: int = 50
    freeze_epochs: int = -1  # -1: 2 when the start is pretrained (backbone or init), 0 when random
    freeze_stages: int = 0  # the first N VGG stages (of 5) stay frozen for the whole run
    cache_crops: int = 0  # >0: compute the frozen stages once for this many augmented crops, train on those
    paste: str = ""  # folder of RGBA cut-outs pasted onto the crops (copy-paste augmentation)
    paste_val_fraction: float = 0.15  # cut-outs held out and pasted onto the validation photos
    loss: str = "mse"  # with ab_bins 0: the loss on ab
    ab_bins: int | None = None  # None: the bundled model's head (21), or init's; 0: predict ab itself; N: N x N bins
    temperature: float | None = None  # binned head: its annealed mean's temperature; None: 0.6, or init's
    rebalance: float = 0.0  # binned head: weight rare colors up (Zhang et al.'s lambda, 0.5 there); 0: off
    dropout: float = 0.1
    chroma_weight: float = 0.0  # with ab_bins 0: anti-sepia term, see fitting.chroma_loss(); it costs PSNR
    val_fraction: float = 0.15  # held out for validation: at random, or with footage each source's end
    inference_size: int | None = None  # stored in the model and used for validation; None: 256, or init's
    min_colorfulness: float = 12.0  # the selection rule's floor (evaluation: best PSNR among colorful enough)
    seed: int = 0
    split_seed: int = -1  # the train/validation split's and validation composites' seed; -1: seed's
    device: str = "auto"
    resume: bool = False
    save_state: bool = True  # write OUT's .train-state.pt after every epoch (what resume continues)

    def __post_init__(self) -> None:
        if self.ab_bins is None and not self.init:  # a new network: the bundled model's head
            self.ab_bins = DEFAULT_AB_BINS
        if self.temperature is None and not self.init:
            self.temperature = DEFAULT_TEMPERATURE
        if self.inference_size is None and not self.init:
            self.inference_size = DEFAULT_INFERENCE_SIZE
        binned = self.ab_bins != 0  # None (init's head) is checked against the checkpoint when it is read
        ConfigError.check(
            self,
            {
                "epochs": (self.epochs >= 1, "at least 1"),
                "repeat": (self.repeat >= 0, "0 (max_steps or max_minutes set the run's length) or more"),
                "max_steps": (self.max_steps >= 0, "0 (no step limit) or more"),
                "batch_size": (self.batch_size >= 1, "at least 1"),
                "lr": (self.lr > 0, "positive"),
                "dropout": (0 <= self.dropout < 1, "in [0, 1)"),
                "val_fraction": (0 < self.val_fraction < 1, "between 0 and 1"),
                "ab_bins": (
                    self.ab_bins is None or self.ab_bins == 0 or 2 <= self.ab_bins <= 64,
                    "0 (predict ab) or 2..64 bins a side",
                ),
                "temperature": (
                    self.temperature is None or self.temperature > 0,
                    "positive (1: the mean; lower: more vivid)",
                ),
                "rebalance": (
                    self.rebalance == 0 or (binned and 0 < self.rebalance <= 1),
                    "0 (off), or in (0, 1] with a binned head (it weights the cross-entropy over bins; "
                    "{ab_bins} 0 has none)",
                ),
                "chroma_weight": (
                    not (self.ab_bins and self.chroma_weight),
                    "0 with a binned head ({ab_bins} not 0), whose loss is the cross-entropy over bins",
                ),
                "loss": (
                    self.loss in ("mse", "huber", "l1") and not (self.ab_bins and self.loss != "mse"),
                    "mse, huber or l1 with {ab_bins} 0; unset with a binned head (its loss is the cross-entropy)",
                ),
                "max_minutes": (
                    self.max_minutes > 0 or (self.max_minutes == 0 and (self.repeat or self.max_steps)),
                    "0 (no budget) or more; positive with {repeat} 0 and no {max_steps} (it is the run's only end)",
                ),
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

# ``rtcolor adapt``: the trainer configured to fine-tune a checkpoint on a camera's footage for a
# few minutes. The early encoder stages stay frozen (generic edges and textures, and most of the
# cost); validation at each quarter of the budget; on its own footage PSNR alone decides (the
# colorfulness floor is 0: the held-out frames' truth sets how colorful the output should be).
ADAPT_DEFAULTS = dict(
    out="adapted.safetensors",
    init="default",
    footage=FootageConfig(),
    epochs=4,
    repeat=0,
    max_minutes=5.0,
    freeze_stages=3,
    freeze_epochs=0,
    augment=ADAPT_AUGMENT,
    batch_size=8,
    lr=2e-4,
    encoder_lr_mult=1.0,
    weight_decay=0.01,
    warmup_steps=20,
    val_fraction=0.2,
    min_colorfulness=0.0,
    save_state=False,
)


def adapt_config(**given) -> TrainConfig:
    """The ``TrainConfig`` of ``rtcolor adapt``: ``ADAPT_DEFAULTS`` with ``given`` on top."""
    return TrainConfig(**{**ADAPT_DEFAULTS, **given})
