"""The run's model as a folder that scores raw rows: the network's weights, how to rebuild it, and the
preprocessing fitted on the training split (a table's encoders). The tracking process wraps the folder as an
MLflow pyfunc model (tracking/model.py); `Predictor` is what that model runs.

Written for flat inputs: tables (`data=table`, `data=sql`: the raw columns in, class names or numbers out)
and feature vectors (`data=synthetic`, `data=digits`, `data=npz` with 1-D rows: columns x0, x1, ... in).
Images, token sequences and the user's own Datasets get no model folder yet (`save` returns None).

    folder/weights.pt           the evaluated network's state_dict (tensors only; no optimizer state)
    folder/spec.json            the model config and build arguments, task, target scale, classes, columns
    folder/preprocessing.joblib a table's fitted encoders (tables only)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SPEC, WEIGHTS, PREPROCESSING = "spec.json", "weights.pt", "preprocessing.joblib"


def save(net, model_cfg: dict, splits, folder: Path, *, data_name: str) -> dict | None:
    """Write the model folder; return its spec (also the signature's and input example's source), or None
    for data that has no raw-row form yet."""
    import torch

    if getattr(splits, "datasets", None) is not None:  # the user's own Datasets (data=custom): not yet
        return None
    table = isinstance(splits.preprocessing, dict) and "transform" in splits.preprocessing
    flat = getattr(splits.train, "x", None) is not None and splits.train.x.ndim == 2 and splits.vocab is None
    if splits.task not in ("classification", "regression") or not (table or flat):
        return None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if table:
        p = splits.preprocessing
        inputs = [{"name": c, "type": p["column_types"][c]} for c in p["features"]]
        classes = [c.item() if isinstance(c, np.generic) else c for c in p["classes"]] \
            if splits.task == "classification" else None
        example = p["example"]
        import joblib

        joblib.dump({k: p[k] for k in ("transform", "features", "numeric", "categorical")},
                    folder / PREPROCESSING)
    else:
        inputs = [{"name": f"x{i}", "type": "double"} for i in range(splits.n_features)]
        classes = list(range(splits.n_classes)) if splits.task == "classification" else None
        example = [{f"x{i}": float(v) for i, v in enumerate(row)} for row in splits.train.x[:3]]
    output = "double" if splits.task == "regression" else \
        "string" if any(isinstance(c, str) for c in classes) else "long"
    spec = {"model": model_cfg, "task": splits.task, "n_features": splits.n_features, "n_classes": splits.n_classes,
            "input_shape": list(splits.input_shape), "data_name": data_name, "table": table, "inputs": inputs,
            "output": output, "classes": classes, "target_mean": splits.target_mean,
            "target_std": splits.target_std, "example": example}
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, folder / WEIGHTS)
    (folder / SPEC).write_text(json.dumps(spec, indent=1, default=str))
    return spec


class Predictor:
    """A saved model folder, loaded: `predict(frame)` -> class labels (as the data names them) or numbers."""

    def __init__(self, folder: Path):
        import torch
        from omegaconf import OmegaConf

        from dlexp import models

        folder = Path(folder)
        self.spec = json.loads((folder / SPEC).read_text())
        s = self.spec
        self.net = models.build(OmegaConf.create(s["model"]), n_features=s["n_features"], n_classes=s["n_classes"],
                                input_shape=tuple(s["input_shape"]), data_name=s["data_name"], task=s["task"])
        self.net.load_state_dict(torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True))
        self.net.eval()
        self.preprocessing = None
        if s["table"]:
            import joblib

            self.preprocessing = joblib.load(folder / PREPROCESSING)

    def features(self, frame) -> np.ndarray:
        if self.preprocessing is not None:
            from dlexp.data.table import features_of

            return features_of(self.preprocessing, frame)
        from dlexp.errors import DataError

        names = [c["name"] for c in self.spec["inputs"]]
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise DataError(f"the rows have no column {missing[0]!r} (the model reads {names[0]} to {names[-1]})")
        try:
            return frame[names].to_numpy(dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise DataError(f"the rows hold a value that is not a number: {exc}") from None

    def predict(self, frame, batch_size: int = 4096) -> np.ndarray:
        import torch

        x = self.features(frame)
        outs = []
        with torch.inference_mode():
            for i in range(0, len(x), batch_size):
                outs.append(self.net(torch.tensor(x[i:i + batch_size])))
        out = torch.cat(outs) if outs else torch.zeros((0, max(1, self.spec["n_classes"])))
        if self.spec["task"] == "regression":
            return out.squeeze(-1).double().numpy() * self.spec["target_std"] + self.spec["target_mean"]
        return np.asarray(self.spec["classes"], dtype=object if self.spec["output"] == "string" else np.int64)[
            out.argmax(dim=1).numpy()]
