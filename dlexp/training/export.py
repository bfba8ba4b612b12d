"""The run's model as a folder that scores raw inputs: the network's weights, how to rebuild it, and the
preprocessing fitted on the training split (a table's encoders, a text run's tokenizer, an image run's size,
colour and channel statistics). The tracking process wraps the folder as an MLflow pyfunc model
(tracking/model.py); `Predictor` is what that model runs.

    kind "table":  data=table, data=sql; the raw columns in
    kind "flat":   data=synthetic, digits, npz with 1-D rows; columns x0, x1, ... in
    kind "text":   data=text (classification); the text column in (raw texts)
    kind "images": data=images; a column `path` of image files in

Out: class names as the data names them, or numbers (regression). No model folder (`save` returns None) for
token sequences without text (data=sequence), language models (data.task=lm), npz rows of more than one
dimension and the user's own Datasets (data=custom: their preprocessing is the user's code; `NOT_LOGGED`).

    folder/weights.pt           the evaluated network's state_dict (tensors only; no optimizer state)
    folder/spec.json            the model config and build arguments, kind, task, classes, inputs, example
    folder/preprocessing.joblib a table's fitted encoders (tables only)
    folder/tokenizer.json       a text run's tokenizer (text only)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SPEC, WEIGHTS, PREPROCESSING, TOKENIZER = "spec.json", "weights.pt", "preprocessing.joblib", "tokenizer.json"
PATH = "path"  # the column of image files an image run's model reads
NOT_LOGGED = ("no MLflow model logged: data=custom reads your own Datasets, whose preprocessing dlexp cannot pack "
              "with the weights; the weights are in the run's checkpoints/ (model.init_from=RUN_ID takes them)")


def kind(splits) -> str | None:
    """What the model reads: "table", "flat", "text", "images", or None (no raw-input form)."""
    if getattr(splits, "datasets", None) is not None or splits.task not in ("classification", "regression"):
        return None
    if isinstance(splits.preprocessing, dict) and "transform" in splits.preprocessing:
        return "table"
    from dlexp.data.text import TextPreprocessing

    if isinstance(splits.preprocessing, TextPreprocessing):
        return "text"
    if {"image_size", "channel_mean"} <= (splits.description or {}).keys() and splits.train.x.ndim == 4:
        return "images"   # data=images (files read by path); an npz of image arrays has no path to read

    x = getattr(splits.train, "x", None)
    return "flat" if x is not None and x.ndim == 2 and splits.vocab is None else None


def save(net, model_cfg: dict, splits, folder: Path, *, data_name: str) -> dict | None:
    """Write the model folder; return its spec (also the signature's and input example's source), or None
    for data that has no raw-input form."""
    import torch

    what = kind(splits)
    if what is None:
        return None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    inputs, classes, example, extra = _inputs(what, splits, folder)
    if splits.task == "classification" and classes is None:
        classes = list(range(splits.n_classes))
    output = "double" if splits.task == "regression" else \
        "string" if any(isinstance(c, str) for c in classes) else "long"
    spec = {"model": model_cfg, "kind": what, "task": splits.task, "n_features": splits.n_features,
            "n_classes": splits.n_classes, "input_shape": list(splits.input_shape), "vocab": splits.vocab,
            "data_name": data_name, "table": what == "table", "inputs": inputs, "output": output, "classes": classes,
            "target_mean": splits.target_mean, "target_std": splits.target_std, "example": example, **extra}
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, folder / WEIGHTS)
    (folder / SPEC).write_text(json.dumps(spec, indent=1, default=str))
    return spec


def _inputs(what: str, splits, folder: Path) -> tuple[list, list | None, list, dict]:
    """(the signature's input columns, class names or None, the input example's rows, what else the spec
    keeps); writes the fitted preprocessing into `folder`."""
    desc = splits.description or {}
    if what == "table":
        import joblib

        p = splits.preprocessing
        joblib.dump({k: p[k] for k in ("transform", "features", "numeric", "categorical")}, folder / PREPROCESSING)
        classes = [c.item() if isinstance(c, np.generic) else c for c in p["classes"]] \
            if splits.task == "classification" else None
        return [{"name": c, "type": p["column_types"][c]} for c in p["features"]], classes, p["example"], {}
    if what == "text":
        splits.preprocessing.tokenizer.save(str(folder / TOKENIZER))
        column = desc["text_column"]
        return ([{"name": column, "type": "string"}], list(desc["classes"]),
                [{column: t} for t in splits.examples], {"max_length": desc["max_length"]})
    if what == "images":
        extra = {k: desc[k] for k in ("image_size", "color", "channel_mean", "channel_std")}
        return [{"name": PATH, "type": "string"}], list(desc["classes"]), [{PATH: p} for p in splits.examples], extra
    inputs = [{"name": f"x{i}", "type": "double"} for i in range(splits.n_features)]
    return inputs, None, [{f"x{i}": float(v) for i, v in enumerate(row)} for row in splits.train.x[:3]], {}


class Predictor:
    """A saved model folder, loaded: `predict(frame)` -> class labels (as the data names them) or numbers."""

    def __init__(self, folder: Path):
        import torch
        from omegaconf import OmegaConf

        from dlexp import models

        folder = Path(folder)
        self.spec = json.loads((folder / SPEC).read_text())
        s = self.spec
        self.kind = s.get("kind", "table" if s["table"] else "flat")
        self.net = models.build(OmegaConf.create(s["model"]), n_features=s["n_features"], n_classes=s["n_classes"],
                                input_shape=tuple(s["input_shape"]), vocab=s.get("vocab"), data_name=s["data_name"],
                                task=s["task"])
        self.net.load_state_dict(torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True))
        self.net.eval()
        self.preprocessing = None
        if self.kind == "table":
            import joblib

            self.preprocessing = joblib.load(folder / PREPROCESSING)
        elif self.kind == "text":
            from dlexp.data.text import load_tokenizer

            self.preprocessing = load_tokenizer(folder / TOKENIZER)

    def batch_size(self) -> int:
        """Rows scored at a time: images are read from disk batch by batch."""
        return {"images": 64, "text": 1024}.get(self.kind, 4096)

    def features(self, frame, start: int = 0) -> np.ndarray:
        """The network's input for `frame`'s rows (`start`: the first one's position, for error lines)."""
        from dlexp.errors import DataError

        if self.kind == "table":
            from dlexp.data.table import features_of

            return features_of(self.preprocessing, frame)
        if self.kind in ("text", "images"):
            return self._read(self._column(frame, start), start)
        names = [c["name"] for c in self.spec["inputs"]]
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise DataError(f"the rows have no column {missing[0]!r} (the model reads {names[0]} to {names[-1]})")
        try:
            return frame[names].to_numpy(dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise DataError(f"the rows hold a value that is not a number: {exc}") from None

    def _column(self, frame, start: int) -> list[str]:
        """The texts or image paths: the named column (a lone unnamed column: a list given as is)."""
        from dlexp.errors import DataError

        name = self.spec["inputs"][0]["name"]
        if name not in frame.columns:
            if len(frame.columns) != 1:
                raise DataError(f"the rows have no column {name!r} (the model reads {name})")
            name = frame.columns[0]
        values = frame[name].tolist()
        if len(values) == 1 and isinstance(values[0], (list, tuple, np.ndarray)):  # {"text": [...]}: one cell
            values = list(values[0])
        for i, v in enumerate(values):
            if v is None or (isinstance(v, float) and np.isnan(v)) or not str(v).strip():
                raise DataError(f"row {start + i + 1} has no value in column {name!r}; the model needs every one")
        return [str(v).strip() for v in values]

    def _read(self, values: list[str], start: int) -> np.ndarray:
        s = self.spec
        if self.kind == "text":
            from dlexp.data.text import encode

            return encode(self.preprocessing, values, s["max_length"])[0]
        from dlexp.data.images import read

        x = read([Path(v).expanduser() for v in values], size=s["image_size"], color=s["color"])
        shape = (1, -1, 1, 1)
        return (x - np.asarray(s["channel_mean"], np.float32).reshape(shape)) / \
            np.asarray(s["channel_std"], np.float32).reshape(shape)

    def predict(self, frame, batch_size: int | None = None) -> np.ndarray:
        import torch

        size = batch_size or self.batch_size()
        whole = self.kind in ("table", "flat")  # computed at once; texts and images batch by batch
        x = self.features(frame) if whole else None
        outs = []
        with torch.inference_mode():
            for i in range(0, len(frame), size):
                part = x[i:i + size] if whole else self.features(frame.iloc[i:i + size], start=i)
                outs.append(self.net(torch.as_tensor(np.require(part, requirements="W"))))  # pandas: read-only
        out = torch.cat(outs) if outs else torch.zeros((0, max(1, self.spec["n_classes"])))
        if self.spec["task"] == "regression":
            return out.squeeze(-1).double().numpy() * self.spec["target_std"] + self.spec["target_mean"]
        return np.asarray(self.spec["classes"], dtype=object if self.spec["output"] == "string" else np.int64)[
            out.argmax(dim=1).numpy()]
