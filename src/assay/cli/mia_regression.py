"""`assay mia DATA --task regression`: K ridge models on balanced halves, each attacked
in turn by LOSS, LiRA and RMIA on its residuals, the others as references.

Options are checked by `check_regression_options` before anything is loaded; numpy and
the privacy modules are imported inside `run_regression_mia`.
"""

from __future__ import annotations

from typing import Any

from assay._validation import InvalidParameterError, check_option, check_scalar

#: Learners a regression population can use today.
REGRESSION_LEARNERS = ("ridge",)
#: Attacks on residuals (privacy/regression.py), by their --attacks names.
REGRESSION_ATTACKS = ("loss", "lira", "lira_offline", "rmia")
#: The FPR at which a TPR is read.
REGRESSION_FPR = 0.01
CONFIDENCE = 0.95
INTERVAL = ("mean over targets; the hull of the Student-t interval across targets and one "
            "target's row-level interval (Hanley-McNeil for AUC, Clopper-Pearson for TPR), as "
            "the classification attacks report it")


def check_regression_options(learner: str, learner_param: list[str] | None,
                             attacks: list[str], backend: str) -> dict[str, Any]:
    """One-line errors for what a regression population cannot do yet; the ridge
    parameters (``alpha``) on success."""
    if learner not in REGRESSION_LEARNERS:
        raise InvalidParameterError(f"--learner must be one of {', '.join(REGRESSION_LEARNERS)} "
                                    f"with --task regression. Got {learner!r}.")
    if backend != "batched":
        raise InvalidParameterError(f"--backend must be batched with --task regression. "
                                    f"Got {backend!r}.")
    for name in attacks or [""]:
        check_option(name, "attacks (with --task regression)", REGRESSION_ATTACKS)
    from assay.learners import parse_learner_params

    params = parse_learner_params(learner_param or [])
    unknown = sorted(set(params) - {"alpha"})
    if unknown:
        raise InvalidParameterError(f"--learner-param for ridge takes alpha only. "
                                    f"Got {', '.join(unknown)}.")
    alpha = check_scalar(params.get("alpha", 1.0), "--learner-param alpha", low=0.0)
    return {"alpha": float(alpha)}


def _target_scores(name: str, preds, member, k: int, refs, y):
    from assay.privacy.membership import regression as reg
    if name == "loss":
        return reg.loss_scores(preds[k], y)
    if name in ("lira", "lira_offline"):
        return reg.lira_scores(preds[refs], member[refs], preds[k], y,
                               online=name == "lira")
    return reg.rmia_scores(preds[refs], member[refs], preds[k], member[k], y)


def run_regression_mia(X, y, n_models: int, attacks: list[str], alpha: float,
                       seed: int) -> dict[str, Any]:
    """Fit the population, attack every model in turn, and summarise.

    Returns
    -------
    dict
        ``mse`` (members, nonmembers: mean over models) and per attack ``auc`` and
        ``tpr`` (Estimate dicts, mean over targets with the classification attacks'
        interval, `INTERVAL`; ``tpr``
        None with a ``tpr_note`` where the non-members cannot resolve the FPR),
        ``auc_per_target``, ``fpr``, ``n_members``, ``n_nonmembers``.
    """
    import numpy as np

    from assay.engine import PopulationPlan
    from assay.learners.ridge import fit_ridge
    from assay.privacy.membership.estimates import auc_estimate, rate_estimate
    from assay.privacy.membership.regression import evaluate_scores
    from assay.privacy.membership.scoring import complement_partners

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    member = PopulationPlan.balanced(X.shape[0], n_models, random_state=seed).member
    preds = fit_ridge(X, y, member, alpha).predict(X)
    partner = complement_partners(member)
    sq = np.square(preds - y)
    mse = {"members": float(np.mean([sq[k, member[k]].mean() for k in range(n_models)])),
           "nonmembers": float(np.mean([sq[k, ~member[k]].mean()
                                        for k in range(n_models)]))}
    out: dict[str, Any] = {}
    for name in attacks:
        figures = []
        for k in range(n_models):
            # The target's complementary partner is coupled to it through the split.
            refs = np.array([j for j in range(n_models) if j != k and j != partner[k]])
            scores = _target_scores(name, preds, member, k, refs, y)
            figures.append(evaluate_scores(scores, member[k], REGRESSION_FPR, CONFIDENCE))
        aucs = [f.auc.value for f in figures]
        n_pos = np.array([f.n_members for f in figures], dtype=float)
        n_neg = np.array([f.n_nonmembers for f in figures], dtype=float)
        tprs = [f.tpr.value for f in figures if f.tpr is not None]
        hits = np.round(np.array(tprs) * n_pos) if len(tprs) == n_models else None
        out[name] = {
            "auc": auc_estimate(aucs, n_pos, n_neg, CONFIDENCE).to_dict(),
            "auc_per_target": [float(a) for a in aucs],
            "fpr": REGRESSION_FPR,
            "tpr": None if hits is None else rate_estimate(hits, n_pos, CONFIDENCE).to_dict(),
            "tpr_note": None if len(tprs) == n_models else figures[0].tpr_note,
            "n_members": int(np.mean([f.n_members for f in figures])),
            "n_nonmembers": int(np.mean([f.n_nonmembers for f in figures])),
        }
    return {"mse": mse, "attacks": out}


def regression_table(result: dict[str, Any]):
    """The rich table of the attacks' figures."""
    from rich.table import Table

    def ci(e: dict[str, float]) -> str:
        return f"{e['value']:.3f} [{e['ci_low']:.3f}, {e['ci_high']:.3f}]"

    table = Table(title="Membership inference on a regression model "
                        "(mean over targets, 95 % CI: across targets and rows)")
    table.add_column("attack")
    table.add_column("AUC")
    table.add_column(f"TPR@{REGRESSION_FPR:.0%}")
    for name, figures in result["attacks"].items():
        tpr = ci(figures["tpr"]) if figures["tpr"] is not None else \
            f"not estimable ({figures['n_nonmembers']:,} non-members)"
        table.add_row(name, ci(figures["auc"]), tpr)
    return table
