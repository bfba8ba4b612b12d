"""Example data written to files, made here (nothing is downloaded): reviews to classify by topic, an
unlabelled corpus of the same kind of reviews, and images of shapes. Each is a small stand-in for a user's
own data.

    python -m dlexp.data.examples reviews OUT [--labelled 2000] [--unlabelled 8000] [--label-noise 0.05]
    python -m dlexp.data.examples shapes OUT [--per-class 60] [--size 32] [--blur 0] [--light 1]

`reviews` writes OUT/reviews.csv (text,label: one of four topics) and OUT/corpus.txt (one review per line,
no labels). A review is a few clauses of a templated grammar whose nouns and adjectives come from its
topic's pools of made-up words (150 of each per topic, fixed by the task seed). A few hundred labelled
reviews see only part of the pools, so a classifier trained on them alone meets unknown words on
train-dev; the unlabelled corpus shows every word next to others of its topic, which a language model
learns to expect. `label_noise` moves that share of labels to another topic: the Bayes error.

`shapes` writes OUT/<circle|square|triangle>/<i>.png: one shape of random size, place and colour on a
noisy background; `--blur` and `--light` take them out of focus and darker (or brighter), as a camera the
model serves might.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

CLASS_WORDS = 150  # made-up words per class and kind (nouns, adjectives)
TOPICS = ("food", "music", "sport", "travel")


def _made_up_words(rng, n: int, taken: set[str]) -> list[str]:
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    words: list[str] = []
    while len(words) < n:
        syllables = rng.integers(2, 4)
        w = "".join(rng.choice(list(consonants)) + rng.choice(list(vowels)) for _ in range(syllables))
        if w not in taken:
            taken.add(w)
            words.append(w)
    return words


def vocabulary(task_seed: int = 0) -> dict[str, dict[str, list[str]]]:
    """{topic: {"n": nouns, "w": adjectives}}, disjoint made-up words."""
    rng = np.random.default_rng(task_seed)
    taken: set[str] = set()
    return {t: {"n": _made_up_words(rng, CLASS_WORDS, taken), "w": _made_up_words(rng, CLASS_WORDS, taken)}
            for t in TOPICS}


TEMPLATES = ("the {n} was {w} and {w}", "a {w} {n}", "i found the {n} {w}", "really {w} , {w} and {w}",
             "the {n} felt {w} to me", "what a {w} {w} {n}")


def reviews(n: int, *, seed: int, label_noise: float = 0.0, task_seed: int = 0) -> tuple[list[str], list[str]]:
    """n reviews and their labels (the topic)."""
    words = vocabulary(task_seed)
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        label = TOPICS[rng.integers(len(TOPICS))]
        clauses = []
        for _ in range(rng.integers(2, 4)):
            t = TEMPLATES[rng.integers(len(TEMPLATES))]
            for kind in ("w", "n"):
                while "{" + kind + "}" in t:
                    t = t.replace("{" + kind + "}", words[label][kind][rng.integers(CLASS_WORDS)], 1)
            clauses.append(t)
        texts.append(" , ".join(clauses))
        if rng.random() < label_noise:
            label = TOPICS[(TOPICS.index(label) + rng.integers(1, len(TOPICS))) % len(TOPICS)]
        labels.append(label)
    return texts, labels


def write_reviews(out, *, labelled: int = 2000, unlabelled: int = 8000, label_noise: float = 0.05,
                  seed: int = 0, task_seed: int = 0) -> dict[str, Path]:
    import pandas as pd

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    texts, labels = reviews(labelled, seed=seed, label_noise=label_noise, task_seed=task_seed)
    pd.DataFrame({"text": texts, "label": labels}).to_csv(out / "reviews.csv", index=False)
    corpus, _ = reviews(unlabelled, seed=seed + 1, task_seed=task_seed)
    (out / "corpus.txt").write_text("\n".join(corpus) + "\n")
    return {"labelled": out / "reviews.csv", "unlabelled": out / "corpus.txt"}


SHAPES = ("circle", "square", "triangle")


def write_shapes(out, *, per_class: int = 60, size: int = 32, seed: int = 0,
                 shapes: tuple[str, ...] = SHAPES, blur: float = 0.0, light: float = 1.0) -> Path:
    """`blur` (Gaussian, in pixels) and `light` (brightness factor, 1: as drawn) take the pictures under other
    conditions: the images a model serves when they differ from its training images."""
    from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

    out = Path(out)
    rng = np.random.default_rng(seed)
    for shape in shapes:
        (out / shape).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            bg = rng.integers(0, 90)
            pixels = np.clip(bg + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8)
            im = Image.fromarray(pixels, "RGB")
            draw = ImageDraw.Draw(im)
            r = rng.uniform(0.2, 0.4) * size
            cx, cy = rng.uniform(r, size - r, 2)
            color = tuple(int(c) for c in rng.integers(120, 256, 3))
            if shape == "circle":
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
            elif shape == "square":
                draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=color)
            else:
                draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=color)
            if blur:
                im = im.filter(ImageFilter.GaussianBlur(blur))
            if light != 1.0:
                im = ImageEnhance.Brightness(im).enhance(light)
            im.save(out / shape / f"{i}.png")
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dlexp.data.examples", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    r = sub.add_parser("reviews", help="reviews.csv (labelled) and corpus.txt (unlabelled)")
    r.add_argument("out")
    r.add_argument("--labelled", type=int, default=2000)
    r.add_argument("--unlabelled", type=int, default=8000)
    r.add_argument("--label-noise", type=float, default=0.05)
    r.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("shapes", help="one folder of PNG images per shape")
    s.add_argument("out")
    s.add_argument("--per-class", type=int, default=60)
    s.add_argument("--size", type=int, default=32)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--blur", type=float, default=0.0, help="Gaussian blur in pixels: out-of-focus pictures")
    s.add_argument("--light", type=float, default=1.0, help="brightness factor: below 1 darker, above 1 brighter")
    args = parser.parse_args(argv)
    if args.kind == "reviews":
        paths = write_reviews(args.out, labelled=args.labelled, unlabelled=args.unlabelled,
                              label_noise=args.label_noise, seed=args.seed)
        print(f"wrote {paths['labelled']} ({args.labelled} labelled reviews) and {paths['unlabelled']} "
              f"({args.unlabelled} unlabelled)")
    else:
        write_shapes(args.out, per_class=args.per_class, size=args.size, seed=args.seed, blur=args.blur,
                     light=args.light)
        print(f"wrote {args.per_class} images per class of {', '.join(SHAPES)} to {args.out}")


if __name__ == "__main__":
    main()
