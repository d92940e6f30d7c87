"""The hint branch: the user's color hints, spread over the picture by what the network sees, blended into its colors.

Hints come as three channels at the network's input size (a/110, b/110 at hinted pixels and a
mask; ``guidance.hints.rasterize``). The branch works at the output's resolution (1/2 of the
input), after the head, and leaves the encoder, the decoder and the head untouched (their
outputs, cached while training, stay valid; the int8 encoder's cost is not changed):

1. **Spread.** Each output pixel takes a weighted mean of the hints' colors. The weights compare
   a learned embedding of what the network sees there (the decoder's last features and a
   projection of VGG stage 4) with the same embedding at the hints, and penalize distance; a
   learned "no hint applies" slot takes the rest, and one minus its weight is the spread's
   confidence. Hints are gathered per 1/16 cell (mean color, mean embedding, mean position of the
   hinted pixels in it), so the cost is pixels x cells, not pixels x pixels.
2. **Blend.** A small convolutional gate on the decoder's features, the spread and its confidence
   says how far to trust the spread against the network's own color:
   ``ab = ab_net + gate * (spread - ab_net)``, ``gate = confidence * sigmoid(conv(...))``.
3. At hinted pixels the hint's own color is used.

A picture without hints has confidence exactly 0 everywhere (every cell's logit is -1e4, whose
exp() underflows to 0), so its colors are the automatic colorizer's, exactly. The binned head's
distribution (the editor's suggestions) is blended the same way, with the spread's color as a
bilinear split over the four bins around it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EMBED = 16
F4_CHANNELS = 16
HIDDEN = 16
CELL = 8  # hints are gathered per 8x8 cell of the 1/2-resolution output: 1/16 of the input
_OFF = -1e4  # the logit of a cell that holds no hint: exp() underflows to exactly 0
# A cell without hints has a zero mean embedding; normalizing it with the default eps (1e-12, zero in
# fp16) would divide 0 by 0 in an fp16 export. Unit vectors' norms are far above this.
_EPS = 1e-4


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


def _grid(like: torch.Tensor) -> torch.Tensor:
    """(N, 2, h, w) pixel-center coordinates of the 1/2-resolution output, in input pixels / 256,
    from tensor ops only, so the ONNX graph keeps a dynamic height and width."""
    ones = torch.ones_like(like[:, :1])
    return torch.cat([torch.cumsum(ones, 2) - 0.5, torch.cumsum(ones, 3) - 0.5], 1) * (2.0 / 256.0)


def _masked_mean(x: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x * mask, CELL) / weight


def soft_onehot(ab: torch.Tensor, n: int, bin_range: float = 1.0) -> torch.Tensor:
    """(N, 2, h, w) normalized ab -> (N, h, w, n*n): each pixel's weight split bilinearly over the
    four bins around it (bin ``i * n + j`` is (a_i, b_j)), from element-wise ops only (exportable)."""
    step = 2 * bin_range / (n - 1)
    centers = torch.linspace(-bin_range, bin_range, n, device=ab.device, dtype=ab.dtype)
    u = ab.clamp(-bin_range, bin_range).permute(0, 2, 3, 1).unsqueeze(-1)  # (N, h, w, 2, 1)
    w = (1 - (u - centers).abs() / step).clamp_min(0)  # (N, h, w, 2, n)
    return (w[..., 0, :].unsqueeze(-1) * w[..., 1, :].unsqueeze(-2)).flatten(-2)


class HintBranch(nn.Module):
    """Hints (N, 3, H, W), encoder stage 4 (1/8), the decoder's last features and the network's ab
    (1/2) -> the hinted ab and the blend weight (``gate``)."""

    def __init__(self, key_in: int, features: int) -> None:
        super().__init__()
        self.f4 = nn.Conv2d(key_in, F4_CHANNELS, 1)
        self.embed = nn.Conv2d(features + F4_CHANNELS, EMBED, 1)
        # Similarity sharpness, the distance penalty (softplus) and the "no hint applies" logit.
        self.sharpness = nn.Parameter(torch.tensor(8.0))
        self.distance = nn.Parameter(torch.tensor(2.0))
        self.null_logit = nn.Parameter(torch.tensor(0.0))
        self.gate = nn.Sequential(
            nn.Conv2d(features + 4, HIDDEN, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(HIDDEN, 1, 3, padding=1),
        )
        nn.init.zeros_(self.gate[-1].weight)
        nn.init.constant_(self.gate[-1].bias, 2.0)  # start by trusting the spread where it is confident

    def spread(self, hints: torch.Tensor, f4: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The hints spread over the output grid: ab (N, 2, h, w) and confidence (N, 1, h, w)."""
        ab2, m2 = pool_hints(hints, 2)
        up = F.interpolate(self.f4(f4), scale_factor=4.0, mode="bilinear")
        emb = F.normalize(self.embed(torch.cat([y, up], 1)), dim=1, eps=_EPS)
        pos = _grid(y)
        weight = F.avg_pool2d(m2, CELL).clamp_min(1e-6)
        present = F.max_pool2d(m2, CELL)
        key = F.normalize(_masked_mean(emb, m2, weight), dim=1, eps=_EPS).flatten(2)  # (N, E, Q): at the hints
        kab = _masked_mean(ab2 * m2, m2, weight).flatten(2)  # (N, 2, Q)
        kpos = _masked_mean(pos, m2, weight).flatten(2)
        n, _, h, w = emb.shape
        query, qpos = emb.flatten(2), pos.flatten(2)  # (N, E, P), (N, 2, P)
        dist2 = (
            (qpos * qpos).sum(1).unsqueeze(2)
            + (kpos * kpos).sum(1).unsqueeze(1)
            - 2 * torch.bmm(qpos.transpose(1, 2), kpos)
        )
        logits = self.sharpness * torch.bmm(query.transpose(1, 2), key) - F.softplus(self.distance) * dist2
        logits = logits + (1 - present.flatten(2)) * _OFF  # (N, P, Q): only hinted cells count
        null = self.null_logit.expand(n, logits.shape[1], 1)
        weights = torch.softmax(torch.cat([null, logits], 2), dim=2)
        spread = torch.bmm(weights[:, :, 1:], kab.transpose(1, 2))  # (N, P, 2)
        conf = 1 - weights[:, :, :1]
        return spread.transpose(1, 2).reshape(n, 2, h, w), conf.transpose(1, 2).reshape(n, 1, h, w)

    def forward(self, hints: torch.Tensor, f4: torch.Tensor, y: torch.Tensor, ab: torch.Tensor):
        """(hinted ab (N, 2, h, w), gate (N, 1, h, w), spread ab (N, 2, h, w)); ``ab`` the network's own."""
        spread, conf = self.spread(hints, f4, y)
        ab2, m2 = pool_hints(hints, 2)
        gate = conf * torch.sigmoid(self.gate(torch.cat([y, spread, conf, m2], 1)))
        gate = gate + (1 - gate) * m2  # a hinted pixel: the hint
        target = spread + (ab2 - spread) * m2
        return ab + gate * (target - ab), gate, target
