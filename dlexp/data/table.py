"""A table from a CSV/TSV or Parquet file, split four ways and preprocessed with statistics of the training split.

`from_frames` does the work for every tabular source (this module and `sql`): it checks the columns, the
missing values and the target, decides the task, splits (stratified for classification, fixed by the seed),
fits the preprocessing (one-hot for categorical columns, standardization for numbers) on the training split
only, and reports leakage, classes absent from training and splits too small to judge a gap on.
pandas and scikit-learn are imported here, never by the CLI's light commands.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from dlexp.data import Split, Splits
from dlexp.errors import ConfigError, DataError, first_line

READERS = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}
AUTO_REGRESSION_VALUES = 20  # task=auto: a numeric target with more distinct values than this is regression


def build(cfg, *, seed: int) -> Splits:
    main = read(cfg.path, "data.path")
    dev = read(cfg.dev_path, "data.dev_path") if cfg.dev_path else None
    test = read(cfg.test_path, "data.test_path") if cfg.test_path else None
    return from_frames(cfg, main, dev, test, seed=seed,
                       where=(str(cfg.path), cfg.dev_path and str(cfg.dev_path), cfg.test_path and str(cfg.test_path)))


def read(path, key: str = "data.path"):
    """Read one CSV/TSV/Parquet file into a DataFrame; every failure becomes one DataError line."""
    import pandas as pd

    p = Path(str(path)).expanduser()
    if not p.exists():
        raise DataError(f"{key}: no such file: {path}")
    if p.is_dir():
        raise DataError(f"{key}: {path} is a folder, not a file")
    kind = READERS.get(p.suffix.lower())
    if kind is None:
        raise DataError(f"{key}: cannot read '{p.suffix or p.name}' files; use .csv, .tsv or .parquet")
    if p.stat().st_size == 0:
        raise DataError(f"{key}: {path} is empty")
    try:
        if kind == "parquet":
            frame = pd.read_parquet(p)
        else:
            frame = pd.read_csv(p, sep="\t" if kind == "tsv" else ",")
    except pd.errors.EmptyDataError:
        raise DataError(f"{key}: {path} is empty") from None
    except PermissionError:
        raise DataError(f"{key}: cannot read {path}: permission denied") from None
    except UnicodeDecodeError:
        raise DataError(f"{key}: cannot read {path}: not a UTF-8 text file") from None
    except Exception as exc:  # ParserError, ArrowInvalid, ...
        raise DataError(f"{key}: cannot read {path} as {kind}: {first_line(exc)}") from None
    return checked_frame(frame, f"{key}: {path} has a header but no rows")


def checked_frame(frame, empty: str):
    """A frame read from a file or a query, its column names as text; one DataError line, `empty` followed by
    the columns, when it has no rows."""
    if len(frame) == 0:
        raise DataError(f"{empty} (columns: {', '.join(map(str, frame.columns)) or 'none'})")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _value(x) -> str:
    return str(getattr(x, "value", x))


def _columns(cfg, frame, where: str) -> list[str]:
    available = list(frame.columns)
    if cfg.target not in available:
        raise DataError(f"target column '{cfg.target}' is not in {where}; available columns: {', '.join(available)}")
    if cfg.features is None:
        return [c for c in available if c != cfg.target]
    features = [str(c) for c in cfg.features]
    unknown = [c for c in features if c not in available]
    if unknown:
        raise DataError(f"feature column{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} not in "
                        f"{where}; available columns: {', '.join(available)}")
    if cfg.target in features:
        raise ConfigError(f"data.features includes the target '{cfg.target}'; leave it out")
    return features


def _missing(cfg, frame, columns: list[str], where: str, checks: list[str]):
    counts = frame[columns].isna().sum()
    counts = counts[counts > 0]
    if counts.empty:
        return frame
    mode = _value(cfg.missing)
    listing = ", ".join(f"{c} ({n} row{'s' if n > 1 else ''})" for c, n in counts.items())
    if mode == "error":
        raise DataError(f"missing values in {where}: {listing}; set data.missing=drop or data.missing=impute")
    subset = columns if mode == "drop" else [cfg.target]
    kept = frame.dropna(subset=subset)
    if len(kept) < len(frame):
        what = "missing values" if mode == "drop" else "a missing target"
        checks.append(f"dropped {len(frame) - len(kept)} of {len(frame)} rows of {where} with {what} ({listing})")
    return kept


def _numeric_problem(frame, column: str, where: str, *, forced: bool) -> None:
    """Raise DataError naming a row when a column meant to hold numbers holds text somewhere."""
    import pandas as pd

    values = frame[column]
    parsed = pd.to_numeric(values, errors="coerce")
    infinite = np.isinf(parsed.to_numpy(dtype=float, na_value=np.nan))
    if infinite.any():
        pos = int(np.flatnonzero(infinite)[0])
        raise DataError(f"column '{column}' holds an infinite value at row {pos + 1} of {where} "
                        f"({int(infinite.sum())} in all); replace it with a finite number or leave it empty "
                        "(and set data.missing=drop or impute)")
    bad = parsed.isna() & values.notna()
    if not bad.any():
        return
    share_numeric = 1 - bad.sum() / max(1, values.notna().sum())
    if forced or share_numeric >= 0.8:
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"column '{column}' needs numbers but row {pos + 1} of {where} holds "
                        f"{values.iloc[pos]!r}" + ("" if forced else "; fix the value, or list the column in "
                                                   "data.categorical to treat it as categories"))


def _task(cfg, y, where: str) -> str:
    import pandas as pd

    task = _value(cfg.task)
    if task != "auto":
        return task
    numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    return "regression" if numeric and y.nunique() > AUTO_REGRESSION_VALUES else "classification"


def _sizes(cfg, n: int, *, keys, fractions, where: str) -> list[int]:
    sizes = [getattr(cfg, k) or max(1, round(f * n)) for k, f in zip(keys, fractions)]
    if sum(sizes) >= n:
        listing = ", ".join(f"{k.replace('n_', '')} {s}" for k, s in zip(keys, sizes))
        raise DataError(f"{where} has {n} rows, fewer than the splits need ({listing}, and at least 1 for "
                        f"training); use a bigger table or smaller data.{keys[0]}/fractions")
    return sizes


def _split(index: np.ndarray, size: int, labels, seed: int, checks: list[str]):
    """(rest, held) with `size` rows held out; stratified by `labels` where every class allows it."""
    from sklearn.model_selection import train_test_split

    if labels is not None:
        try:
            rest, held = train_test_split(index, test_size=size, stratify=labels[index], random_state=seed)
            return rest, held
        except ValueError:
            note = "some classes are too rare to stratify the splits; they are split at random instead"
            if note not in checks:
                checks.append(note)
    return train_test_split(index, test_size=size, random_state=seed)


def from_frames(cfg, main, dev=None, test=None, *, seed: int, where=("the table", None, None)) -> Splits:
    """The four splits of a table given as frames (`dev` and `test` optional), step by step: the columns, the
    missing values, the column kinds, the target, the splits, the preprocessing, then the checks."""
    checks: list[str] = []
    features = _columns(cfg, main, where[0])
    _same_columns(features + [cfg.target], (dev, where[1]), (test, where[2]))
    kept = [None if f is None else _missing(cfg, f, features + [cfg.target], w, checks)
            for f, w in zip((main, dev, test), where)]
    origin = [None if f is None else f.index.to_numpy() + 1 for f in kept]  # each row's 1-based number in its file
    frames = [None if f is None else f.reset_index(drop=True) for f in kept]
    if len(frames[0]) == 0:
        raise DataError(f"{where[0]} has no rows left after dropping missing values")
    present = [(f, w) for f, w in zip(frames, where) if f is not None]
    numeric, categorical = _kinds(cfg, features, present, where[0])
    task, classes, ys = _targets(cfg, present, where[0])
    parts = _parts(cfg, frames, ys, task, seed, where, checks)
    raw, numbers = _rows(parts, frames, ys, features, n_train=cfg.n_train, origin=origin)
    transform = _preprocessing(cfg, numeric, categorical)
    prepared = {name: _prepare(xf, numeric, categorical, cfg) for name, (xf, _) in raw.items()}
    transform.fit(prepared["train"])  # fitted on the training split only
    xs = {name: np.asarray(transform.transform(xf), dtype=np.float32) for name, xf in prepared.items()}
    stats: dict[str, float] = {}
    checks += _leakage(raw, features, stats)
    checks += _absent_classes(raw, classes) if task == "classification" else []
    checks += _small_splits(cfg, raw, task, stats)
    splits = _splits(cfg, raw, xs, transform, task, classes, (numeric, categorical, features), checks, stats,
                     where[0], rows=numbers)
    splits.preprocessing.update(numeric=numeric, categorical=categorical, column_types=column_types(main, features),
                                example=_example(raw["train"][0]))
    return splits


def column_types(frame, features: list[str]) -> dict[str, str]:
    """Each feature's type as MLflow's schemas name it, from the raw training frame: long, double, boolean,
    string (the types a new row must have to be scored the same way)."""
    import pandas as pd

    kinds = {}
    for c in features:
        dtype = frame[c].dtype
        kinds[c] = ("boolean" if pd.api.types.is_bool_dtype(dtype) else "long" if pd.api.types.is_integer_dtype(dtype)
                    else "double" if pd.api.types.is_float_dtype(dtype) else "string")
    return kinds


def _example(frame, n: int = 3) -> list[dict]:
    """A few raw training rows, JSON-able: the model's input example."""
    import json

    return json.loads(frame.head(n).to_json(orient="records"))


