"""ColorizerNet: a VGG16 encoder and a light decoder that predicts ab from L.

The encoder is torchvision's ``vgg16().features`` (its 13 conv layers; the final max-pool is not
used) with a 1-channel first conv. The decoder walks back up with skip connections from the VGG
stages and stops at half the input resolution: chroma is low-frequency, so ab is predicted small
and the full-resolution detail comes from the original L when the colorizer recombines them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import vgg16

# Indices into vgg16().features where each stage ends (after its last ReLU).
_STAGE_ENDS = (4, 9, 16, 23, 30)
_STAGE_CHANNELS = (64, 128, 256, 512, 512)
# Four max-pools sit between the five stages used, so the input must be a multiple of 16.
STRIDE = 16
# How a binned head's distribution becomes one ab (ModelConfig.estimator).
ESTIMATORS = ("mean", "median")
# Hint input channels: a/110, b/110 (zero where not hinted) and the mask.
HINT_CHANNELS = 3


@dataclass(frozen=True)
class Readout:
    """How a binned head's distribution becomes one ab: its temperature and estimator. A network
    reads out as its config says; a caller that sweeps them (calibration) passes its own, so the
    network it was given is never changed behind anyone's back."""

    temperature: float
    estimator: str = "mean"


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a ColorizerNet; stored in every checkpoint. Frozen: a new
    setting is a new config (``dataclasses.replace``)."""

    arch: str = "vgg16-unet"
    decoder_channels: tuple[int, int, int] = (128, 64, 32)
    skip_channels: tuple[int, int, int, int] = (128, 128, 64, 32)
    ab_scale: int = 2  # ab comes out at 1/ab_scale of the input resolution
    dropout: float = 0.1  # decoder Dropout2d while training: the default model sees only ~45 photos
    # 0: the head predicts ab itself. N > 0: it predicts a distribution over an N x N grid of ab
    # values (see bin_centers) and the network outputs one ab from it at ``temperature``.
    ab_bins: int = 0
    temperature: float = 0.38  # 1: the distribution's mean; lower: nearer its mode (more vivid)
    # How the tempered distribution becomes one color: "mean" (its mean: least squared error) or
    # "median" (a's and b's medians: least absolute error, not pulled by a tail of unlikely hues).
    estimator: str = "mean"
    # 0: L only. 3: the network also takes hint channels (a/110, b/110 at hinted pixels, and their
    # mask; see ``guidance.hints.rasterize``), which enter beside the decoder's last features.
    hint_channels: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for key in ("decoder_channels", "skip_channels"):
            if key in known:
                known[key] = tuple(known[key])
        cfg = cls(**known)
        if cfg.arch not in ARCHS:
            raise ValueError(f"unknown model arch {cfg.arch!r}; this version knows {', '.join(map(repr, ARCHS))}")
        if cfg.ab_scale != 2:
            raise ValueError(f"ab_scale {cfg.ab_scale} is not supported (only 2)")
        if cfg.ab_bins < 0 or cfg.ab_bins == 1 or not cfg.temperature > 0:
            raise ValueError(f"ab_bins {cfg.ab_bins} / temperature {cfg.temperature}: need 0 or >= 2 bins, T > 0")
        if cfg.hint_channels not in (0, HINT_CHANNELS):
            raise ValueError(f"hint_channels {cfg.hint_channels}: this version knows 0 or {HINT_CHANNELS}")
        if cfg.estimator not in ESTIMATORS:
            raise ValueError(f"estimator {cfg.estimator!r}: this version knows {', '.join(map(repr, ESTIMATORS))}")
        return cfg


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.ReLU(inplace=True),
    )


class ColorizerNet(nn.Module):
    """L (N, 1, H, W) in [0, 1] -> normalized ab (N, 2, ceil(H/2), ceil(W/2)).

    ``logits=True`` (training a binned head): the per-bin logits (N, ab_bins**2, ...) instead.
    With ``hint_channels`` the network also takes ``hints`` (N, 3, H, W): a/110, b/110 and a mask;
    ``hints=None`` (or an all-zero mask) is the automatic colorizer, exactly (``hint_branch.py``).
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        features = vgg16(weights=None).features
        features[0] = nn.Conv2d(1, 64, 3, padding=1)
        starts = (0,) + _STAGE_ENDS[:-1]
        self.encoder = nn.ModuleList(features[s:e] for s, e in zip(starts, _STAGE_ENDS, strict=True))

        s5, s4, s3, s2 = self.config.skip_channels
        d4, d3, d2 = self.config.decoder_channels
        # 1x1 laterals shrink the wide VGG features before they are concatenated: the decoder stays
        # small (about 1M parameters) so the fp16 checkpoint fits in 40 MB with the full encoder.
        self.lateral = nn.ModuleList(
            [
                nn.Conv2d(_STAGE_CHANNELS[4], s5, 1),
                nn.Conv2d(_STAGE_CHANNELS[3], s4, 1),
                nn.Conv2d(_STAGE_CHANNELS[2], s3, 1),
                nn.Conv2d(_STAGE_CHANNELS[1], s2, 1),
            ]
        )
        self.up4 = _block(s5 + s4, d4)
        self.up3 = _block(d4 + s3, d3)
        self.up2 = _block(d3 + s2, d2)
        self.head = nn.Conv2d(d2, self.config.ab_bins**2 if self.config.ab_bins else 2, 1)
        self.drop = nn.Dropout2d(self.config.dropout)
        self.hints = None
        if self.config.hint_channels:
            from .hint_branch import HintBranch

            self.hints = HintBranch(_STAGE_CHANNELS[3], d2)

    def encoder_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.encoder.parameters()]

    def decoder_parameters(self) -> list[nn.Parameter]:
        enc = {id(p) for p in self.encoder.parameters()}
        return [p for p in self.parameters() if id(p) not in enc]

    @property
    def readout(self) -> Readout:
        """The network's own readout, as its config says."""
        return Readout(self.config.temperature, self.config.estimator)

    def forward(
        self,
        lum: torch.Tensor,
        logits: bool = False,
        hints: torch.Tensor | None = None,
        readout: Readout | None = None,
    ) -> torch.Tensor:
        h, w = lum.shape[-2:]
        pad_h, pad_w = (-h) % STRIDE, (-w) % STRIDE
        if pad_h or pad_w:
            # Replicate rather than zero: a black border would read as a dark object.
            lum = F.pad(lum, (0, pad_w, 0, pad_h), mode="replicate")
            if hints is not None:  # no hints in the border
                hints = F.pad(hints, (0, pad_w, 0, pad_h))
        ab = self.forward_aligned(lum, logits, hints, readout)
        if pad_h or pad_w:
            ab = ab[..., : (h + 1) // 2, : (w + 1) // 2]
        return ab

    def forward_aligned(
        self,
        lum: torch.Tensor,
        logits: bool = False,
        hints: torch.Tensor | None = None,
        readout: Readout | None = None,
    ) -> torch.Tensor:
        """The network proper, for H and W already multiples of 16 (what ONNX export traces)."""
        return self.decode(self.encode(lum), logits, hints, readout)

    def forward_with_bins(self, lum: torch.Tensor, hints: torch.Tensor | None = None):
        """A binned head's ab and its tempered per-pixel distribution (N, H/2, W/2, ab_bins**2),
        channels-last as ``binned_ab`` computes it, both with the hints blended in (the exported
        graph's second output: the editor's suggested colors). H and W multiples of 16."""
        feats = self.encode(lum)
        y = self.decode_features(feats)
        c = self.config
        ab, p = binned_ab(y, self.head, c.ab_bins, c.temperature, c.estimator, with_probabilities=True)
        if hints is None or self.hints is None:
            return ab, p
        from .hint_branch import soft_onehot

        ab, gate, target = self.hints(hints, feats[3], y, ab)
        g = gate.permute(0, 2, 3, 1)
        return ab, p + g * (soft_onehot(target, c.ab_bins, BIN_RANGE) - p)

    def encode(self, x: torch.Tensor, start: int = 0) -> list[torch.Tensor]:
        """Outputs of the VGG stages ``start``..4 run on ``x`` (L, or the output of stage ``start - 1``).

        Training with the first stages frozen caches their outputs once and resumes here.
        """
        feats = []
        for stage in self.encoder[start:]:
            x = stage(x)
            feats.append(x)
        return feats

    def decode(
        self,
        feats: list[torch.Tensor | None],
        logits: bool = False,
        hints: torch.Tensor | None = None,
        readout: Readout | None = None,
    ) -> torch.Tensor:
        """The five stage outputs (the first is unused and may be None) -> normalized ab.

        With ``ab_bins`` and ``logits``, the head's per-bin logits instead (what training scores;
        hints are not applied to logits). ``hints`` (N, 3, H, W) at the input's size, for a
        network with ``hint_channels`` (``hint_branch.py``). ``readout``: a binned head's
        temperature and estimator (default: the config's).
        """
        y = self.decode_features(feats)
        if logits and self.config.ab_bins:
            return self.head(y)
        if self.config.ab_bins:
            r = readout or self.readout
            ab = binned_ab(y, self.head, self.config.ab_bins, r.temperature, r.estimator)
        else:
            ab = self.head(y)
        return self.add_hints(ab, y, feats[3], hints)

    def decode_features(self, feats: list[torch.Tensor | None]) -> torch.Tensor:
        """The decoder up to the head: (N, decoder_channels[-1], H/2, W/2)."""
        _, f2, f3, f4, f5 = feats
        y = self.lateral[0](f5)
        y = self.drop(self.up4(torch.cat([_up(y), self.lateral[1](f4)], 1)))
        y = self.drop(self.up3(torch.cat([_up(y), self.lateral[2](f3)], 1)))
        return self.up2(torch.cat([_up(y), self.lateral[3](f2)], 1))

    def add_hints(
        self, ab: torch.Tensor, y: torch.Tensor, f4: torch.Tensor, hints: torch.Tensor | None
    ) -> torch.Tensor:
        """The network's ``ab`` with the hints blended in (``hint_branch``), from the decoder's last
        features ``y`` and encoder stage 4: what training from cached features resumes. Without
        hints (or without a branch), ``ab``."""
        if hints is None or self.hints is None:
            return ab
        return self.hints(hints, f4, y, ab)[0]


# The ab grid of a binned head: normalized a and b each from -BIN_RANGE to +BIN_RANGE (ab / 110;
# sRGB's gamut in Lab spans about -0.78..+0.89 in a and -0.98..+0.86 in b). 21 bins a side put
# them 11 ab units apart with one at neutral.
BIN_RANGE = 1.0


def bin_centers(n: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(n*n, 2) normalized (a, b) of the bins; bin ``i * n + j`` is (a_i, b_j)."""
    axis = torch.linspace(-BIN_RANGE, BIN_RANGE, n, device=device, dtype=dtype)
    a, b = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([a.reshape(-1), b.reshape(-1)], 1)


def annealed_mean(logits: torch.Tensor, n: int, temperature: float) -> torch.Tensor:
    """(N, n*n, H, W) bin logits -> (N, 2, H, W) ab: the mean of softmax(logits / T).

    T = 1 is the distribution's mean (what a squared error learns: a compromise between hues, often
    brown); T -> 0 its mode (vivid, and wrong where two hues are equally likely); between, the
    color commits where the network is sure and stays near neutral where it is not (Zhang et al.,
    "Colorful Image Colorization", 2016). The definition; the network runs it as ``binned_ab``.
    """
    p = torch.softmax(logits / temperature, dim=1)
    return torch.einsum("nqhw,qc->nchw", p, bin_centers(n, device=logits.device, dtype=logits.dtype))


def marginal_median(p: torch.Tensor) -> torch.Tensor:
    """(..., n) probabilities of the n values of one axis of the bin grid -> (...,) their median,
    normalized, with each bin's mass spread evenly over its own width (a histogram): a single
    bin's median is its center, two equal neighbors' the midpoint between them.

    Term k of the sum is the share of bin k's width that lies below the median: 1 while the CDF
    after bin k is still under 1/2, 0 once the CDF before it is past 1/2, a fraction in the bin
    where it crosses. Element-wise ops, a sum and a cumulative sum: cheap, and exportable.
    """
    n = p.shape[-1]
    step = 2 * BIN_RANGE / (n - 1)
    before = torch.cumsum(p, dim=-1) - p
    inside = ((0.5 - before) / p.clamp_min(1e-6)).clamp(0, 1)
    return inside.sum(-1) * step - (BIN_RANGE + step / 2)


def binned_median(logits: torch.Tensor, n: int, temperature: float) -> torch.Tensor:
    """(N, n*n, H, W) bin logits -> (N, 2, H, W) ab: the medians of a and b under softmax(logits / T).

    The mean (``annealed_mean``) minimizes the expected squared ab error; the per-channel median
    minimizes the expected absolute error in a and in b, which is nearer to a perceptual distance
    such as CIEDE2000 than a squared one, and a thin tail of vivid, unlikely hues does not pull it.
    The definition; the network runs it as ``binned_ab(..., estimator="median")``.
    """
    p = torch.softmax(logits / temperature, dim=1)
    grid = p.reshape(p.shape[0], n, n, *p.shape[2:])  # bin i * n + j is (a_i, b_j)
    a = marginal_median(grid.sum(2).movedim(1, -1))
    b = marginal_median(grid.sum(1).movedim(1, -1))
    return torch.stack([a, b], 1)


def binned_ab(
    features: torch.Tensor,
    head: nn.Conv2d,
    n: int,
    temperature: float,
    estimator: str = "mean",
    with_probabilities: bool = False,
):
    """``annealed_mean(head(features), n, temperature)`` (or ``binned_median``), computed
    channels-last for speed.

    ONNX Runtime's Softmax over the channel axis of an NCHW tensor took 49-54 ms for 441 bins at
    72x128 on this project's CPU; over the last axis, 6 ms; transposing the 32 input channels
    instead of the 441 logits, 3 ms (the benchmark is in the experiment log). The 1x1 head becomes a MatMul with 1/T
    folded into its weights (constants in the exported graph); the result equals annealed_mean's to float error.
    ``with_probabilities``: also the tempered distribution ``p`` (N, H, W, n*n), channels-last.
    """
    f = features.permute(0, 2, 3, 1)
    z = F.linear(f, head.weight.flatten(1) / temperature, head.bias / temperature)
    p = torch.softmax(z, dim=-1)
    if estimator == "median":
        grid = p.unflatten(-1, (n, n))  # (N, H, W, a, b)
        ab = torch.stack([marginal_median(grid.sum(-1)), marginal_median(grid.sum(-2))], 1)
    else:
        ab = (p @ bin_centers(n, device=features.device, dtype=features.dtype)).permute(0, 3, 1, 2)
    return (ab, p) if with_probabilities else ab


def soft_bins(ab: torch.Tensor, n: int) -> torch.Tensor:
    """(N, 2, H, W) normalized ab -> (N, n*n, H, W) target distribution: each pixel's weight split
    bilinearly over the four bins around it, so the target's mean is the pixel's ab exactly (within
    the grid; outside it, the nearest edge)."""
    step = 2 * BIN_RANGE / (n - 1)
    u = ((ab + BIN_RANGE) / step).clamp(0, n - 1)
    i0 = u.floor().clamp(max=n - 2)
    frac = u - i0
    i0 = i0.long()
    out = torch.zeros(ab.shape[0], n * n, *ab.shape[2:], dtype=ab.dtype, device=ab.device)
    for da in (0, 1):
        wa = frac[:, 0] if da else 1 - frac[:, 0]
        for db in (0, 1):
            wb = frac[:, 1] if db else 1 - frac[:, 1]
            idx = (i0[:, 0] + da) * n + (i0[:, 1] + db)
            out.scatter_add_(1, idx.unsqueeze(1), (wa * wb).unsqueeze(1))
    return out


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


# The one place that knows the architectures: a new one is a class here and a row in this table.
ARCHS: dict[str, type[nn.Module]] = {"vgg16-unet": ColorizerNet}


def build_model(config: ModelConfig | None = None) -> nn.Module:
    """The network ``config`` describes (the default ColorizerNet when None), randomly initialized."""
    config = config or ModelConfig()
    if config.arch not in ARCHS:
        raise ValueError(f"unknown model arch {config.arch!r}; this version knows {', '.join(map(repr, ARCHS))}")
    return ARCHS[config.arch](config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
