"""A run's four splits as MLflow dataset inputs (the Datasets column of the MLflow UI, `run.inputs`).

The training process describes the splits (`describe`: plain JSON-able dicts, no MLflow) and sends them to
the tracking process with `finish`, which logs them (`log`). Each split is one dataset input:

- context `train`, `train_dev`, `dev` or `test` (the `mlflow.data.context` tag);
- name `<data>-<split>`: the file's or folder's stem, the database, the generator or the user's callable;
- digest: the split's fingerprint (`outcomes.fingerprint`, the one `dlexp compare` pairs runs on), cut to the
  36 characters MLflow keeps; the whole SHA-256 is in the profile. Two runs on the same data show the same
  digest;
- source: the file (`local`, its absolute path), the database (`sql`, URL with its password masked, and the
  query), the generator and its seed (`generator`, `builtin`), or the user's `_target_` and its arguments
  (`code`). The seed that split the rows is in each;
- schema, for tables (`data=table`, `data=sql`): the raw columns the model reads, MLflow's column-spec JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dlexp.tracking.outcomes import SPLITS, fingerprint
from dlexp.tracking.store import redact

DIGEST_CHARS = 36  # MLflow's limit on a dataset digest
CONTEXT_TAG = "mlflow.data.context"
GENERATED = {"synthetic": "dlexp.data.synthetic", "sequence": "dlexp.data.sequence"}
BUILTIN = {"digits": "sklearn.datasets.load_digits"}
NOT_DATA = {"batch_size", "num_workers", "name"}  # keys of a data section that do not change the rows


def describe(data_cfg, splits, evals: dict | None, *, seed: int) -> list[dict]:
    """One dict per split the run has a fingerprint for (from the eval pass, else from the split's arrays)."""
    evals = evals or {}
    section = _plain(data_cfg)
    base = _base_name(section)
    schema = table_schema(splits)
    described = []
    for split in SPLITS:
        ev = evals.get(split)
        fp = ev.fingerprint if ev is not None else _array_fingerprint(splits, split)
        if fp is None:
            continue
        profile = {"fingerprint": fp, "num_rows": int(ev.total if ev is not None and ev.total is not None
                                                       else splits.sizes()[split])}
        if ev is not None and ev.total is not None:
            profile["scored_rows"] = int(ev.n)  # diagnosis.max_eval_examples: the digest is the sample's
        source_type, source = split_source(section, split, seed)
        described.append({"context": split, "name": f"{base}-{split}", "digest": fp[:DIGEST_CHARS],
                          "source_type": source_type, "source": json.dumps(source, default=str),
                          "schema": json.dumps(schema) if schema else None, "profile": json.dumps(profile)})
    return described


def table_schema(splits) -> dict | None:
    """MLflow's column-spec schema of a table's raw columns (features, then the target); None for other data."""
    desc = getattr(splits, "description", None) or {}
    if "features" not in desc or "numeric" not in desc:
        return None
    kinds = (getattr(splits, "preprocessing", None) or {}).get("column_types") or {}
    cols = [{"type": kinds.get(c, "double" if c in desc["numeric"] else "string"), "name": c, "required": True}
            for c in desc["features"]]
    if desc.get("task") == "regression":
        target = "double"
    else:
        classes = (getattr(splits, "preprocessing", None) or {}).get("classes", [])
        target = "long" if len(classes) and all(isinstance(c, (int, np.integer)) for c in classes) else "string"
    cols.append({"type": target, "name": str(desc["target"]), "required": True})
    return {"mlflow_colspec": cols}


def log(client, run_id: str, described: list[dict]) -> None:
    """Log `described` (from `describe`) as the run's dataset inputs (tracking process only)."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    inputs = [DatasetInput(Dataset(name=d["name"], digest=d["digest"], source_type=d["source_type"],
                                   source=d["source"], schema=d.get("schema"), profile=d.get("profile")),
                           tags=[InputTag(CONTEXT_TAG, d["context"])])
              for d in described]
    if inputs:
        client.log_inputs(run_id, datasets=inputs)


def _plain(data_cfg) -> dict:
    from omegaconf import DictConfig, OmegaConf

    if isinstance(data_cfg, DictConfig):
        return OmegaConf.to_container(data_cfg, resolve=True, enum_to_str=True)
    return dict(data_cfg)


def _base_name(section: dict) -> str:
    name = str(section.get("name", "data"))
    if "_target_" in section:
        return str(section["_target_"]).rpartition(".")[2] or name
    if name == "sql":
        from sqlalchemy.engine import make_url

        database = make_url(str(section["url"])).database
        return Path(database).stem if database and database != ":memory:" else "sql"
    if section.get("path"):
        return Path(str(section["path"])).stem or name
    return name


def split_source(section: dict, split: str, seed: int) -> tuple[str, dict]:
    """(source type, source) of one split: where its rows came from, and the seed that split or drew them."""
    name = str(section.get("name"))
    if "_target_" in section:
        args = {k: v for k, v in section.items() if k not in NOT_DATA and k != "_target_"}
        return "code", {"_target_": section["_target_"], "args": args, "seed": seed}
    if name == "sql":
        key = _held_out(section, split, "query", "dev_query", "test_query")
        return "sql", {"url": redact(str(section["url"])), "query": section[key], "seed": seed}
    if section.get("path"):
        key = _held_out(section, split, "path", "dev_path", "test_path")
        return "local", {"uri": str(Path(str(section[key])).expanduser().resolve()), "seed": seed}
    params = {k: v for k, v in section.items() if k not in NOT_DATA}
    if name in BUILTIN:
        return "builtin", {"loader": BUILTIN[name], "seed": seed, "params": params}
    return "generator", {"generator": GENERATED.get(name, f"dlexp.data.{name}"), "seed": seed, "params": params}


def _held_out(section: dict, split: str, main: str, dev: str, test: str) -> str:
    """Which key of the section a split's rows came from: dev and test from the serving-distribution source."""
    if split == "test" and section.get(test):
        return test
    if split in ("dev", "test") and section.get(dev):
        return dev
    return main


def _array_fingerprint(splits, split: str) -> str | None:
    part = getattr(splits, split, None)
    if getattr(splits, "datasets", None) is not None or not hasattr(part, "x") or not hasattr(part, "y"):  # the user's own Dataset, scored only by the eval pass
        return None
    return fingerprint(part.x, part.y)
