"""Privacy: empirical membership-inference audits, and the theory beside them.

* :mod:`~assay.privacy.attacks` and :mod:`~assay.privacy.vulnerability`: LOSS, LiRA and
  RMIA on a population of models, with per-group vulnerability.
* :mod:`~assay.privacy.accounting`: f-DP trade-off curves of DP mechanisms.
* :mod:`~assay.privacy.risk`: operational risks read off a trade-off curve.
* :mod:`~assay.privacy.calibrate`: the smallest noise meeting a risk target.
"""

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
from assay.privacy.attacks import (
    AttackResult,
    MIAResult,
    attack_scores,
    lira_scores,
    loss_scores,
    rmia_scores,
    run_mia,
)
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
from assay.privacy.vulnerability import group_vulnerability, most_exposed_records
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

__all__ = [
    "AttackResult",
    "MIAResult",
    "attack_scores",
    "group_vulnerability",
    "lira_scores",
    "loss_scores",
    "most_exposed_records",
    "rmia_scores",
    "run_mia",
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
    "advantage",
    "attribute_inference_risk",
    "bayes_risk",
    "epsilon_at_delta",
    "reconstruction_risk",
    "reidentification_risk",
    "success_bound",
    "tpr_at_fpr",
]
