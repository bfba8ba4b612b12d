"""Hydra's and OmegaConf's composition errors as one line that names the key and the way out."""

from __future__ import annotations

import re

from dlexp.config.schema import SCHEMAS, Config


def explain(exc: BaseException) -> str:
    """Hydra's and OmegaConf's multi-line composition errors as one line naming the key and the choices."""
    text = str(exc)
    cause = exc.__cause__ or exc.__context__
    if cause is not None and type(exc).__name__ == "ConfigCompositionException":
        text = f"{text}\n{cause}"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    full_key = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("full_key:")), None)

    m = re.search(r"Could not find '([^']+)'", text)
    if m:
        group, _, option = m.group(1).rpartition("/")
        choices = re.findall(r"^\t(\S+)$", text.split("Config search path")[0], flags=re.M)
        if choices:
            return f"unknown option '{option}' for {group}; choose one of: {', '.join(choices)}"
        return f"unknown config group or option '{m.group(1)}'"
    if type(exc).__name__ == "OverrideParseException":
        return f"cannot parse the override: {lines[0]} (quote lists in the shell: 'model.hidden=[64,64]')"
    m = re.search(r"Key '([^']+)' (?:is )?not in (?:struct|'(\w+)')", text)
    if m:
        key = full_key or m.group(1)
        schema = re.search(r"object_type=(\w+)", text)
        valid = _valid_keys(key, schema.group(1) if schema else None)
        hint = f"; valid keys: {', '.join(valid)}" if valid else ""
        return f"unknown config key '{key}'{hint}"
    m = re.search(r"Invalid value '([^']*)', expected one of \[([^\]]*)\]", text)
    if m:
        return f"invalid value '{m.group(1)}' for {full_key or 'a config key'}; choose one of: {m.group(2)}"
    m = re.search(r"Value '([^']*)' (?:of type '(\w+)' )?could not be converted to (\w+)", text)
    if m:
        return f"{full_key or 'a config key'} expects {m.group(3).lower()}, got '{m.group(1)}'"
    m = re.search(r"Value '([^']*)' is not a valid bool", text)
    if m:
        return f"{full_key or 'a config key'} expects true or false, got '{m.group(1)}'"
    m = re.search(r"Could not override '([^']+)'", text)
    if m:
        return f"cannot override '{m.group(1)}': {lines[-1]}"
    return lines[0] if lines else type(exc).__name__


def _valid_keys(full_key: str, schema_name: str | None) -> list[str]:
    schemas = [Config] + [node for options in SCHEMAS.values() for node in options.values() if isinstance(node, type)]
    schema = next((node for node in schemas if node.__name__ == schema_name), None)
    if schema is None and "." not in full_key:
        schema = Config
    return list(schema.__dataclass_fields__) if schema else []
