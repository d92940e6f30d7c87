"""The hint branch: the user's color hints, spread over the picture and given to the decoder's last features.

Hints come as three channels at the network's input size (a/110, b/110 at hinted pixels and a
mask; ``guidance.hints.rasterize``). They enter after the decoder, beside its last features
(1/2 of the input, just before the head), not the encoder: the VGG16 encoder and the decoder are
untouched, their outputs (cached while training) stay valid, and the int8 encoder's cost is not
changed. Two things reach that level:

* the hints themselves, pooled to 1/2 (the mean hint color of a 2x2 cell, and whether it holds
  one), so the color at a hinted pixel is followed;
* a spread of them over the whole picture: every 1/8 cell takes a weighted mean of the hinted
  1/16 cells' colors, weighted by how alike their encoder features are (a learned projection of
  VGG stage 4) and how near they are, with a learned "no hint applies" slot whose weight gives a
  confidence. The decoder's own convolutions reach only a few dozen pixels; the spread carries a
  hint to the rest of its region, and the branch's 3x3 convolutions on the decoder's features
  place it against the edges there.

The branch's output is added to the decoder's features. Its last convolution starts at zero (a
new branch changes nothing until trained) and its output is multiplied by whether the picture has
any hint at all, so a picture without hints is colored by exactly the automatic colorizer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

KEY_CHANNELS = 32
HIDDEN = 16
# Per pixel at 1/2: the decoder's features, pooled a, b and mask, spread a, b and its confidence.
HINT_FEATURES = 6
_OFF = -1e4  # the logit of a cell that holds no hint: exp() underflows to exactly 0


def pool_hints(hints: torch.Tensor, factor: int) -> tuple[torch.Tensor, torch.Tensor]:
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


def _grid(like: torch.Tensor, cell: float) -> torch.Tensor:
    """(N, 2, h, w) cell-center coordinates in input pixels / 256 (cells of ``cell`` pixels), from
    tensor ops only, so the ONNX graph keeps a dynamic height and width."""
    ones = torch.ones_like(like[:, :1])
    ys = torch.cumsum(ones, 2) - 0.5
    xs = torch.cumsum(ones, 3) - 0.5
    return torch.cat([ys, xs], 1) * (cell / 256.0)


class HintBranch(nn.Module):
    """Hints (N, 3, H, W), encoder stage 4 (1/8) and the decoder's last features (1/2) -> a term
    added to those features."""

    def __init__(self, key_in: int, features: int) -> None:
        super().__init__()
        self.key = nn.Conv2d(key_in, KEY_CHANNELS, 1)
        # Similarity sharpness, the distance penalty (softplus) and the "no hint applies" logit.
        self.sharpness = nn.Parameter(torch.tensor(10.0))
        self.distance = nn.Parameter(torch.tensor(1.0))
        self.null_logit = nn.Parameter(torch.tensor(0.0))
        self.refine = nn.Sequential(
            nn.Conv2d(features + HINT_FEATURES, HIDDEN, 3, padding=1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(HIDDEN, HIDDEN, 3, padding=1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(HIDDEN, features, 1, bias=False),
        )
        nn.init.zeros_(self.refine[-1].weight)

    def spread(self, hints: torch.Tensor, f4: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The hints spread over the 1/8 grid: ab (N, 2, h, w) and confidence (N, 1, h, w)."""
        ab, present = pool_hints(hints, 16)  # keys: the 1/16 cells
        proj = self.key(f4)
        n, _, h, w = proj.shape
        query = F.normalize(proj, dim=1).flatten(2)  # (N, K, P)
        key = F.normalize(F.avg_pool2d(proj, 2), dim=1).flatten(2)  # (N, K, Q)
        qpos, kpos = _grid(proj, 8.0).flatten(2), _grid(ab, 16.0).flatten(2)
        dist2 = (
            (qpos * qpos).sum(1).unsqueeze(2)
            + (kpos * kpos).sum(1).unsqueeze(1)
            - 2 * torch.bmm(qpos.transpose(1, 2), kpos)
        )
        logits = self.sharpness * torch.bmm(query.transpose(1, 2), key) - F.softplus(self.distance) * dist2
        logits = logits + (1 - present.flatten(2)) * _OFF  # (N, P, Q): only hinted cells count
        null = self.null_logit.expand(n, logits.shape[1], 1)
        weights = torch.softmax(torch.cat([null, logits], 2), dim=2)
        spread = torch.bmm(weights[:, :, 1:], ab.flatten(2).transpose(1, 2))  # (N, P, 2)
        conf = 1 - weights[:, :, :1]
        return spread.transpose(1, 2).reshape(n, 2, h, w), conf.transpose(1, 2).reshape(n, 1, h, w)

    def forward(self, hints: torch.Tensor, f4: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The term (N, C, H/2, W/2) to add to the decoder's last features ``y``."""
        spread, conf = self.spread(hints, f4)
        coarse = F.interpolate(torch.cat([spread, conf], 1), scale_factor=4.0, mode="bilinear")
        ab, present = pool_hints(hints, 2)
        delta = self.refine(torch.cat([y, ab * present, present, coarse], 1))
        any_hint = hints[:, 2:3].amax(dim=(2, 3), keepdim=True)  # exactly 0 for a picture without hints
        return delta * any_hint
