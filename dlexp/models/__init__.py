"""Model families: each module's `build(cfg, *, n_features, n_classes, input_shape, vocab, task)` returns a
torch nn.Module of logits (one output per class; one output for regression; per position for task lm).
A section with `_target_` is the user's own model (`custom.build`)."""

from __future__ import annotations

import importlib

from dlexp.errors import ConfigError

SEQUENCE_FAMILIES = ("gru", "transformer")


def build(model_cfg, *, n_features: int, n_classes: int, input_shape: tuple[int, ...] = (),
          vocab: int | None = None, data_name: str = "the data", task: str = "classification"):
    if "_target_" in model_cfg:
        from dlexp.models import custom

        return custom.build(model_cfg, n_features=n_features, n_classes=n_classes, input_shape=tuple(input_shape),
                            vocab=vocab)
    name = model_cfg.name
    try:
        module = importlib.import_module(f"dlexp.models.{name}")
    except ModuleNotFoundError:
        raise ConfigError(f"unknown model family '{name}'") from None
    if vocab is not None and name not in SEQUENCE_FAMILIES:
        raise ConfigError(f"data={data_name} gives token sequences; use model=gru or model=transformer, "
                          f"not model={name}")
    if vocab is None and name in SEQUENCE_FAMILIES:
        raise ConfigError(f"model={name} reads token sequences (data=sequence); data={data_name} gives "
                          f"inputs of shape {tuple(input_shape)}")
    if task == "lm" and name not in SEQUENCE_FAMILIES:
        raise ConfigError(f"data.task=lm predicts next tokens: use model=gru or model=transformer, not model={name}")
    return module.build(model_cfg, n_features=n_features, n_classes=n_classes,
                        input_shape=tuple(input_shape) or (n_features,), vocab=vocab, data_name=data_name, task=task)
