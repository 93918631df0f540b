"""DP training calibrated to an attack-risk target, audited against its own guarantee.

* `assay.privacy.training.train`: the noise for a risk target (and, for comparison, for the
  ε that the classic (ε, δ) reading of the same target needs), DP-SGD training with the batched
  learners of `assay.learners.dpsgd`, and export of the model without pickle (``.npz``
  weights + JSON config);
* `assay.privacy.training.check`: the empirical attack ROC against the f-DP curve, point by point
  within its interval (a broken run, e.g. noise off, is caught);
* `assay.privacy.training.onerun`: the one-run audit (Steinke, Nasr, Jagielski 2023): canaries in a
  single training run give an empirical lower bound on ε;
* `assay.privacy.training.section`: the ``dp`` section of ``assay audit`` and its page.

Names are imported from their submodule on first use.
"""

from __future__ import annotations

from assay import _lazy_exports

__all__, __getattr__, __dir__ = _lazy_exports(
    __name__,
    {
        "train": ["DPModel", "DPTrainingResult", "calibrate_noise", "epsilon_for_target",
                  "guarantee_figures", "load_dp_model", "train_dp"],
        "check": ["GuaranteeCheck", "check_guarantee"],
        "onerun": ["OneRunAudit", "epsilon_lower_bound", "one_run_audit"],
    },
)
