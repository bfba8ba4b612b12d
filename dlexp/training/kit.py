"""The Lightning classes one fit uses, from the package its LightningModule is written against.

`pytorch_lightning` and `lightning` (`import lightning as L`: `lightning.pytorch`) are two copies of Lightning
whose classes do not mix: a `lightning` LightningModule needs a `lightning` Trainer, callbacks and checkpoint
plugin. dlexp's own Classifier, and the user's `pytorch_lightning` modules, use `pytorch_lightning`; dlexp's
callbacks and plugin are made subclasses of the other package's bases too when the module comes from there.
"""

from __future__ import annotations

import functools
import logging
from types import SimpleNamespace

PL, LIGHTNING = "pytorch_lightning", "lightning"


def package_of(module) -> str | None:
    """`pytorch_lightning` or `lightning` for a LightningModule of that package; None for a plain nn.Module."""
    roots = {cls.__module__.split(".")[0] for cls in type(module).__mro__ if cls.__name__ == "LightningModule"}
    if PL in roots:
        return PL
    return LIGHTNING if LIGHTNING in roots else None


def quiet() -> None:
    """Lightning's banners (devices, tips) off, in both packages: dlexp prints its own lines. Called again after
    the user's module is imported, since importing a package sets its loggers' levels."""
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)


@functools.cache
def kit(package: str = PL) -> SimpleNamespace:
    """Trainer, Callback, ModelCheckpoint, EarlyStopping, RichProgressBar, TorchCheckpointIO and
    SIGTERMException of `package`."""
    if package == LIGHTNING:
        import lightning.pytorch as pl
        from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
        from lightning.pytorch import callbacks
        from lightning.pytorch.utilities.exceptions import SIGTERMException
    else:
        import pytorch_lightning as pl
        from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
        from pytorch_lightning import callbacks
        from pytorch_lightning.utilities.exceptions import SIGTERMException
    return SimpleNamespace(package=package, Trainer=pl.Trainer, Callback=pl.Callback,
                           ModelCheckpoint=callbacks.ModelCheckpoint, EarlyStopping=callbacks.EarlyStopping,
                           RichProgressBar=callbacks.RichProgressBar, TorchCheckpointIO=TorchCheckpointIO,
                           SIGTERMException=SIGTERMException)


@functools.cache
def adopt(cls: type, package: str) -> type:
    """`cls` (a dlexp callback or checkpoint plugin written against `pytorch_lightning`) as a subclass of the
    same base in `package` as well, so that `package`'s Trainer accepts it; `cls` itself for pytorch_lightning."""
    if package == PL:
        return cls
    theirs = kit(package)
    base = theirs.Callback if issubclass(cls, kit(PL).Callback) else theirs.TorchCheckpointIO
    return type(cls.__name__, (cls, base), {"__doc__": cls.__doc__})
