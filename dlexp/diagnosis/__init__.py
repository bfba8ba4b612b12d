"""The diagnosis core: four split errors against a human-level baseline -> gaps -> verdict -> actions.

Pure: numbers and plain mappings in, frozen dataclasses out. It never imports torch, Lightning, MLflow or
rich, so `dlexp diagnose` stays fast and every rule here is testable by table. One module per step:

- `splits`: the names (splits, gaps, verdicts) and `SplitErrors`;
- `intervals`: 95% intervals (Wilson, Newcombe/MOVER, seed spread); `bootstrap` for regression (numpy);
- `verdict`: `diagnose()`, the gaps and the verdict rule;
- `actions`: `recommend()`, the next steps as exact commands;
- `document`: `Report`, the JSON document and the MLflow names;
- `analysis` (per-class errors, numpy) and `powerlaw` (learning-curve fit, scipy), loaded only where used.

>>> d = diagnose(SplitErrors(human=0.01, train=0.15, train_dev=0.155, dev=0.16, test=0.16))
>>> d.verdict, d.problems
('avoidable_bias', ('avoidable_bias',))
"""

from dlexp.diagnosis.actions import Action, merge_overrides, recommend
from dlexp.diagnosis.document import Report, what_if
from dlexp.diagnosis.intervals import intervals, mover, newcombe, t975, wilson
from dlexp.diagnosis.splits import (ALL_GAP_TERMS, DEFAULT_TOLERANCE, GAP_TERMS, GAPS, GENERATED_SOURCES, JOINT_GAP,
                                    SPLITS, VERDICTS, Z95, SplitErrors, check_error, gap_terms)
from dlexp.diagnosis.verdict import Diagnosis, Gap, diagnose

__all__ = ["ALL_GAP_TERMS", "JOINT_GAP", "gap_terms",
           "Action", "DEFAULT_TOLERANCE", "Diagnosis", "GAPS", "GAP_TERMS", "GENERATED_SOURCES", "Gap", "Report",
           "SPLITS", "SplitErrors", "VERDICTS", "Z95", "check_error", "diagnose", "intervals", "merge_overrides",
           "mover", "newcombe", "recommend", "t975", "what_if", "wilson"]
