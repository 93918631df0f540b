"""Membership inference on regression models: assay's attacks against IBM ART's, side by side.

Five public tables with a continuous target, two model families:

* development tables, on which the attacks' settings were chosen (LiRA's atom at exact
  fits, its fixed variance below 64 references): law school ``ZFYA`` (first-year grade,
  standardised) from the table's default features; COMPAS ``priors_count``, German credit
  ``credit_amount`` and bank ``balance``, each from the table's other default features;
* the check table, run once after the choice and never tuned on: Adult
  ``hours-per-week`` from its other columns (as benchmarks/ridge.py);
* ridge regression (``alpha=1``, assay's batched `fit_ridge`) and a fully grown
  `sklearn.tree.DecisionTreeRegressor`.

A balanced plan of ``K + 2`` models (every row in half of them): models ``0..K-1`` are
assay's references, models ``K`` and ``K+1`` (a complementary pair) are the targets, each
attacked in turn. The rows are split once, at random and independently of membership,
into an *attack split* and an *evaluation split* of equal size:

* **ART** (the baseline): `art.attacks.inference.membership_inference.MembershipInferenceBlackBox`
  with ``input_type="loss"`` (the only input its docs allow for a regressor) on the target
  wrapped as `ScikitlearnRegressor`, trained as its docs prescribe: ``fit`` on the target's
  members and non-members of the attack split, ``infer(..., probabilities=True)`` on the
  evaluation split. Its default attack model (``"nn"``) and a random forest (``"rf"``).
* **assay**: LOSS, LiRA (online and offline) on residuals and RMIA with a Gaussian
  likelihood (`assay.privacy.membership.regression`), the references above; the target's
  partner is never a reference (it is coupled to the target through the split).

Both are scored on the same rows (the evaluation split) of the same target models with
the same code (`evaluate_scores`: AUC, and the TPR at 1 % FPR of the conservative ROC).
Every figure is the mean over the two targets. Writes benchmarks/results/regression_mia.json.

German credit has 1,000 rows: its evaluation split holds too few non-members to read a
TPR at 1 % FPR, so only its AUC is reported. The load average of the machine is recorded
before and after.

Usage: ``python benchmarks/regression_mia.py [--references 16] [--seed 0] [--art nn,rf]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

DEFAULT_HOME = Path(__file__).resolve().parents[2] / "shared" / "datasets"
OUT = Path(__file__).resolve().parent / "results" / "regression_mia.json"
FPR = 0.01
ASSAY_ATTACKS = ("loss", "lira", "lira_offline", "rmia", "lira_before", "lira_offline_before")
ART_MODELS = ("nn", "rf")


def _law(home: Path):
    from assay.data import load
    from assay.data.read import read_table

    raw = read_table(home / "law_school.csv")
    ds = load("law", data_home=home)
    X = np.asarray(ds.dense_X("the regression membership benchmark"), dtype=np.float64)
    rows = raw.set_index("row_id").loc[np.asarray(ds.row_ids)]
    return X, rows["ZFYA"].to_numpy(dtype=np.float64)


def _adult(home: Path):
    from assay.data import load
    from assay.data.read import read_table

    raw = read_table(home / "adult.csv.gz")
    columns = [c for c in raw.columns if c not in ("hours-per-week", "income")]
    ds = load("adult", data_home=home, features=columns, protected=["sex"],
              na_values=["?"], missing="impute")
    X = np.asarray(ds.dense_X("the regression membership benchmark"), dtype=np.float64)
    y = raw["hours-per-week"].to_numpy(dtype=np.float64)[np.asarray(ds.row_ids, dtype=int)]
    return X, y


def _public_target(name: str, target: str):
    """Table `name` with its default features but `target` as the value to predict."""
    from assay.data import load
    from assay.data.public import PUBLIC_TABLES
    from assay.data.read import read_table

    def loader(home: Path):
        table = PUBLIC_TABLES[name]
        raw = read_table(home / table.file)
        if table.prepare is not None:
            raw = table.prepare(raw)
        features = [c for c in table.options["features"] if c != target]
        ds = load(name, data_home=home, features=features)
        X = np.asarray(ds.dense_X("the regression membership benchmark"), dtype=np.float64)
        row_id = table.options.get("row_id")
        ids = np.asarray(ds.row_ids)
        rows = raw.set_index(row_id).loc[ids] if row_id else raw.iloc[ids.astype(int)]
        return X, rows[target].to_numpy(dtype=np.float64)

    return loader


# (loader, role): settings were chosen on "development" tables only; "check" ran once.
TABLES = {"law school ZFYA": (_law, "development"),
          "compas priors_count": (_public_target("compas", "priors_count"), "development"),
          "german credit_amount": (_public_target("german", "credit_amount"), "development"),
          "bank balance": (_public_target("bank", "balance"), "development"),
          "adult hours-per-week": (_adult, "check")}


def _predictions(family: str, X, y, member, seed: int) -> np.ndarray:
    """Every model's predictions on every row: (K, N)."""
    if family == "ridge":
        from assay.learners.ridge import fit_ridge

        return fit_ridge(X, y, member, alpha=1.0).predict(X)
    from sklearn.tree import DecisionTreeRegressor

    return np.stack([DecisionTreeRegressor(random_state=seed + k).fit(X[m], y[m]).predict(X)
                     for k, m in enumerate(member)])


