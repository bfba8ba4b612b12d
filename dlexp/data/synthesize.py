"""`data.synthesize` (images with a dev folder): training images given dev's conditions, added to training.

Artificial data synthesis for a data mismatch: where the images the model will serve are taken under other
conditions than its training images (out of focus, grainier, darker, washed out, another colour cast), copies of
training images given those conditions show the model what it will meet, and their labels still hold: focus,
grain and tone do not change what an image shows. Two conditions are measured on the dev images, pixels only
(dev's labels and every test image stay out):

- focus: the Gaussian blur (scipy.ndimage) that gives the training images the dev images' share of fine
  detail (mean squared difference of neighbouring pixels over the image's variance), from a grid of widths;
  where dev has more fine detail than training (a noisier sensor), the Gaussian pixel noise that gives it;
- tone: each channel's mean and standard deviation, matched by one affine map per channel.

`data.synthesize` (0 to 1) is the share of training images that get such a copy (1: every one). Train-dev,
dev and test stay as read, so every gap keeps its meaning; error/train is measured on the training set as
trained, copies included. The run's check line says which conditions were matched; other differences (another
viewpoint, other objects) are not synthesised.
"""

from __future__ import annotations

import numpy as np

SIGMAS = np.round(np.arange(0.0, 4.01, 0.25), 2)  # blur widths tried, in pixels
NOISES = np.round(np.arange(0.0, 0.301, 0.01), 2)  # pixel noise tried (standard deviation, 0-1 scale)
SAMPLE = 256  # training images the blur and noise are chosen on
SAME = 1.15  # fine detail within this factor of training's is the same sensor (two draws of 30 images differ by 5%)


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
    """The conditions of the dev images relative to the training ones: {"blur": sigma in pixels, "noise": the
    standard deviation of pixel noise to add (on the training images' 0-1 scale), "mean": dev's per-channel means,
    "std": theirs, "train_mean", "train_std": those of the blurred and noised training images}."""
    rng = np.random.default_rng(seed)
    sample = train_x[rng.permutation(len(train_x))[:SAMPLE]]
    dev_detail = detail(dev_x)
    target = np.log(dev_detail + 1e-12)

    def gap(x):
        return abs(np.log(detail(x) + 1e-12) - target)

    sigma = float(SIGMAS[int(np.argmin([gap(blur(sample, s)) for s in SIGMAS]))])
    noise, shaped = 0.0, blur(sample, sigma)
    if sigma == 0 and dev_detail > SAME * detail(sample):  # sharper than training: the extra detail is noise
        grain = np.random.default_rng(seed + 1).normal(size=sample.shape).astype(np.float32)
        noise = float(NOISES[int(np.argmin([gap(sample + n * grain) for n in NOISES]))])
        shaped = sample + noise * grain
    axes = (0, 2, 3)
    return {"blur": sigma, "noise": noise, "mean": dev_x.mean(axis=axes), "std": dev_x.std(axis=axes),
            "train_mean": shaped.mean(axis=axes), "train_std": shaped.std(axis=axes)}


def transform(x: np.ndarray, cond: dict, *, seed: int = 0) -> np.ndarray:
    """Images (n, C, H, W) in [0, 1] given the fitted conditions: blurred, noised, then each channel's tone mapped."""
    shape = (1, -1, 1, 1)
    x = blur(x, cond["blur"])
    if cond.get("noise"):
        x = x + cond["noise"] * np.random.default_rng(seed).normal(size=x.shape).astype(np.float32)
    scale = np.asarray(cond["std"]) / np.maximum(np.asarray(cond["train_std"]), 1e-6)
    out = (x - np.reshape(cond["train_mean"], shape)) * np.reshape(scale, shape) + np.reshape(cond["mean"], shape)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def add(train_x: np.ndarray, train_y: np.ndarray, dev_x: np.ndarray, share: float, *, seed: int):
    """(images, labels, chosen: the index of each copied training image, stats, one check line): the training
    set followed by dev-like copies of round(share * n) of its images, drawn at random."""
    cond = fit(train_x, dev_x, seed=seed)
    chosen = np.sort(np.random.default_rng(seed).permutation(len(train_x))[: int(round(share * len(train_x)))])
    copies = transform(train_x[chosen], cond, seed=seed)
    brightness = float(np.mean(cond["mean"]) - np.mean(cond["train_mean"]))
    contrast = float(np.mean(cond["std"]) / max(float(np.mean(cond["train_std"])), 1e-6))
    stats = {"synth_added": float(len(chosen)), "synth_blur": cond["blur"], "synth_noise": cond["noise"],
             "synth_brightness": brightness, "synth_contrast": contrast}
    grain = f", noise {cond['noise']:g}" if cond["noise"] else ""
    check = (f"data.synthesize: added {len(chosen)} training images given the dev images' conditions (blur "
             f"{cond['blur']:g} px{grain}, brightness {brightness:+.2f}, contrast x{contrast:.2f})")
    return (np.concatenate([train_x, copies]), np.concatenate([train_y, train_y[chosen]]), chosen, stats, check)
