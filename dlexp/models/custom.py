"""The user's own model: `model._target_` (a class or a function) called with the section's other keys.

Hydra's `instantiate` builds it, so nested `_target_`s and `_partial_` work as in any Hydra project (a
lightning-hydra-template model config runs as it is). The working directory is importable. dlexp offers
`n_classes`, `n_features`, `input_shape` and `vocab` to each callable whose signature names them (the top one
also through **kwargs) where the config does not set them; every other argument comes from the config, and the
signature of each callable is checked first, so a typo is one line instead of a traceback from the user's code.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

from dlexp.errors import ConfigError
from dlexp.targets import importable, locate

RESERVED = ("name", "knobs")  # dlexp's own keys of a model section: never passed to the callable


def build(model_cfg, *, n_features: int, n_classes: int, input_shape: tuple[int, ...] = (),
          vocab: int | None = None, **_):
    """The module `model._target_` returns: an nn.Module of logits, or a LightningModule."""
    import hydra.utils
    from omegaconf import OmegaConf
    from torch import nn

    importable()
    config = {k: v for k, v in OmegaConf.to_container(model_cfg, resolve=True).items() if k not in RESERVED}
    offered = {"n_classes": n_classes, "n_features": n_features, "input_shape": tuple(input_shape), "vocab": vocab}
    target = str(config["_target_"])
    check(config, "model", offered=offered)
    config.setdefault("_convert_", "all")  # plain lists and dicts for the user's code
    try:
        out = hydra.utils.instantiate(config)
    except Exception as exc:  # the user's own code failed: its own message, on one line
        cause = exc.__cause__ or exc
        text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        raise ConfigError(f"{target}(...) failed: {type(cause).__name__}: {text}") from None
    if not isinstance(out, nn.Module):
        raise ConfigError(f"{target}() returned {type(out).__name__}, not a torch nn.Module; return the network "
                          "(one logit per class, one output for regression) or a LightningModule")
    return out


def check(config: dict, path: str, *, offered: Mapping, top: bool = True):
    """Import every `_target_` in `config`, give each callable what dlexp offers that its signature names (the top
    one: also through **kwargs) and the config does not set, and match the keys against its signature."""
    target = str(config["_target_"])
    fn = locate(target, path)
    for key, value in config.items():
        if isinstance(value, dict) and "_target_" in value:
            check(value, f"{path}.{key}", offered=offered, top=False)
    params = parameters(fn)
    for name, value in offered.items():
        named = params is not None and name in params
        if name not in config and (named or (top and takes(fn, name))):
            config[name] = value
    if params is None:  # no signature to read (a builtin): the call itself will tell
        return fn
    open_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    given = [k for k in config if not (k.startswith("_") and k.endswith("_"))]
    for key in given:
        if not open_kwargs and key not in params:
            names = [n for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            raise ConfigError(f"{target}() got an unexpected argument '{key}' ({path}.{key}); it takes: "
                              f"{', '.join(names) or 'no arguments'}")
    if config.get("_partial_"):
        return fn
    for name, p in params.items():
        required = p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        if required and name not in given:
            raise ConfigError(f"{target}() needs the argument '{name}': set {path}.{name}=VALUE")
    return fn


def parameters(fn) -> dict | None:
    try:
        return dict(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return None


def takes(fn, name: str) -> bool:
    """Whether `fn` accepts the keyword `name` (by name, or through **kwargs)."""
    params = parameters(fn)
    if params is None:
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