def features_of(preprocessing: dict, frame) -> np.ndarray:
    """New raw rows (a frame with the training table's feature columns) as the network's inputs, through the
    preprocessing fitted on the training split; one DataError line for a missing column or a bad value."""
    missing = [c for c in preprocessing["features"] if c not in frame.columns]
    if missing:
        raise DataError(f"the rows have no column {missing[0]!r} (the model reads "
                        f"{', '.join(map(str, preprocessing['features']))})")
    xf = frame[preprocessing["features"]]
    for c in preprocessing["numeric"]:
        _numeric_problem(xf, c, "the rows", forced=True)
    prepared = _prepare(xf, preprocessing["numeric"], preprocessing["categorical"], None)
    numbers = prepared[preprocessing["numeric"]]
    if len(preprocessing["numeric"]) and numbers.isna().to_numpy().any() and "numeric" in \
            preprocessing["transform"].named_transformers_ and not _imputes(preprocessing["transform"]):
        column = numbers.columns[numbers.isna().any()][0]
        raise DataError(f"column {column!r} has missing values; the model was trained without them "
                        "(data.missing=impute learns to fill them)")
    return np.asarray(preprocessing["transform"].transform(prepared), dtype=np.float32)


def _imputes(transform) -> bool:
    return len(transform.named_transformers_["numeric"].steps) > 1


