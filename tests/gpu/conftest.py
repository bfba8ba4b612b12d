"""Tests marked `gpu` run where torch sees a CUDA device; elsewhere each is skipped with the reason, so that a
CPU machine's summary (`-ra`) says how many did not run. `python benchmarks/device_check.py OUT` runs them
on a GPU machine."""

from __future__ import annotations

import pytest

NO_GPU = ("no CUDA device here (torch.cuda.is_available() is False); these run on a GPU machine: "
          "python benchmarks/device_check.py OUT")


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=NO_GPU)
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)
