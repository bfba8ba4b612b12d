"""The pure parts of the estimated Bayes-error bracket (dlexp.diagnosis.bayes): its ends and the rule that combines
two models' brackets. The reference model's fit and coverage are in tests/training/test_reference_model.py."""

from __future__ import annotations

import numpy as np
import pytest

from dlexp.diagnosis.bayes import classification_ends, combine, network_bracket


def test_combining_takes_the_lower_upper_end_and_lowers_the_lower_end_by_the_models_gap():
    boosting, network = (0.05, 0.20, 0.15), (0.08, 0.12, 0.09)  # (lower, upper, train-dev error)
    assert combine("classification", boosting, network) == (0.0, 0.12)  # 0.05 - a gap of 0.06: floored at 0
    assert combine("classification", (0.10, 0.20, 0.15), (0.12, 0.18, 0.14)) == pytest.approx((0.09, 0.18))
    assert combine("regression", (0.8, 1.3, 1.1), (0.9, 1.2, 1.05)) == (0.8, 1.2)  # resubstitution: the lower
    assert combine("classification", None, network) == (0.08, 0.12)  # the network alone (data=text)


def test_the_upper_end_of_a_classifier_is_wilsons_and_the_lower_its_plug_in_lowered_by_noise():
    confidence = np.full(200, 0.8)
    wrong = np.arange(200) < 20  # 10% wrong
    lower, upper = classification_ends(confidence, wrong)
    assert upper == pytest.approx(0.1494, abs=1e-4)  # Wilson's 95% upper end for 20 of 200
    assert lower == pytest.approx(0.2)  # every row 80% sure: the plug-in 1 - 0.8 has no spread to lower it by
    # a plug-in above the upper end (an under-confident model) is capped there
    assert network_bracket("classification", confidence=confidence, wrong=wrong) == (upper, upper, 0.1)