def _same_columns(needed: list[str], *frames) -> None:
    """A separate dev or test table must hold the main table's feature and target columns."""
    for frame, where in frames:
        if frame is None:
            continue
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise DataError(f"{where} lacks column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
                            f"available columns: {', '.join(frame.columns)}")


def _kinds(cfg, features: list[str], frames, main_where: str) -> tuple[list[str], list[str]]:
    """(numeric, categorical) features: text and booleans are categories; numbers with a stray word an error."""
    import pandas as pd

    forced = set(map(str, cfg.categorical or []))
    unknown = forced - set(features)
    if unknown:
        raise ConfigError(f"data.categorical names columns that are not features: {', '.join(sorted(unknown))}")
    numeric, categorical = [], []
    for c in features:
        column = frames[0][0][c]
        if c in forced or pd.api.types.is_bool_dtype(column):
            categorical.append(c)
            continue
        is_numeric = pd.api.types.is_numeric_dtype(column)
        for f, w in frames:
            _numeric_problem(f, c, w, forced=is_numeric)
        (numeric if is_numeric else categorical).append(c)
    if not features:
        raise DataError(f"{main_where} has no feature columns besides the target '{cfg.target}'")
    return numeric, categorical


def _targets(cfg, frames, main_where: str) -> tuple[str, list, list[np.ndarray]]:
    """(task, class names, the target of each frame): float32 for regression, class codes for classification."""
    import pandas as pd

    main = frames[0][0]
    task = _task(cfg, main[cfg.target], main_where)
    if task == "regression":
        for f, w in frames:
            _numeric_problem(f, cfg.target, w, forced=True)
        return task, [], [pd.to_numeric(f[cfg.target]).to_numpy(np.float32) for f, _ in frames]
    present = main[cfg.target].dropna().unique()
    if len(present) < 2:
        raise DataError(f"target '{cfg.target}' has a single class ({present[0]!r}) in {main_where}: nothing to "
                        "classify; pick another data.target")
    cats = pd.Categorical(pd.concat([f[cfg.target] for f, _ in frames], ignore_index=True)).categories
    return task, list(cats), [pd.Categorical(f[cfg.target], categories=cats).codes.astype(np.int64)
                              for f, _ in frames]


