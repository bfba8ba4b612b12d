"""`data.synthesize` (images with a dev folder): training images given dev's conditions, added to training.

Artificial data synthesis for a data mismatch: where the images the model will serve are taken under other
conditions than its training images (out of focus, darker, washed out, another colour cast), copies of
training images given those conditions show the model what it will meet, and their labels still hold: focus
and tone do not change what an image shows. Two conditions are measured on the dev images, pixels only (dev's
labels and every test image stay out):

- focus: the Gaussian blur (scipy.ndimage) that gives the training images the dev images' share of fine
  detail (mean squared difference of neighbouring pixels over the image's variance), from a grid of widths;
- tone: each channel's mean and standard deviation, matched by one affine map per channel.

`data.synthesize` (0 to 1) is the share of training images that get such a copy (1: every one). Train-dev,
dev and test stay as read, so every gap keeps its meaning; error/train is measured on the training set as
trained, copies included. Sharper or noisier dev images than training ones are not synthesised (no blur is
then chosen): the run's check line says which conditions were matched.
"""

from __future__ import annotations

import numpy as np

SIGMAS = np.round(np.arange(0.0, 4.01, 0.25), 2)  # blur widths tried, in pixels
SAMPLE = 256  # training images the blur is chosen on


def detail(x: np.ndarray) -> float:
    """Median over images (n, C, H, W) of their mean squared neighbour difference over their variance:
    lower for blurrier images, unchanged by brightness and contrast.

    >>> sharp = np.tile([0.0, 1.0], 8).reshape(1, 1, 4, 4)
    >>> round(detail(sharp), 2), detail(np.ones((1, 1, 4, 4)))
    (4.0, 0.0)
    """
    dx = np.diff(x, axis=-1) ** 2
    dy = np.diff(x, axis=-2) ** 2
    energy = (dx.mean(axis=(-2, -1)) + dy.mean(axis=(-2, -1))).mean(axis=1)
    var = x.var(axis=(1, 2, 3))
    ok = var > 1e-12
    return float(np.median(energy[ok] / var[ok])) if ok.any() else 0.0


def blur(x: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return x if sigma == 0 else gaussian_filter(x, sigma=(0, 0, sigma, sigma), mode="nearest")


def fit(train_x: np.ndarray, dev_x: np.ndarray, *, seed: int = 0) -> dict:
    """The conditions of the dev images relative to the training ones: {"blur": sigma in pixels, "mean": dev's
    per-channel means, "std": theirs, "train_mean", "train_std": the blurred training images'}."""
    rng = np.random.default_rng(seed)
    sample = train_x[rng.permutation(len(train_x))[:SAMPLE]]
    target = np.log(detail(dev_x) + 1e-12)
    gaps = [abs(np.log(detail(blur(sample, s)) + 1e-12) - target) for s in SIGMAS]
    sigma = float(SIGMAS[int(np.argmin(gaps))])
    blurred = blur(sample, sigma)
    axes = (0, 2, 3)
    return {"blur": sigma, "mean": dev_x.mean(axis=axes), "std": dev_x.std(axis=axes),
            "train_mean": blurred.mean(axis=axes), "train_std": blurred.std(axis=axes)}


def transform(x: np.ndarray, cond: dict) -> np.ndarray:
    """Images (n, C, H, W) in [0, 1] given the fitted conditions: blurred, then each channel's tone mapped."""
    shape = (1, -1, 1, 1)
    scale = np.asarray(cond["std"]) / np.maximum(np.asarray(cond["train_std"]), 1e-6)
    out = (blur(x, cond["blur"]) - np.reshape(cond["train_mean"], shape)) * np.reshape(scale, shape) \
        + np.reshape(cond["mean"], shape)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def add(train_x: np.ndarray, train_y: np.ndarray, dev_x: np.ndarray, share: float, *, seed: int):
    """(images, labels, chosen: the index of each copied training image, stats, one check line): the training
    set followed by dev-like copies of round(share * n) of its images, drawn at random."""
    cond = fit(train_x, dev_x, seed=seed)
    chosen = np.sort(np.random.default_rng(seed).permutation(len(train_x))[: int(round(share * len(train_x)))])
    copies = transform(train_x[chosen], cond)
    brightness = float(np.mean(cond["mean"]) - np.mean(cond["train_mean"]))
    contrast = float(np.mean(cond["std"]) / max(float(np.mean(cond["train_std"])), 1e-6))
    stats = {"synth_added": float(len(chosen)), "synth_blur": cond["blur"], "synth_brightness": brightness,
             "synth_contrast": contrast}
    check = (f"data.synthesize: added {len(chosen)} training images given the dev images' conditions (blur "
             f"{cond['blur']:g} px, brightness {brightness:+.2f}, contrast x{contrast:.2f})")
    return (np.concatenate([train_x, copies]), np.concatenate([train_y, train_y[chosen]]), chosen, stats, check)
