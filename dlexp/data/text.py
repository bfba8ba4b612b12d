"""Your own text: a CSV, TSV or JSON-lines file with a text column and a label column, as token sequences.

A Hugging Face `tokenizers` tokenizer (BPE or WordPiece) is trained on the training split only and saved
with the run (preprocessing/tokenizer.json); every text becomes [BOS] tokens [EOS], cut or padded (id 0) to
`max_length`. `tokenizer_path` reuses a saved tokenizer instead: a run that starts from another run's
weights (model.init_from) must read tokens with the ids that run learned, so the training side points it
at that run's tokenizer.

`task=lm` needs no labels: the sequence models learn to predict each next token (x = ids[:-1], y = ids[1:],
0 = padding, not scored) over the text column, or over a .txt file of one text per line. The error is the
share of wrong next tokens: pre-training on a large unlabelled corpus, before fine-tuning on a small
labelled one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from dlexp.data import Split, Splits
from dlexp.errors import ConfigError, DataError

SPECIAL = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]  # ids 0..3: 0 is the padding every model masks
PAD, UNK, BOS, EOS = range(4)
JSON_LINES = (".jsonl", ".ndjson", ".json")


def _value(x) -> str:
    return str(getattr(x, "value", x))


def read(path, key: str, text_column: str):
    """One file as a DataFrame: CSV/TSV (by extension), JSON lines, or .txt (one text per line)."""
    import pandas as pd

    from dlexp.data.table import read as read_table

    p = Path(str(path)).expanduser()
    suffix = p.suffix.lower()
    if suffix == ".txt":
        if not p.is_file():
            raise DataError(f"{key}: no such file: {path}")
        try:
            lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
        except UnicodeDecodeError:
            raise DataError(f"{key}: cannot read {path}: not a UTF-8 text file") from None
        lines = [ln for ln in lines if ln]
        if not lines:
            raise DataError(f"{key}: {path} holds no text")
        return pd.DataFrame({text_column: lines})
    if suffix in JSON_LINES:
        if not p.is_file():
            raise DataError(f"{key}: no such file: {path}")
        if p.stat().st_size == 0:
            raise DataError(f"{key}: {path} is empty")
        try:
            frame = pd.read_json(p, lines=True, dtype=False)
        except ValueError as exc:
            raise DataError(f"{key}: cannot read {path} as JSON lines (one object per line): "
                            f"{str(exc).splitlines()[0][:200]}") from None
        frame.columns = [str(c) for c in frame.columns]
        return frame
    if suffix not in (".csv", ".tsv"):
        raise DataError(f"{key}: cannot read '{suffix or p.name}' files; use .csv, .tsv, .jsonl or .txt")
    return read_table(path, key)


def _rows(frame, column: str, where: str, what: str) -> list[str]:
    """The column as stripped strings; an empty or missing cell is one DataError naming its row."""
    if column not in frame.columns:
        raise DataError(f"{where} has no {what} column '{column}'; available columns: "
                        f"{', '.join(map(str, frame.columns))} (set data.{what}_column)")
    values = frame[column]
    texts = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip() for v in values]
    empty = [i for i, t in enumerate(texts) if not t]
    if empty:
        more = f" ({len(empty)} such rows)" if len(empty) > 1 else ""
        raise DataError(f"{where}: row {empty[0] + 1} has an empty {what} column '{column}'{more}; "
                        "fill or remove those rows")
    return texts


def train_tokenizer(texts: list[str], cfg):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    kind = _value(cfg.tokenizer)
    if kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        trainer = trainers.WordPieceTrainer(vocab_size=cfg.vocab_size, special_tokens=SPECIAL, show_progress=False)
    else:
        tok = Tokenizer(models.BPE(unk_token="[UNK]"))
        trainer = trainers.BpeTrainer(vocab_size=cfg.vocab_size, special_tokens=SPECIAL, show_progress=False)
    steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if cfg.lowercase else [])
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def load_tokenizer(path):
    from tokenizers import Tokenizer

    p = Path(str(path)).expanduser()
    if not p.is_file():
        raise DataError(f"data.tokenizer_path: no such file: {path}")
    try:
        tok = Tokenizer.from_file(str(p))
    except Exception as exc:
        raise DataError(f"data.tokenizer_path: {path} is not a tokenizers JSON file "
                        f"({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__})") from None
    if [tok.token_to_id(t) for t in SPECIAL] != list(range(len(SPECIAL))):
        raise DataError(f"data.tokenizer_path: {path} lacks dlexp's special tokens {', '.join(SPECIAL)} as ids 0-3; "
                        "use a tokenizer.json saved by a dlexp data=text run")
    return tok


def fingerprint(tok) -> str:
    """A short hash of the tokenizer: two runs read the same token ids exactly when it is equal."""
    return hashlib.sha256(tok.to_str().encode()).hexdigest()[:16]


class TextPreprocessing:
    """What a text run keeps: the tokenizer (tokenizer.json, loadable with `tokenizers.Tokenizer.from_file`)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def save(self, folder: Path) -> list[Path]:
        path = Path(folder) / "tokenizer.json"
        self.tokenizer.save(str(path))
        return [path]


