"""What a network is fitted with, in training and in adapting: the losses and the learning-rate
schedule, and one optimizer step."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..model.network import soft_bins


def chroma_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Penalize predicted chroma that is weaker than the truth's (hinge on |ab|).

    A plain L1/Huber loss on ab is minimized by the conditional median, which for ambiguous
    objects (a shirt could be red or blue) is near gray: the washed-out sepia look. This term
    pays only for missing saturation, not for hue, so it pushes the model to commit to a color.
    """
    c_pred = pred.pow(2).sum(1).add(1e-6).sqrt()
    c_true = target.pow(2).sum(1).add(1e-6).sqrt()
    return F.relu(c_true - c_pred).mean()


def ab_loss(pred: torch.Tensor, target: torch.Tensor, loss: str = "mse", chroma_weight: float = 0.0) -> torch.Tensor:
    """The ``loss`` (mse, huber or l1) on ab, plus ``chroma_weight`` times ``chroma_loss``."""
    if loss == "mse":
        base = F.mse_loss(pred, target)
    elif loss == "huber":
        base = F.smooth_l1_loss(pred, target, beta=0.05)
    elif loss == "l1":
        base = F.l1_loss(pred, target)
    else:
        raise ValueError(f"unknown loss {loss!r}; use 'mse', 'huber' or 'l1'")
    if chroma_weight:
        base = base + chroma_weight * chroma_loss(pred, target)
    return base


def bins_loss(logits: torch.Tensor, ab: torch.Tensor, n: int, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of the predicted bin distribution against each pixel's soft-binned ab; with
    ``weights`` (one per bin, ``rebalance_weights``) each pixel's term is weighted by its color's."""
    target = soft_bins(ab, n)
    ce = -(target * F.log_softmax(logits, dim=1)).sum(1)
    if weights is not None:
        ce = ce * torch.einsum("nqhw,q->nhw", target, weights.to(ce))
    return ce.mean()


def bin_prior(ab: torch.Tensor, n: int, chunk: int = 32) -> torch.Tensor:
    """(n*n,) how often each bin is a pixel's color in ``ab`` (N, 2, H, W), soft-binned, then
    smoothed over the grid by a Gaussian of half a bin (Zhang et al. smooth by 5 ab units on a
    10-unit grid; the bins here are 11 apart)."""
    total = torch.zeros(n * n, dtype=torch.float64)
    for i in range(0, len(ab), chunk):  # soft_bins is (chunk, n*n, H, W): keep it small
        total += soft_bins(ab[i : i + chunk].float(), n).sum((0, 2, 3)).double()
    k = torch.exp(-0.5 * (torch.arange(-2, 3, dtype=torch.float64) / 0.5) ** 2)
    k = (k / k.sum()).float()
    grid = (total / total.sum()).float().view(1, 1, n, n)
    grid = F.conv2d(F.pad(grid, (2, 2, 0, 0), mode="replicate"), k.view(1, 1, 1, 5))
    grid = F.conv2d(F.pad(grid, (0, 0, 2, 2), mode="replicate"), k.view(1, 1, 5, 1))
    return (grid / grid.sum()).flatten()


def rebalance_weights(prior: torch.Tensor, mix: float) -> torch.Tensor:
    """Per-bin loss weights that make rare colors count (Zhang et al., "Colorful Image
    Colorization", 2016): w proportional to 1 / ((1 - mix) * prior + mix / Q), scaled so that the
    expected weight of a pixel is 1. Without it the cross-entropy is dominated by the common,
    desaturated colors (skies, walls, roads) and the network learns to hedge toward them; mix 1
    weights every color alike (no rebalancing), mix 0 inverts the prior entirely."""
    w = 1.0 / ((1 - mix) * prior + mix / prior.numel())
    return w / (prior * w).sum()


def fit_loss(
    pred: torch.Tensor,
    ab: torch.Tensor,
    ab_bins: int = 0,
    loss: str = "mse",
    chroma_weight: float = 0.0,
    bin_weights: torch.Tensor | None = None,
):
    """What a network is fitted with (training and adapting): with ``ab_bins``, ``pred`` are the bin
    logits (``model(lum, logits=True)``) and the loss is their cross-entropy (weighted per color by
    ``bin_weights`` where given); else ``loss`` on ab."""
    if ab_bins:
        return bins_loss(pred, ab, ab_bins, bin_weights)
    return ab_loss(pred, ab, loss, chroma_weight)


def lr_at(step: int, total: int, base: float, warmup: int, time_fraction: float = 0.0) -> float:
    """Linear warmup then cosine decay to 5% of ``base``.

    With a time budget the decay follows whichever is further along, steps or time, so a run cut
    short by ``--max-minutes`` still ends at a low learning rate.
    """
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, max((step - warmup) / max(1, total - warmup), time_fraction))
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def optimizer_step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> float:
    """One step on ``loss``; returns its value (a CPU-GPU sync point, once a step)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()
