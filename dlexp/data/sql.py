"""A table from a database: any SQLAlchemy URL and a query; then the same path as `data=table`."""

from __future__ import annotations

from pathlib import Path

from dlexp.data import Splits
from dlexp.data.table import checked_frame, from_frames
from dlexp.errors import ConfigError, DataError, first_line


def _engine(url: str):
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError("data.url is not a SQLAlchemy URL: expected DIALECT[+DRIVER]://USER@HOST/DATABASE "
                          "(e.g. sqlite:///shop.db, postgresql://user@host/db)") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        # SQLite would silently create an empty database for a mistyped path
        if not Path(parsed.database).expanduser().is_file():
            raise DataError(f"data.url: no such SQLite database file: {parsed.database}")
    try:
        return create_engine(parsed)
    except (NoSuchModuleError, ModuleNotFoundError, ImportError) as exc:
        raise ConfigError(f"data.url: no driver for {parsed.drivername}: {first_line(exc)} "
                          "(pip install the database's driver)") from None


def shown(engine) -> str:
    """The engine's URL for messages, its password masked (SQLAlchemy's own masking)."""
    return engine.url.render_as_string(hide_password=True)


def query(engine, sql: str, key: str):
    import pandas as pd
    from sqlalchemy import text

    try:
        with engine.connect() as conn:
            frame = pd.read_sql_query(text(sql), conn)
    except Exception as exc:  # sqlalchemy.exc.DBAPIError and friends: the database's own message
        orig = getattr(exc, "orig", None) or exc
        raise DataError(f"{key} failed on {shown(engine)}: {first_line(orig)}") from None
    return checked_frame(frame, f"{key} returned no rows")


def build(cfg, *, seed: int) -> Splits:
    engine = _engine(cfg.url)
    try:
        main = query(engine, cfg.query, "data.query")
        dev = query(engine, cfg.dev_query, "data.dev_query") if cfg.dev_query else None
        test = query(engine, cfg.test_query, "data.test_query") if cfg.test_query else None
    finally:
        engine.dispose()
    return from_frames(cfg, main, dev, test, seed=seed,
                       where=("data.query", cfg.dev_query and "data.dev_query", cfg.test_query and "data.test_query"))
