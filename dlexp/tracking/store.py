"""Where dlexp keeps runs, without importing MLflow: the folder, the tracking URI, whether a local store exists,
how a config becomes dotted param names, and a safe way to print a URI."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def runs_dir() -> Path:
    """$DLEXP_RUNS_DIR, or ./runs: the SQLite store, its artifacts and in-progress files."""
    return Path(os.environ.get("DLEXP_RUNS_DIR", "runs")).resolve()


def store_uri(uri: str | None = None) -> str:
    """`uri` when given, else $DLEXP_TRACKING_URI, else the SQLite store runs/mlflow.db."""
    uri = uri or os.environ.get("DLEXP_TRACKING_URI")
    return uri if uri else f"sqlite:///{runs_dir() / 'mlflow.db'}"


def redact(uri: str) -> str:
    """A tracking URI without its password, fit for messages, params and tags.

    >>> redact("postgresql://ana:s3cret@db:5432/mlflow")
    'postgresql://ana:***@db:5432/mlflow'
    """
    parts = urlsplit(uri)
    if parts.password:
        return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))
    return uri


_CREDENTIALS = re.compile(r"(\b[a-zA-Z][\w+.-]*://[^:/@\s]*:)[^@\s]+@")


def scrub(text: str) -> str:
    """Any text with the password of every URL in it masked: for error messages, log lines and tags.

    >>> scrub("cannot reach http://ana:s3cret@db:5000/api (timeout)")
    'cannot reach http://ana:***@db:5000/api (timeout)'
    """
    return _CREDENTIALS.sub(r"\1***@", text)


def scrub_tree(value):
    """A config, document or list with the password of every URL in every string masked: what a run stores.

    >>> scrub_tree({"data": {"url": "postgresql://ana:s3cret@db/wh"}, "cmd": ["dlexp", "x=http://a:b@h"], "n": 3})
    {'data': {'url': 'postgresql://ana:***@db/wh'}, 'cmd': ['dlexp', 'x=http://a:***@h'], 'n': 3}
    """
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: scrub_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(scrub_tree(v) for v in value)
    return value


CREDENTIALS_HINT = ("a password in a URL is masked (***) in everything the run stores; credentials belong in the "
                    "environment: MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD for a tracking server, "
                    "and a database URL read from a variable (\"data.url='${oc.env:WAREHOUSE_URL}'\")")


MASK = ":***@"  # what a URL's password becomes in everything a run stores


def masked(arg: str) -> bool:
    """Whether an override (as a stored command repeats it) holds a URL whose password dlexp masked.

    >>> masked("tracking.uri=http://ana:***@db:5000"), masked("data.url=postgresql://ana@db/wh")
    (True, False)
    """
    return MASK in arg


def has_credentials(texts) -> bool:
    """Whether any of these strings holds a URL with a password.

    >>> has_credentials(["seed=1", "data.url=postgresql://ana:s3cret@db/wh"]), has_credentials(["seed=1"])
    (True, False)
    """
    return any(scrub(t) != t for t in texts)


def sqlite_path(uri: str) -> Path | None:
    """The file behind a local SQLite store (`sqlite:///...`); None for any other store."""
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


def require_store(uri: str | None = None) -> str:
    """The store's URI; a local store that does not exist yet is one clear error, before MLflow is imported."""
    from dlexp.errors import StoreError

    target = store_uri(uri)
    path = sqlite_path(target)
    # a command killed before its run reached a store it was to create leaves a journal (journal.py): the
    # command that records it creates the store
    if path is not None and not path.exists() and not any((runs_dir() / "work").glob("*/journal.jsonl")):
        raise StoreError(f"no dlexp runs at {path.parent} yet; run `dlexp train` first "
                         "(or set DLEXP_RUNS_DIR to the folder that holds mlflow.db)")
    return target


def flatten(tree: dict, prefix: str = "") -> dict:
    """A nested config as dotted keys, the way MLflow keeps it as params.

    >>> flatten({"data": {"n_train": 10}, "seed": 0})
    {'data.n_train': 10, 'seed': 0}
    """
    out: dict = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        out.update(flatten(value, name + ".") if isinstance(value, dict) else {name: value})
    return out
