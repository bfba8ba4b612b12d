"""dlexp: train a model, measure its error on four splits, and say what to fix next."""

__version__ = "0.1.0"
