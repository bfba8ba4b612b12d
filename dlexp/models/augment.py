"""Image augmentation on the training batches, on the device: one random affine warp per image.

A shift of up to `shift` of the side (a random crop of the image padded by its border), a horizontal flip
with probability 1/2 and a rotation of up to `degrees`, composed into one 2x3 matrix per image and applied
with a single `grid_sample` over the batch: no per-image Python, no copies of the training set. The random
draws come from a CPU generator the caller seeds (from the seed and the epoch), so a run is repeatable.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def random_affine(x: torch.Tensor, generator: torch.Generator, *, shift: float = 0.125, flip: bool = True,
                  degrees: float = 10.0) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H, W), each image warped at random."""
    b = x.shape[0]

    def uniform():  # (B,) in [-1, 1]
        return torch.rand(b, generator=generator) * 2 - 1

    angle = uniform() * math.radians(degrees)
    tx, ty = uniform() * 2 * shift, uniform() * 2 * shift  # affine_grid's coordinates span 2 per side
    sign = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0) if flip else torch.ones(b)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos * sign, -sin, tx], 1), torch.stack([sin * sign, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(device=x.device, dtype=x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