def encode(tok, texts: list[str], length: int) -> tuple[np.ndarray, int]:
    """(n, length) int64 of [BOS] ids [EOS] cut or 0-padded to `length`, and how many texts were cut."""
    out = np.zeros((len(texts), length), dtype=np.int64)
    cut = 0
    for i, enc in enumerate(tok.encode_batch(texts, add_special_tokens=False)):
        ids = [BOS, *enc.ids, EOS]
        if len(ids) > length:
            cut += 1
            ids = ids[:length]
        out[i, : len(ids)] = ids
    return out, cut


def _split(index: np.ndarray, size: int, labels, seed: int):
    from sklearn.model_selection import train_test_split

    if size < 1 or size >= len(index):
        raise DataError(f"{len(index)} rows are too few for the four splits; add rows or lower the fractions")
    if labels is not None:
        counts = np.bincount(labels[index])
        if counts[counts > 0].min() >= 2:
            try:
                return train_test_split(index, test_size=size, stratify=labels[index], random_state=seed)
            except ValueError:
                pass
    return train_test_split(index, test_size=size, random_state=seed)


def build(cfg, *, seed: int) -> Splits:
    import pandas as pd

    lm = _value(cfg.task) == "lm"
    if cfg.max_length < 4:
        raise ConfigError(f"data.max_length must be at least 4 ([BOS], two tokens, [EOS]), got {cfg.max_length}")
    if cfg.unlabelled_path and not Path(str(cfg.unlabelled_path)).expanduser().is_file():
        raise DataError(f"data.unlabelled_path: no such file: {cfg.unlabelled_path}")
    if not lm and str(cfg.path).lower().endswith(".txt"):
        raise DataError(f"data.path: {cfg.path} is plain text without labels; pre-train on it with data.task=lm, "
                        "or give a CSV/TSV/JSON-lines file with a label column")
    paths = [("data.path", cfg.path), ("data.dev_path", cfg.dev_path), ("data.test_path", cfg.test_path)]
    frames = [(read(p, k, cfg.text_column), str(p)) if p else None for k, p in paths]
    texts = [None if f is None else _rows(f[0], cfg.text_column, f[1], "text") for f in frames]
    classes: list[str] = []
    labels = [None, None, None]
    if not lm:
        raw = [None if f is None else _rows(f[0], cfg.label_column, f[1], "label") for f in frames]
        classes = sorted({v for r in raw if r for v in r})
        if len(set(raw[0])) < 2:
            raise DataError(f"label column '{cfg.label_column}' of {cfg.path} has a single class ({raw[0][0]!r}): "
                            "nothing to classify")
        cats = pd.CategoricalDtype(classes)
        labels = [None if r is None else pd.Series(r, dtype=cats).cat.codes.to_numpy(np.int64) for r in raw]

    n = len(texts[0])
    idx = np.arange(n)
    if cfg.dev_path:
        train_i, td_i = _split(idx, round(cfg.train_dev_fraction * n), labels[0], seed)
        d = np.arange(len(texts[1]))
        if cfg.test_path:
            parts = {"train": (0, train_i), "train_dev": (0, td_i), "dev": (1, d),
                     "test": (2, np.arange(len(texts[2])))}
        else:
            share = cfg.test_fraction / (cfg.test_fraction + cfg.dev_fraction)
            dev_i, test_i = _split(d, round(share * len(d)), labels[1], seed)
            parts = {"train": (0, train_i), "train_dev": (0, td_i), "dev": (1, dev_i), "test": (1, test_i)}
    else:
        rest, test_i = _split(idx, round(cfg.test_fraction * n), labels[0], seed)
        rest, dev_i = _split(rest, round(cfg.dev_fraction * n), labels[0], seed)
        train_i, td_i = _split(rest, round(cfg.train_dev_fraction * n), labels[0], seed)
        parts = {"train": (0, train_i), "train_dev": (0, td_i), "dev": (0, dev_i), "test": (0, test_i)}
    if cfg.n_train is not None:
        src, i = parts["train"]
        parts["train"] = (src, i[: cfg.n_train])

    split_texts = {name: [texts[src][j] for j in i] for name, (src, i) in parts.items()}
    # the tokenizer learns from the training split only: nothing of train-dev, dev or test leaks into it
    reused = cfg.tokenizer_path is not None
    tok = load_tokenizer(cfg.tokenizer_path) if reused else train_tokenizer(split_texts["train"], cfg)
    vocab = tok.get_vocab_size()
    length = cfg.max_length + 1 if lm else cfg.max_length
    encoded, checks, stats = {}, [], {}
    for name, t in split_texts.items():
        ids, cut = encode(tok, t, length)
        encoded[name] = ids
        stats[f"cut_share_{name}"] = cut / max(1, len(t))
        real = ids[ids != PAD]
        stats[f"unknown_share_{name}"] = float((real == UNK).mean()) if len(real) else 0.0
    if stats["cut_share_train"] > 0:
        checks.append(f"{stats['cut_share_train']:.0%} of the training texts are longer than data.max_length="
                      f"{cfg.max_length} tokens and were cut")
    for name in ("train_dev", "dev", "test"):
        if stats[f"unknown_share_{name}"] > 0.01:
            checks.append(f"{stats[f'unknown_share_{name}']:.1%} of the {name} tokens are unknown to the tokenizer")
    if lm:
        splits = {name: Split(ids[:, :-1].copy(), ids[:, 1:].copy()) for name, ids in encoded.items()}
    else:
        # rows: each text's 1-based data row in its file (the wrong-label CSV and data.exclude_rows name it)
        splits = {name: Split(encoded[name], labels[src][i], rows=i + 1) for name, (src, i) in parts.items()}
    description = {"source": str(cfg.path), "task": "lm" if lm else "classification",
                   "text_column": cfg.text_column, "tokenizer": _value(cfg.tokenizer) if not reused else "reused",
                   "tokenizer_path": str(cfg.tokenizer_path) if reused else None,
                   "tokenizer_fingerprint": fingerprint(tok), "vocab": vocab, "max_length": cfg.max_length,
                   "special_tokens": SPECIAL}
    if not lm:
        description.update(label_column=cfg.label_column, classes=classes)
    return Splits(**splits, n_classes=vocab if lm else len(classes), bayes_error=None,
                  task="lm" if lm else "classification", vocab=vocab,
                  needs_human=None if lm else "data=text", checks=tuple(checks), stats=stats,
                  preprocessing=TextPreprocessing(tok), description=description,
                  examples=tuple(split_texts["train"][:3]))
