"""Privacy: empirical membership-inference audits, and the theory beside them.

* :mod:`~assay.privacy.attacks`: LOSS, LiRA and RMIA scores on a population of models,
  computed by the engine of :mod:`~assay.privacy.scoring`; :mod:`~assay.privacy.mia`
  (`run_mia`) runs them and gathers their figures (:mod:`~assay.privacy.results`,
  estimators and per-group vulnerability in :mod:`~assay.privacy.vulnerability`).
* :mod:`~assay.privacy.target`: the same attacks on a model the user trained, with the
  population as its reference models.
* :mod:`~assay.privacy.section`: the privacy section of ``assay audit``.
* :mod:`~assay.privacy.accounting`: f-DP trade-off curves of DP mechanisms.
* :mod:`~assay.privacy.risk`: operational risks read off a trade-off curve.
* :mod:`~assay.privacy.calibrate`: the smallest noise meeting a risk target.

Names are imported from their submodule on first use (dp_accounting alone takes
seconds to import), so ``import assay.privacy`` is instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from assay import _lazy_exports

if TYPE_CHECKING:
    from assay.privacy.accounting import (
        TradeOff,
        approximate_dp,
        compose,
        dpsgd,
        from_pld,
        gaussian_dp,
        gaussian_mechanism,
        laplace_mechanism,
        randomized_response,
        rdp_order,
        rdp_profile,
        zcdp,
    )
    from assay.privacy.attacks import attack_scores, lira_scores, loss_scores, rmia_scores
    from assay.privacy.calibrate import (
        Advantage,
        AttributeInference,
        CalibrationResult,
        Epsilon,
        NoiseRiskCurve,
        Reconstruction,
        Reidentification,
        RiskTarget,
        TPRAtFPR,
        calibrate_dpsgd,
        calibrate_gaussian,
        noise_risk_curve,
        parse_target,
    )
    from assay.privacy.guarantee import DPGuarantee
    from assay.privacy.mia import run_mia
    from assay.privacy.records import most_exposed_records
    from assay.privacy.results import AttackResult, MIAResult
    from assay.privacy.risk import (
        advantage,
        attribute_inference_risk,
        bayes_risk,
        epsilon_at_delta,
        reconstruction_risk,
        reidentification_risk,
        success_bound,
        tpr_at_fpr,
    )
    from assay.privacy.target import applicable_attacks, attack_target
    from assay.privacy.vulnerability import group_vulnerability

__all__, __getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "attacks": ["attack_scores", "lira_scores", "loss_scores", "rmia_scores"],
        "mia": ["run_mia"],
        "results": ["AttackResult", "MIAResult"],
        "records": ["most_exposed_records"],
        "vulnerability": ["group_vulnerability"],
        "target": ["applicable_attacks", "attack_target"],
        "guarantee": ["DPGuarantee"],
        "accounting": [
            "TradeOff",
            "approximate_dp",
            "compose",
            "dpsgd",
            "from_pld",
            "gaussian_dp",
            "gaussian_mechanism",
            "laplace_mechanism",
            "randomized_response",
            "rdp_order",
            "rdp_profile",
            "zcdp",
        ],
        "calibrate": [
            "Advantage",
            "AttributeInference",
            "CalibrationResult",
            "Epsilon",
            "NoiseRiskCurve",
            "Reconstruction",
            "Reidentification",
            "RiskTarget",
            "TPRAtFPR",
            "calibrate_dpsgd",
            "calibrate_gaussian",
            "noise_risk_curve",
            "parse_target",
        ],
        "risk": [
            "advantage",
            "attribute_inference_risk",
            "bayes_risk",
            "epsilon_at_delta",
            "reconstruction_risk",
            "reidentification_risk",
            "success_bound",
            "tpr_at_fpr",
        ],
    },
)
