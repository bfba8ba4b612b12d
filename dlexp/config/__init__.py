"""dlexp's config: the typed schemas Hydra composes from (schema.py), the checks of a composed config
(checks.py), the human-level error's forms (human.py) and composition errors as one line (errors.py).

Imports Hydra and OmegaConf only, never torch: a typo fails at composition, not ten minutes into training.
"""

from dlexp.config.checks import check, is_open, name_model, prepare, reject_unknown
from dlexp.config.errors import explain
from dlexp.config.human import human_error, human_range, human_source
from dlexp.config.schema import CUSTOM_DATA_KEYS, SCHEMAS, Config, register

__all__ = ["CUSTOM_DATA_KEYS", "SCHEMAS", "Config", "check", "explain", "human_error", "human_range", "human_source",
           "is_open", "name_model", "prepare", "register", "reject_unknown"]