def _parts(cfg, frames, ys, task, seed: int, where, checks: list[str]) -> dict:
    """The four splits as row indices: (source, rows) into main (0), dev (1) or test (2), or pool rows
    [[source, row], ...] where training mixes main with rows moved from dev (data.target_fraction)."""
    main, dev, test = frames
    labels = ys[0] if task == "classification" else None
    if dev is None:  # all four splits out of one table
        keys = ("n_test", "n_dev", "n_train_dev")
        n_test, n_dev, n_td = _sizes(cfg, len(main), keys=keys, where=where[0], fractions=(
            cfg.test_fraction, cfg.dev_fraction, cfg.train_dev_fraction))
        rest, test_i = _split(np.arange(len(main)), n_test, labels, seed, checks)
        rest, dev_i = _split(rest, n_dev, labels, seed, checks)
        train_i, td_i = _split(rest, n_td, labels, seed, checks)
        return {"train": (0, train_i), "train_dev": (0, td_i), "dev": (0, dev_i), "test": (0, test_i)}
    dev_idx = np.random.default_rng(seed).permutation(len(dev))
    moved = dev_idx[: int(round(cfg.target_fraction * len(dev)))]
    dev_idx = dev_idx[len(moved):]
    # training pool: every row of `main` plus the moved target rows, tagged by source
    pool = np.concatenate([np.stack([np.zeros(len(main), int), np.arange(len(main))], 1),
                           np.stack([np.ones(len(moved), int), moved], 1)])
    pool_labels = None if labels is None else np.concatenate([ys[0], ys[1][moved]])
    (n_td,) = _sizes(cfg, len(pool), keys=("n_train_dev",), fractions=(cfg.train_dev_fraction,), where=where[0])
    train_p, td_p = _split(np.arange(len(pool)), n_td, pool_labels, seed, checks)
    if test is None:  # dev and test out of the dev table
        share = cfg.test_fraction / (cfg.test_fraction + cfg.dev_fraction)
        (n_test,) = _sizes(cfg, len(dev_idx), keys=("n_test",), fractions=(share,), where=where[1])
        dev_i, test_i = _split(dev_idx, n_test, None if labels is None else ys[1], seed, checks)
        test_part = (1, test_i)
    else:
        if len(dev_idx) == 0:
            raise DataError(f"{where[1]} has no rows left for dev after data.target_fraction")
        dev_i, test_part = dev_idx, (2, np.arange(len(test)))
    if cfg.target_fraction:
        checks.append(f"moved {len(moved)} rows of {where[1]} into training (data.target_fraction="
                      f"{cfg.target_fraction})")
    return {"train": pool[train_p], "train_dev": pool[td_p], "dev": (1, dev_i), "test": test_part}


def _rows(parts: dict, frames, ys, features: list[str], *, n_train: int | None, origin) -> tuple[dict, dict]:
    """({split: (DataFrame of the features, target array)}, {split: each example's data row in its file, or
    None for a training pool that mixes two files}); the training split cut to `n_train` rows."""
    import pandas as pd

    by_source = [ys[0], ys[1] if frames[1] is not None else None, ys[-1] if frames[2] is not None else None]

    def rows(part):
        if isinstance(part, tuple):
            src, idx = part
            return frames[src].iloc[idx][features], by_source[src][idx]
        xfs, targets = [], []
        for src in (0, 1):
            idx = part[part[:, 0] == src, 1]
            if len(idx):
                xfs.append(frames[src].iloc[idx][features])
                targets.append(by_source[src][idx])
        return pd.concat(xfs, ignore_index=True), np.concatenate(targets)

    def file_rows(part):
        if isinstance(part, tuple):
            return origin[part[0]][part[1]]
        return None if (part[:, 0] != 0).any() else origin[0][part[:, 1]]

    raw = {name: rows(part) for name, part in parts.items()}
    numbers = {name: file_rows(part) for name, part in parts.items()}
    if n_train is not None:
        xf, yt = raw["train"]
        raw["train"] = (xf.iloc[:n_train], yt[:n_train])
        numbers["train"] = None if numbers["train"] is None else numbers["train"][:n_train]
    return raw, numbers


def _small_splits(cfg, raw: dict, task: str, stats: dict) -> list[str]:
    """Splits under data.min_split_rows, whose errors are too uncertain to judge a gap on."""
    found = []
    for name, (_, yt) in raw.items():
        if len(yt) < cfg.min_split_rows:
            unit = " of the error" if task == "regression" else ""
            found.append(f"{name} has {len(yt)} rows (fewer than data.min_split_rows={cfg.min_split_rows}): its "
                         f"error is uncertain by about ±{1 / math.sqrt(max(1, len(yt))):.0%}{unit}; "
                         "gaps smaller than that say little")
    stats["too_small_splits"] = float(len(found))
    return found