def _tree_model(X, y, m, seed):
    from sklearn.tree import DecisionTreeRegressor

    return DecisionTreeRegressor(random_state=seed).fit(X[m], y[m])


def _ridge_model(X, y, m):
    from sklearn.linear_model import Ridge

    return Ridge(alpha=1.0).fit(X[m], y[m])


def _art_scores(model, X, y, in_target, attack_rows, eval_rows, attack_model: str, seed: int):
    """ART's black-box attack on one target, trained on the attack split, scored on the
    evaluation split (membership probabilities)."""
    import torch
    from art.attacks.inference.membership_inference import MembershipInferenceBlackBox
    from art.estimators.regression.scikitlearn import ScikitlearnRegressor

    torch.manual_seed(seed)
    np.random.seed(seed)
    attack = MembershipInferenceBlackBox(ScikitlearnRegressor(model), input_type="loss",
                                         attack_model_type=attack_model)
    train_in = attack_rows[in_target[attack_rows]]
    train_out = attack_rows[~in_target[attack_rows]]
    attack.fit(X[train_in], y[train_in], X[train_out], y[train_out])
    return np.asarray(attack.infer(X[eval_rows], y[eval_rows], probabilities=True),
                      dtype=np.float64).reshape(-1)


def _assay_scores(name, preds, member, target, refs, y):
    from assay.privacy.membership import regression as reg

    if name == "loss":
        return reg.loss_scores(preds[target], y)
    if name in ("lira", "lira_offline"):
        return reg.lira_scores(preds[refs], member[refs], preds[target], y,
                               online=name == "lira")
    if name in ("lira_before", "lira_offline_before"):
        return reg.lira_scores(preds[refs], member[refs], preds[target], y,
                               online=name == "lira_before", variance="per_row",
                               exact_fit_atom=False)
    return reg.rmia_scores(preds[refs], member[refs], preds[target], member[target], y)


def _figures(scores, in_target) -> dict:
    from assay.privacy.membership.regression import evaluate_scores

    f = evaluate_scores(scores, in_target, FPR)
    return {"auc": f.auc.value, "tpr": None if f.tpr is None else f.tpr.value,
            "auc_ci": [f.auc.ci_low, f.auc.ci_high],
            "tpr_ci": None if f.tpr is None else [f.tpr.ci_low, f.tpr.ci_high],
            "n_members": f.n_members, "n_nonmembers": f.n_nonmembers}


def _mean(per_target: list[dict]) -> dict:
    tprs = [f["tpr"] for f in per_target]
    return {"auc": float(np.mean([f["auc"] for f in per_target])),
            "tpr": None if None in tprs else float(np.mean(tprs)),
            "per_target": per_target}


