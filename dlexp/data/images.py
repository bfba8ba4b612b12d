"""Your own images: a folder with one sub-folder per class (PNG or JPEG), read with Pillow.

Every image is resized to `image_size` x `image_size` and converted to RGB (3 channels) or grayscale (1);
inputs are standardized per channel with statistics of the training split. Train and train-dev come from
`path`; dev and test from `dev_path` / `test_path` when given (the distribution the model will serve), else
from `path` as well. `augment` asks the training loop for random shifts (crops), flips and small rotations
of the training batches only (dlexp/models/augment.py); the splits themselves stay as read. `synthesize`
(with a dev folder) adds training images given the dev images' blur, grain and tone
(dlexp/data/synthesize.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlexp.data import Split, Splits
from dlexp.errors import DataError

EXTENSIONS = (".png", ".jpg", ".jpeg")
AUGMENT = {"shift": 0.125, "flip": True, "degrees": 10.0}  # shift: share of the side; degrees: at most


def _color(cfg) -> str:
    return str(getattr(cfg.color, "value", cfg.color))


def scan(folder, key: str) -> dict[str, list[Path]]:
    """{class name: image files} of a folder of class folders; one DataError line for each bad layout."""
    root = Path(str(folder)).expanduser()
    if not root.exists():
        raise DataError(f"{key}: no such folder: {folder}")
    if not root.is_dir():
        raise DataError(f"{key}: {folder} is a file; give a folder with one sub-folder of images per class")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{key}: {folder} has no class folders; put each class's images in its own sub-folder "
                        f"({folder}/cat/1.png, {folder}/dog/2.png, ...)")
    found = {}
    for c in classes:
        files = sorted(p for p in c.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS
                       and not p.name.startswith("."))
        if not files:
            raise DataError(f"{key}: class folder {c} holds no PNG or JPEG images; add some or remove the folder")
        found[c.name] = files
    return found


def read(files: list[Path], *, size: int, color: str) -> np.ndarray:
    """(n, C, size, size) float32 in [0, 1]; an unreadable or corrupt file is one DataError naming it."""
    from PIL import Image, UnidentifiedImageError

    mode = "L" if color == "gray" else "RGB"
    out = np.empty((len(files), 1 if mode == "L" else 3, size, size), dtype=np.float32)
    for i, f in enumerate(files):
        try:
            with Image.open(f) as im:
                im = im.convert(mode).resize((size, size), Image.Resampling.BILINEAR)
                a = np.asarray(im, dtype=np.float32) / 255.0
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            why = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise DataError(f"cannot read image {f}: {why}; replace or remove the file") from None
        out[i] = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    return out


def _labelled(found: dict[str, list[Path]], classes: list[str], key: str, where) -> tuple[list[Path], np.ndarray]:
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise DataError(f"{key}: class folder{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} of {where} "
                        f"{'are' if len(unknown) > 1 else 'is'} not a class of data.path ({', '.join(classes)})")
    files = [f for c in found for f in found[c]]
    labels = np.array([classes.index(c) for c in found for _ in found[c]], dtype=np.int64)
    return files, labels


def _split(index: np.ndarray, labels: np.ndarray, share: float, seed: int):
    from sklearn.model_selection import train_test_split

    size = max(1, round(share * len(index)))
    if size >= len(index):
        raise DataError(f"{len(index)} images are too few for the splits; add images or lower the fractions")
    counts = np.bincount(labels[index])
    strat = labels[index] if counts[counts > 0].min() >= 2 else None
    try:
        return train_test_split(index, test_size=size, stratify=strat, random_state=seed)
    except ValueError:  # a class too rare to stratify
        return train_test_split(index, test_size=size, random_state=seed)


def build(cfg, *, seed: int) -> Splits:
    color, size = _color(cfg), int(cfg.image_size)
    found = scan(cfg.path, "data.path")
    classes = list(found)
    if len(classes) < 2:
        raise DataError(f"data.path: {cfg.path} has a single class folder ({classes[0]}): nothing to classify")
    files, labels = _labelled(found, classes, "data.path", cfg.path)
    sources = [(files, labels)]
    idx = np.arange(len(files))
    if cfg.synthesize and not cfg.dev_path:
        raise DataError("data.synthesize makes training images like the dev images, so it needs a dev folder of "
                        "the serving distribution: set data.dev_path=<folder>")
    if cfg.dev_path:
        dev_files, dev_labels = _labelled(scan(cfg.dev_path, "data.dev_path"), classes, "data.dev_path", cfg.dev_path)
        sources.append((dev_files, dev_labels))
        train, td = _split(idx, labels, cfg.train_dev_fraction, seed)
        d_idx = np.arange(len(dev_files))
        if cfg.test_path:
            test_files, test_labels = _labelled(scan(cfg.test_path, "data.test_path"), classes,
                                                "data.test_path", cfg.test_path)
            sources.append((test_files, test_labels))
            parts = {"train": (0, train), "train_dev": (0, td), "dev": (1, d_idx),
                     "test": (2, np.arange(len(test_files)))}
        else:
            share = cfg.test_fraction / (cfg.test_fraction + cfg.dev_fraction)
            dev, test = _split(d_idx, dev_labels, share, seed)
            parts = {"train": (0, train), "train_dev": (0, td), "dev": (1, dev), "test": (1, test)}
    else:
        rest, test = _split(idx, labels, cfg.test_fraction, seed)
        rest, dev = _split(rest, labels, cfg.dev_fraction / (1 - cfg.test_fraction), seed)
        train, td = _split(rest, labels, cfg.train_dev_fraction / (1 - cfg.test_fraction - cfg.dev_fraction), seed)
        parts = {"train": (0, train), "train_dev": (0, td), "dev": (0, dev), "test": (0, test)}
    if cfg.n_train is not None:
        src, train_i = parts["train"]
        parts["train"] = (src, train_i[: cfg.n_train])

    raw = {}
    for name, (src, i) in parts.items():
        f, y = sources[src]
        raw[name] = (read([f[j] for j in i], size=size, color=color), y[i])
    rows = {name: i + 1 for name, (_, i) in parts.items()}
    stats, checks = {}, []
    if cfg.synthesize:
        from dlexp.data import synthesize

        x, y, chosen, stats, check = synthesize.add(*raw["train"], raw["dev"][0], cfg.synthesize, seed=seed)
        raw["train"], rows["train"] = (x, y), np.concatenate([rows["train"], rows["train"][chosen]])
        checks.append(check)
    mean = raw["train"][0].mean(axis=(0, 2, 3), keepdims=True)
    std = raw["train"][0].std(axis=(0, 2, 3), keepdims=True)
    std[std == 0] = 1.0
    # rows: each image's 1-based place in its folder's file list (class folders, then paths, sorted)
    splits = {name: Split(np.ascontiguousarray((x - mean) / std), y, rows=rows[name])
              for name, (x, y) in raw.items()}
    seen = set(np.unique(splits["train"].y).tolist())
    for name in ("train_dev", "dev", "test"):
        absent = sorted(set(np.unique(splits[name].y).tolist()) - seen)
        if absent:
            checks.append(f"class{'es' if len(absent) > 1 else ''} {', '.join(classes[k] for k in absent)} "
                          f"absent from training but in {name}: the model cannot predict "
                          f"{'them' if len(absent) > 1 else 'it'}")
    return Splits(**splits, n_classes=len(classes), bayes_error=None, needs_human="data=images",
                  checks=tuple(checks), stats=stats, augment=dict(AUGMENT) if cfg.augment else None,
                  examples=tuple(str(sources[parts["train"][0]][0][j].resolve()) for j in parts["train"][1][:3]),
                  description={"source": str(cfg.path), "classes": classes, "image_size": size, "color": color,
                               "channel_mean": mean.ravel().tolist(), "channel_std": std.ravel().tolist(),
                               "augment": dict(AUGMENT) if cfg.augment else None})
