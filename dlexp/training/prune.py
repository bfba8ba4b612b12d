"""Stop a clearly losing candidate early: Optuna's MedianPruner against the incumbent's dev curve.

The recipe trains each candidate with `prune.against` (the incumbent's dev error per epoch), `prune.from_epoch`
and `prune.margin`. At the end of each epoch the candidate's best dev error so far is reported to a one-trial
Optuna study whose only completed trial is the incumbent, its curve raised by the margin (the noise of a dev
error); from `from_epoch` on, the pruner stops the candidate when that best is above the incumbent's raised
value at the same epoch. Beyond the incumbent's last epoch there is nothing to compare with: it trains on.

>>> rule = Rule([0.50, 0.40, 0.30, 0.25], from_epoch=2, margin=0.02)
>>> [rule.report(e, v) for e, v in enumerate([0.60, 0.50, 0.45], start=1)]
[False, True, True]
>>> rule = Rule([0.50, 0.40, 0.30], from_epoch=2, margin=0.02)
>>> [rule.report(e, v) for e, v in enumerate([0.60, 0.41, 0.31, 0.9], start=1)]
[False, False, False, False]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# the rule the recipe uses, chosen on recorded candidates (benchmarks/prune_rule.py, docs/recipe.md): compare from
# this share of the longer run's epochs on (the incumbent's or the candidate's planned ones: a candidate that
# regularizes and trains twice as long is behind at first), with this many standard errors of the incumbent's dev
# error as margin. From a quarter of the incumbent's epochs, an accepted candidate (dropout, 2x epochs) was stopped.
FROM_SHARE = 0.5
MARGIN_SE = 3.0


def margin_of(dev_error: float, n_dev: int, k: float = MARGIN_SE) -> float:
    """k standard errors of a dev error measured on n_dev examples (a binomial proportion).

    >>> round(margin_of(0.3, 1000), 4)
    0.0435
    """
    p = min(max(dev_error, 0.0), 1.0)
    return k * math.sqrt(max(p * (1 - p), 0.25 / max(n_dev, 1)) / max(n_dev, 1))


def from_epoch_of(epochs: int, share: float = FROM_SHARE) -> int:
    """The first epoch compared: `share` of the longer run's epochs, at least the 2nd.

    >>> from_epoch_of(20), from_epoch_of(5), from_epoch_of(1)
    (10, 3, 2)
    """
    return max(2, math.ceil(share * epochs))


class Rule:
    """The pruner's verdict, epoch by epoch, for one candidate against the incumbent's curve."""

    def __init__(self, against: Sequence[float], *, from_epoch: int, margin: float):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        pruner = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=from_epoch, n_min_trials=1)
        self.study = optuna.create_study(direction="minimize", pruner=pruner)
        raised = {e: float(v) + margin for e, v in enumerate(against, start=1)}
        if raised:
            self.study.add_trial(optuna.trial.create_trial(value=raised[len(raised)], intermediate_values=raised))
        self.trial = self.study.ask()

    def report(self, epoch: int, dev_error: float) -> bool:
        """Report the candidate's dev error at `epoch` (1-based); True when it should stop."""
        self.trial.report(float(dev_error), epoch)
        return bool(self.trial.should_prune())


def would_stop(curve: Sequence[float], against: Sequence[float], *, from_epoch: int, margin: float) -> int | None:
    """The epoch at which the rule would have stopped a recorded candidate (None: it trains to the end).

    >>> would_stop([0.6, 0.5, 0.45, 0.4], [0.5, 0.4, 0.3, 0.25], from_epoch=2, margin=0.02)
    2
    """
    rule = Rule(against, from_epoch=from_epoch, margin=margin)
    for epoch, value in enumerate(curve, start=1):
        if rule.report(epoch, value):
            return epoch
    return None
