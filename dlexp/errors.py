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
