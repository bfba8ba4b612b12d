"""The user's own callables named by `_target_` (a model, a data source): the working directory importable, and
the object found as Hydra's `instantiate` finds it, or one line saying why not. Standard library only."""

from __future__ import annotations

import importlib
import os
import sys

from dlexp.errors import ConfigError


def importable() -> None:
    """The working directory on sys.path, as `python -c` and `python -m` have it."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def locate(target: str, path: str):
    """The object `target` names (`pkg.mod.Name`, as Hydra's instantiate finds it), or one line saying why not."""
    parts, module, error, i = target.split("."), None, f"No module named '{target}'", 0
    where = f"{path}._target_ '{target}' cannot be imported"
    for i in range(len(parts), 0, -1):
        name = ".".join(parts[:i])
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
                error = f"No module named '{exc.name}'"
                continue  # `name` is no module: a shorter one may hold the rest as attributes
            raise ConfigError(f"{where}: {name} imports what is not installed: {exc}") from None
        except Exception as exc:  # the user's module failed while importing
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ConfigError(f"{where}: importing {name} raised {type(exc).__name__}: {text}") from None
        break
    if module is None:
        raise ConfigError(f"{where}: {error} (the working directory {os.getcwd()} is importable)")
    fn = module
    for attr in parts[i:]:
        if not hasattr(fn, attr):
            raise ConfigError(f"{where}: {'.'.join(parts[:i])} has no '{attr}'")
        fn = getattr(fn, attr)
    if not callable(fn):
        raise ConfigError(f"{path}._target_ '{target}' is a {type(fn).__name__}, not a class or a function")
    return fn


def locate_all(node, path: str) -> None:
    """Every `_target_` in a config section (plain dicts and lists, nested), found or one line saying why not;
    a missing one (`???`) is left to the section's own message."""
    if isinstance(node, list):
        for i, value in enumerate(node):
            locate_all(value, f"{path}[{i}]")
    elif isinstance(node, dict):
        target = node.get("_target_")
        if target and target != "???":
            locate(str(target), path)
        for key, value in node.items():
            locate_all(value, f"{path}.{key}")
