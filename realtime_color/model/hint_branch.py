"""The hint branch: the user's color hints, spread and fed beside the decoder's skip features.

Hints come as three channels at the network's input size (a/110, b/110 at hinted pixels and a
mask; ``guidance.hints.rasterize``). They enter the decoder, not the encoder, so the VGG16 encoder
is untouched: its features (cached while training) stay valid, and the cost on the int8 encoder
is nil. Two things reach each skip level (1/16, 1/8, 1/4, 1/2 of the input):

* the hints themselves, pooled to that level (the mean hint color of a cell, and whether the cell
  holds one), so the color at a hinted pixel is followed;
* a spread of them over the whole picture: every 1/16 cell takes a weighted mean of the hinted
  cells' colors, weighted by how alike their encoder features are (a learned projection of VGG
  stage 4) and how near they are, with a learned "no hint applies" slot; its weight gives a
  confidence. The decoder's own convolutions reach only a few dozen pixels, so without the spread
  a hint could not color the rest of its region.

Each level's features go through a small convolution stack without biases whose last weights
start at zero: a new branch changes nothing until trained, and an empty mask adds exactly zero,
so the network with no hints is the automatic colorizer exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Per level: pooled a, b, mask; spread a, b and its confidence.
LEVEL_FEATURES = 6
KEY_CHANNELS = 32
HIDDEN = 16
# The skip levels, coarsest first, as input-size divisors (the decoder's lateral outputs).
LEVEL_FACTORS = (16, 8, 4, 2)
_OFF = -1e4  # the logit of a cell that holds no hint: exp() underflows to exactly 0


def _pool_hints(hints: torch.Tensor, factor: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, H, W) -> mean hint ab over each factor x factor cell (N, 2, ...) and presence (N, 1, ...)."""
    mask = hints[:, 2:3]
    ab = hints[:, :2] * mask
    if factor > 1:
        ab = F.avg_pool2d(ab, factor)
        weight = F.avg_pool2d(mask, factor)
        present = F.max_pool2d(mask, factor)
    else:
        weight = present = mask
    return ab / weight.clamp_min(1e-6), present


def _grid(like: torch.Tensor) -> torch.Tensor:
    """(N, 2, h, w) cell coordinates in units of the long side, from tensor ops only, so the ONNX
    graph keeps a dynamic height and width."""
    ones = torch.ones_like(like[:, :1])
    ys = torch.cumsum(ones, 2) - 1
    xs = torch.cumsum(ones, 3) - 1
    long_side = torch.maximum(ys.amax(dim=(1, 2, 3), keepdim=True), xs.amax(dim=(1, 2, 3), keepdim=True)) + 1
    return torch.cat([ys, xs], 1) / long_side


class HintBranch(nn.Module):
    """Hints (N, 3, H, W) and encoder stage-4 features -> one additive term per decoder skip."""

    def __init__(self, key_in: int, skip_channels: tuple[int, ...]) -> None:
        super().__init__()
        self.key = nn.Conv2d(key_in, KEY_CHANNELS, 1)
        # Similarity sharpness and distance penalty (softplus), and the "no hint applies" logit.
        self.sharpness = nn.Parameter(torch.tensor(10.0))
        self.distance = nn.Parameter(torch.tensor(2.0))
        self.null_logit = nn.Parameter(torch.tensor(0.0))
        self.levels = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(LEVEL_FEATURES, HIDDEN, 3, padding=1, bias=False),
                nn.ReLU(inplace=True),
                nn.Conv2d(HIDDEN, c, 3, padding=1, bias=False),
            )
            for c in skip_channels
        )
        for level in self.levels:
            nn.init.zeros_(level[-1].weight)

    def spread(self, hints: torch.Tensor, f4: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The hints spread over the 1/16 grid: ab (N, 2, h, w) and confidence (N, 1, h, w)."""
        ab, present = _pool_hints(hints, 16)
        n, _, h, w = ab.shape
        key = F.normalize(self.key(F.avg_pool2d(f4, 2)), dim=1).flatten(2)  # (N, K, P)
        pos = _grid(ab).flatten(2)  # (N, 2, P)
        sq = (pos * pos).sum(1)  # (N, P)
        dist2 = sq.unsqueeze(2) + sq.unsqueeze(1) - 2 * torch.bmm(pos.transpose(1, 2), pos)
        logits = self.sharpness * torch.bmm(key.transpose(1, 2), key) - F.softplus(self.distance) * dist2
        logits = logits + (1 - present.flatten(2)) * _OFF  # (N, P query, Q key): only hinted keys count
        null = self.null_logit.expand(n, logits.shape[1], 1)
        weights = torch.softmax(torch.cat([null, logits], 2), dim=2)
        spread = torch.bmm(weights[:, :, 1:], ab.flatten(2).transpose(1, 2))  # (N, P, 2)
        conf = 1 - weights[:, :, :1]
        return spread.transpose(1, 2).reshape(n, 2, h, w), conf.transpose(1, 2).reshape(n, 1, h, w)

    def forward(self, hints: torch.Tensor, f4: torch.Tensor) -> list[torch.Tensor]:
        """One term (N, C_skip, H / factor, W / factor) per skip level, coarsest first."""
        spread, conf = self.spread(hints, f4)
        coarse = torch.cat([spread, conf], 1)
        out = []
        for factor, level in zip(LEVEL_FACTORS, self.levels, strict=True):
            ab, present = _pool_hints(hints, factor)
            up = coarse if factor == 16 else F.interpolate(coarse, scale_factor=16 // factor, mode="bilinear")
            out.append(level(torch.cat([ab * present, present, up], 1)))
        return out
