"""Privacy: how much a model (or a release) reveals about the people it was trained on.

One sub-package a job, each of the same shape (maths modules, ``section.py``, page):

* `assay.privacy.theory`: f-DP trade-off curves of DP mechanisms (``accounting``), the
  operational risks read off them (``risk``), the smallest noise meeting a risk target
  (``calibrate``) and the guarantee a model claims (``guarantee``);
* `assay.privacy.membership`: LOSS, LiRA and RMIA on a population of models (``attacks``,
  ``scoring``, ``mia``) and on the user's own model (``audited_model``), their figures
  (``estimates``, ``results``, ``vulnerability``, ``records``) and the ``privacy`` section;
* `assay.privacy.attribute`, `assay.privacy.distribution`: attribute and distribution
  inference, each with its section;
* `assay.privacy.release`: the checks before a model leaves (``release`` section);
* `assay.privacy.training`: DP-SGD calibrated to a risk target, audited against its own
  guarantee (``dp`` section).

Names are imported from their submodule on first use (dp_accounting alone takes
seconds to import), so ``import assay.privacy`` is instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from assay import _lazy_exports

if TYPE_CHECKING:
    from assay.privacy.membership.attacks import (
        attack_scores,
        lira_scores,
        loss_scores,
        rmia_scores,
    )
    from assay.privacy.membership.audited_model import applicable_attacks, attack_target
    from assay.privacy.membership.mia import run_mia
    from assay.privacy.membership.records import most_exposed_records
    from assay.privacy.membership.results import AttackResult, MIAResult
    from assay.privacy.membership.vulnerability import group_vulnerability
    from assay.privacy.theory.accounting import (
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
    from assay.privacy.theory.calibrate import (
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
    from assay.privacy.theory.guarantee import DPGuarantee
    from assay.privacy.theory.risk import (
        advantage,
        attribute_inference_risk,
        bayes_risk,
        epsilon_at_delta,
        reconstruction_risk,
        reidentification_risk,
        success_bound,
        tpr_at_fpr,
    )

__all__, __getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "membership.attacks": ["attack_scores", "lira_scores", "loss_scores", "rmia_scores"],
        "membership.mia": ["run_mia"],
        "membership.results": ["AttackResult", "MIAResult"],
        "membership.records": ["most_exposed_records"],
        "membership.vulnerability": ["group_vulnerability"],
        "membership.audited_model": ["applicable_attacks", "attack_target"],
        "theory.guarantee": ["DPGuarantee"],
        "theory.accounting": [
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
        "theory.calibrate": [
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
        "theory.risk": [
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
