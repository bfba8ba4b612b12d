"""Where dlexp keeps runs, without importing MLflow: the folder, the tracking URI, and a safe way to print it."""

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