def _splits(cfg, raw, xs, transform, task, classes, columns, checks, stats, source, *, rows: dict) -> Splits:
    """The Splits object: arrays, the target's scale for regression, and the account of the preprocessing."""
    numeric, categorical, features = columns
    metric = _value(cfg.metric) if task == "regression" else "error_rate"
    y_train = raw["train"][1]
    mean = float(np.mean(y_train)) if task == "regression" else 0.0
    std = float(np.std(y_train)) if task == "regression" else 1.0
    std = std if std > 0 else 1.0
    description = _describe(transform, numeric, categorical, features, cfg.target, task, metric, classes,
                            mean, std, source)
    splits = {name: Split(xs[name], yt.astype(np.float32) if task == "regression" else yt, rows=rows[name])
              for name, (_, yt) in raw.items()}
    return Splits(**splits, n_classes=len(classes) if task == "classification" else 1, bayes_error=None,
                  task=task, metric=metric, target_mean=mean, target_std=std,
                  needs_human=f"data={cfg.name}", checks=tuple(checks), stats=stats,
                  preprocessing={"transform": transform, "features": features, "target": cfg.target,
                                 "task": task, "classes": classes, "target_mean": mean, "target_std": std},
                  description=description)


def _prepare(xf, numeric, categorical, cfg):
    """Numbers as floats; categories as strings, a missing one as its own category '<missing>'."""
    import pandas as pd

    out = xf.copy()
    for c in numeric:
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    for c in categorical:
        out[c] = out[c].astype(object).where(out[c].notna(), "<missing>").astype(str)
    return out


def _preprocessing(cfg, numeric, categorical):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    steps = []
    if numeric:
        num = [SimpleImputer(strategy="median")] if _value(cfg.missing) == "impute" else []
        steps.append(("numeric", make_pipeline(*num, StandardScaler()), numeric))
    if categorical:
        steps.append(("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical))
    return ColumnTransformer(steps, remainder="drop")


def _leakage(raw, features, stats) -> list[str]:
    """Rows of train-dev, dev and test whose feature values equal a training row's."""
    import pandas as pd

    def hashes(xf):
        return pd.util.hash_pandas_object(xf.reset_index(drop=True).astype(str), index=False).to_numpy()

    train = set(hashes(raw["train"][0]).tolist())
    found = []
    for name in ("train_dev", "dev", "test"):
        count = int(np.isin(hashes(raw[name][0]), list(train)).sum()) if len(raw[name][1]) else 0
        stats[f"leaked_rows_{name}"] = float(count)
        if count:
            found.append(f"{count} {name} row{'s' if count > 1 else ''} of {len(raw[name][1])}")
    if not found:
        return []
    return ["leakage: " + ", ".join(found) + " have the same feature values as a training row; "
            "errors on them flatter the model"]


def _absent_classes(raw, classes) -> list[str]:
    seen = set(np.unique(raw["train"][1]).tolist())
    absent: dict[int, list[str]] = {}
    for name in ("train_dev", "dev", "test"):
        y = raw[name][1]
        for k in sorted(set(np.unique(y).tolist()) - seen):
            absent.setdefault(k, []).append(f"{name} ({int((y == k).sum())} rows)")
    return [f"class {classes[k]!r} is absent from training but appears in {', '.join(where)}: the model "
            "cannot predict it" for k, where in absent.items()]


def _describe(transform, numeric, categorical, features, target, task, metric, classes, mean, std, source):
    desc = {"source": source, "target": target, "task": task, "metric": metric, "features": features,
            "numeric": {}, "categorical": {}}
    if numeric:
        scaler = transform.named_transformers_["numeric"][-1]
        desc["numeric"] = {c: {"mean": float(m), "std": float(s)}
                           for c, m, s in zip(numeric, scaler.mean_, scaler.scale_)}
    if categorical:
        enc = transform.named_transformers_["categorical"]
        desc["categorical"] = {c: [str(v) for v in cats] for c, cats in zip(categorical, enc.categories_)}
    if task == "classification":
        desc["classes"] = [str(c) for c in classes]
    else:
        desc["target_mean"], desc["target_std"] = mean, std
    return desc