def run_case(X, y, family: str, n_refs: int, seed: int,
             art_models: tuple[str, ...] = ART_MODELS) -> dict:
    from assay.engine import PopulationPlan

    n = y.size
    member = PopulationPlan.balanced(n, n_refs + 2, random_state=seed).member
    started = time.perf_counter()
    preds = _predictions(family, X, y, member, seed)
    fit_seconds = time.perf_counter() - started
    rng = np.random.default_rng(seed + 1)
    order = rng.permutation(n)
    attack_rows, eval_rows = np.sort(order[: n // 2]), np.sort(order[n // 2:])
    refs = np.arange(n_refs)
    per: dict[str, list[dict]] = {name: [] for name in ASSAY_ATTACKS}
    per.update({f"art_{m}": [] for m in art_models})
    seconds: dict[str, float] = {}
    for target in (n_refs, n_refs + 1):
        in_target = member[target]
        for name in ASSAY_ATTACKS:
            t0 = time.perf_counter()
            scores = _assay_scores(name, preds, member, target, refs, y)
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - t0
            per[name].append(_figures(scores[eval_rows], in_target[eval_rows]))
        # The same target model as an sklearn estimator for ART (its predictions are
        # checked equal to the ones assay attacked).
        model = _ridge_model(X, y, in_target) if family == "ridge" \
            else _tree_model(X, y, in_target, seed + target)
        np.testing.assert_allclose(model.predict(X), preds[target], rtol=1e-6, atol=1e-6)
        for m in art_models:
            t0 = time.perf_counter()
            scores = _art_scores(model, X, y, in_target, attack_rows, eval_rows, m, seed)
            seconds[f"art_{m}"] = seconds.get(f"art_{m}", 0.0) + time.perf_counter() - t0
            per[f"art_{m}"].append(_figures(scores, in_target[eval_rows]))
    sq = np.square(preds[n_refs] - y)
    return {"mse_members": float(sq[member[n_refs]].mean()),
            "mse_nonmembers": float(sq[~member[n_refs]].mean()),
            "fit_seconds_all_models": fit_seconds, "attack_seconds": seconds,
            "attacks": {name: _mean(v) for name, v in per.items()}}


def main() -> None:
    import torch
    from threadpoolctl import threadpool_limits

    parser = argparse.ArgumentParser()
    parser.add_argument("--references", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--art", default=",".join(ART_MODELS),
                        help="ART attack models to run beside assay's, comma-separated.")
    parser.add_argument("--data-home", type=Path,
                        default=Path(os.environ.get("ASSAY_DATA_HOME", DEFAULT_HOME)))
    args = parser.parse_args()
    torch.set_num_threads(1)
    import art

    art_models = tuple(m for m in args.art.split(",") if m)
    load_before = os.getloadavg()
    started = time.perf_counter()
    results = {}
    with threadpool_limits(1):
        for table, (loader, role) in TABLES.items():
            X, y = loader(args.data_home)
            for family in ("ridge", "tree"):
                key = f"{table} / {family}"
                results[key] = run_case(X, y, family, args.references, args.seed, art_models)
                results[key].update(rows=int(X.shape[0]), features=int(X.shape[1]),
                                    role=role)
                print(f"{key}: done", flush=True)
    names = [*ASSAY_ATTACKS, *(f"art_{m}" for m in art_models)]
    print(f"\nMembership inference on regression models, evaluation split, mean of 2 "
          f"targets; TPR at {FPR:.0%} FPR (baseline: ART {art.__version__} "
          f"MembershipInferenceBlackBox, input_type='loss')")
    print(f"{'case':36s} " + " ".join(f"{n[:17]:>17s}" for n in names))
    for key, res in results.items():
        cells = []
        for n in names:
            a = res["attacks"][n]
            tpr = "  n/a" if a["tpr"] is None else f"{a['tpr']:.3f}"
            cells.append(f"{a['auc']:.3f} / {tpr:>5s}".rjust(17))
        print(f"{key:36s} " + " ".join(cells))
    print("(each cell: AUC / TPR@1%FPR)")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "fpr": FPR, "references": args.references, "targets": 2, "seed": args.seed,
        "baseline": f"ART {art.__version__} MembershipInferenceBlackBox(input_type='loss', "
                    "attack_model_type in {nn (default), rf}), trained on the attack split",
        "development_tables": [t for t, (_, role) in TABLES.items() if role == "development"],
        "check_tables": [t for t, (_, role) in TABLES.items() if role == "check"],
        "before": "lira_before / lira_offline_before: LiRA with per-row Gaussians through "
                  "every residual (variance='per_row', exact_fit_atom=False), as before",
        "cores": os.cpu_count(), "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "wall_seconds": time.perf_counter() - started,
        "python": platform.python_version(), "results": results}, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
