"""dlexp's own exceptions: each one becomes a single line and an exit code at the command line."""


class DlexpError(Exception):
    """A problem the user can fix; its message names the problem and the way out."""

    exit_code = 2


class ConfigError(DlexpError):
    """A config key, option, type or value that cannot be used."""


class DataError(DlexpError):
    """Data that cannot be read or split."""


class StoreError(DlexpError):
    """The tracking store cannot be opened, or does not hold what was asked for."""

    exit_code = 3


class TrainingError(DlexpError):
    """Training failed for a reason the user can act on."""

    exit_code = 1


def first_line(exc: BaseException, *, mask=None, limit: int = 300) -> str:
    """The first non-empty line of an exception's message, for a one-line error; its type's name when it says
    nothing. `mask` (e.g. `tracking.store.scrub`) cleans the whole text before it is cut to `limit` characters.

    >>> first_line(ValueError("no such column\\n  at row 3"))
    'no such column'
    >>> first_line(KeyError())
    'KeyError'
    """
    text = mask(str(exc)) if mask else str(exc)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0][:limit] if lines else type(exc).__name__
