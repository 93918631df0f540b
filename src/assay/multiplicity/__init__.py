"""Arbitrariness: would an equally good model have decided differently?

* :mod:`~assay.multiplicity.metrics`: per-row and aggregate multiplicity metrics of a set
  of models (ambiguity, discrepancy, viable prediction range, score deviation,
  self-consistency, Rashomon capacity).
* :mod:`~assay.multiplicity.rashomon`: candidate models through the population engine,
  the ε-Rashomon set on held-out rows, every figure as a curve over ε, per group.
* :mod:`~assay.multiplicity.churn`: decisions that flip between two model versions.
* :mod:`~assay.multiplicity.section`: the multiplicity section of ``assay audit``
  (options, flags, checks); :mod:`~assay.multiplicity.run` its run and payload;
  :mod:`~assay.multiplicity.page` its page in the report.

Names are imported from their submodule on first use, so ``import assay.multiplicity``
is instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from assay import _lazy_exports

if TYPE_CHECKING:
    from assay.multiplicity.churn import ChurnResult, churn_bound, predictive_churn
    from assay.multiplicity.metrics import (
        RowMetrics,
        ambiguity,
        decisions,
        discrepancy,
        rashomon_capacity,
        reversals,
        row_metrics,
        score_std,
        self_consistency,
        viable_prediction_range,
    )
    from assay.multiplicity.rashomon import (
        Candidates,
        EpsilonFigures,
        GroupFigures,
        MultiplicityCurve,
        fit_candidates,
        held_out_losses,
        multiplicity_curve,
        random_heldout,
        rashomon_plan,
        rashomon_sets,
    )

__all__, __getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "metrics": [
            "RowMetrics",
            "ambiguity",
            "decisions",
            "discrepancy",
            "rashomon_capacity",
            "reversals",
            "row_metrics",
            "score_std",
            "self_consistency",
            "viable_prediction_range",
        ],
        "rashomon": [
            "Candidates",
            "EpsilonFigures",
            "GroupFigures",
            "MultiplicityCurve",
            "fit_candidates",
            "held_out_losses",
            "multiplicity_curve",
            "random_heldout",
            "rashomon_plan",
            "rashomon_sets",
        ],
        "churn": ["ChurnResult", "churn_bound", "predictive_churn"],
    },
)
