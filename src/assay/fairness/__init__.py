"""Fairness: whom a model treats worse, how sure we are, and a model that fixes it.

* :mod:`~assay.fairness.metrics`: rates per group and intersection with intervals, gaps
  (demographic parity, equal opportunity, equalized odds, predictive parity) with
  bootstrap intervals, flags, and a gap's spread over a population of models.
* :mod:`~assay.fairness.mitigate`: fair boosting, a fair score transformer and group
  thresholds (scikit-learn estimators).
* :mod:`~assay.fairness.pareto`: the front: every candidate fitted and scored on held-out
  rows (:mod:`~assay.fairness.candidates`), the non-dominated set and the stated
  preference (:mod:`~assay.fairness.preference`), the choice confirmed on a split or by
  cross-fitting (:mod:`~assay.fairness.crossfit`) and judged
  (:mod:`~assay.fairness.verdict`).
* :mod:`~assay.fairness.export`: the chosen model without pickle (skops) and its card.
* :mod:`~assay.fairness.regression_front`: a regression model's front
  (Wasserstein-barycenter post-processing, bounded group loss), chosen on half of the
  held-out rows and confirmed on the other half by the same verdict.
* :mod:`~assay.fairness.section`: the fairness section of ``assay audit``.

Names are imported from their submodule on first use, so ``import assay.fairness`` is
instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from assay import _lazy_exports

if TYPE_CHECKING:
    from assay.fairness.candidates import Candidate
    from assay.fairness.export import export_model, load_model, model_card
    from assay.fairness.metrics import (
        GAPS,
        FairnessReport,
        Gap,
        GapSpread,
        GroupRates,
        fairness_metrics,
        gap_spread,
    )
    from assay.fairness.mitigate import (
        FairBoostClassifier,
        FairScoreTransformer,
        GroupThresholdClassifier,
    )
    from assay.fairness.pareto import FrontResult, build_front
    from assay.fairness.preference import Preference, parse_preference

__all__, __getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "metrics": ["GAPS", "FairnessReport", "Gap", "GapSpread", "GroupRates",
                    "fairness_metrics", "gap_spread"],
        "mitigate": ["FairBoostClassifier", "FairScoreTransformer",
                     "GroupThresholdClassifier"],
        "candidates": ["Candidate"],
        "pareto": ["FrontResult", "build_front"],
        "preference": ["Preference", "parse_preference"],
        "export": ["export_model", "load_model", "model_card"],
    },
)
