"""The accuracy / fairness front: candidates, held-out scores, rejection, selection.

`build_front` fits every mitigation method over its hyper-parameters on the training
rows (post-processors on separate calibration rows: scores of a model on its own
training rows are over-confident; the unmitigated model decides at the one threshold
that is best for balanced accuracy there, so no fix is credited with what
re-thresholding alone buys), scores every candidate on **held-out** rows it never
saw (accuracy with a Wilson interval, balanced accuracy and every gap with bootstrap
intervals, per attribute and intersection), and then:

- **rejects** degenerate candidates, with the reason recorded: constant decisions,
  balanced accuracy at or below `CHANCE_BALANCED_ACCURACY` (chance level), or one
  decision for every row of a supported group;
- keeps the **non-dominated** set on (balanced accuracy, the constraint's gap);
- **prefers** one by a stated `Preference`, e.g.
  ``"balanced_accuracy >= best - 0.01, then eo"`` (the default for the constraint):
  constraints first, then the objective, among the candidates whose gap (the worst of
  every attribute and intersection) is below the unmitigated model's at no more than
  ``max_cost`` balanced accuracy. A rejected candidate is never preferred; when no
  candidate meets the constraints, the one closest to meeting them is, and the result
  says so;
- **confirms** it on rows that took no part in choosing (`Verdict`): it is *chosen* as
  the fix only when the paired-bootstrap interval of (its gap - the unmitigated model's
  gap) lies below ``-min_reduction`` and it gives up at most ``max_cost`` balanced
  accuracy there. Otherwise the result is "no fix found", with the reason, and the
  preferred candidate is shown as a candidate only.

The choice is confirmed on half of the held-out rows or by repeated cross-fitting
(`assay.fairness.crossfit`); the verdict's statistics are in `assay.fairness.verdict`,
the preference's in `assay.fairness.preference`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from assay._serial import Serial, from_json, meta
from assay._stats import Estimate
from assay._validation import InvalidParameterError, check_option, check_scalar
from assay.fairness.candidates import (
    CHANCE_BALANCED_ACCURACY,
    Candidate,
    _jsonable,
    score_candidate,
)
from assay.fairness.crossfit import (
    CONFIRM_BY,
    confirmation_split,
    crossfit_confirmation,
    has_support,
)
from assay.fairness.metrics import format_estimate
from assay.fairness.preference import (
    Preference,
    default_preference,
    non_dominated,
    parse_preference,
    prefer_candidate,
)
from assay.fairness.verdict import (
    DEFAULT_MAX_COST,
    DEFAULT_MIN_REDUCTION,
    VERDICT_MIN_COUNT,
    PairedComparison,
    Verdict,
    compare_paired,
    judge,
    points_estimate,
)

__all__ = [
    "CHANCE_BALANCED_ACCURACY",
    "CONFIRM_BY",
    "DEFAULT_MAX_COST",
    "DEFAULT_MIN_REDUCTION",
    "METHODS",
    "VERDICT_MIN_COUNT",
    "Candidate",
    "FrontResult",
    "PairedComparison",
    "Preference",
    "Verdict",
    "balanced_threshold",
    "build_front",
    "compare_paired",
    "default_preference",
    "parse_preference",
]

#: Mitigation methods of the front ("reductions" needs fairlearn).
METHODS = ("thresholds", "score_transformer", "fair_boost", "reductions")
DEFAULT_METHODS = ("thresholds", "score_transformer", "fair_boost")
#: Hyper-parameter grids.
EPSILONS = (0.0, 0.01, 0.03, 0.06, 0.1)
RATE_OFFSETS = (-0.1, -0.06, -0.04, -0.02, 0.0, 0.02, 0.04, 0.06, 0.1)


@dataclass
class FrontResult(Serial):
    """Every candidate, the front, the baseline and the verdict.

    Attributes
    ----------
    constraint : str
    preference : str
        The preference in words, with the baseline's figures filled in.
    candidates : list of Candidate
    baseline : int
        Index of the unmitigated model.
    chosen : int or None
        The fix: the preferred candidate when the confirmation rows confirm it
        (`verdict`), else None ("no fix found": nothing is named or exported as the fix).
    preferred : int
        The candidate the preference picked on the test rows, among those whose gap there
        is below the unmitigated model's at the stated cost (the best candidate, shown as
        a candidate only when it is not confirmed).
    verdict : Verdict or None
        Fix found or not, and why.
    note : str
        How the preference picked (e.g. that no candidate met its constraints).
    rows : dict
        Rows used: ``train``, ``calibration``, ``test`` (every candidate is scored and
        the choice is made on these) and ``confirmation`` (held out from the choice).
    confirmation : dict of str to Candidate
        ``"baseline"`` and ``"candidate"`` (the preferred one) scored again on the
        confirmation rows, which took
        no part in fitting or choosing: figures free of the optimism of picking the best
        of many candidates on the same rows. Empty when there were no such rows.
    test_rows, confirmation_rows : array of int or None
        Row positions of the test and confirmation rows (not serialised).
    seconds : float
    """

    constraint: str
    preference: str
    candidates: list[Candidate]
    baseline: int
    chosen: int | None
    preferred: int = 0
    verdict: Verdict | None = None
    note: str = ""
    rows: dict[str, int] = field(default_factory=dict)
    confirmation: dict[str, Candidate] = field(default_factory=dict)
    test_rows: np.ndarray | None = field(default=None, metadata=meta(skip=True))
    confirmation_rows: np.ndarray | None = field(default=None, metadata=meta(skip=True))
    seconds: float = 0.0
    confirmed_by: str = field(default="split",
                              metadata=meta(schema={"enum": ["split", "crossfit"]}))
    crossfit: dict[str, Any] = field(default_factory=dict,
                                     metadata=meta(encode=lambda v: _jsonable(v)))

    __json_layout__ = ("constraint", "preference",
                       ("front", lambda s: [c.index for c in s.front]), "chosen",
                       "preferred", "verdict", "baseline",
                       ("rejected", lambda s: [c.index for c in s.rejected]), "candidates",
                       "note", "rows", "confirmation", "seconds", "confirmed_by", "crossfit")

    @property
    def front(self) -> list[Candidate]:
        return [c for c in self.candidates if c.on_front]

    @property
    def rejected(self) -> list[Candidate]:
        return [c for c in self.candidates if c.rejected]

    @property
    def chosen_candidate(self) -> Candidate | None:
        """The confirmed fix, or None when no fix was found."""
        return None if self.chosen is None else self.candidates[self.chosen]

    @property
    def preferred_candidate(self) -> Candidate:
        return self.candidates[self.preferred]

    @property
    def fixed(self) -> bool:
        return self.chosen is not None

    @property
    def baseline_candidate(self) -> Candidate:
        return self.candidates[self.baseline]

    def verdict_text(self) -> str:
        """"Fix found: ..." or "No fix found: ..." with the reason."""
        return self.verdict.reason if self.verdict is not None else ""

    def confirmation_text(self) -> str | None:
        """The preferred candidate and the baseline on the confirmation rows (balanced
        accuracy, and the constraint's gap over every grouping), in one sentence."""
        if "candidate" not in self.confirmation:
            return None
        comp = self.verdict.comparison if self.verdict is not None else None
        gap, base_gap = (None, None) if comp is None else (comp.gap, comp.baseline_gap)

        def figures(c: Candidate, gap: Estimate | None) -> str:
            return (f"balanced accuracy {format_estimate(c.balanced_accuracy)}, largest "
                    f"{self.constraint} gap {points_estimate(gap)}")

        who = "the chosen model" if self.fixed else "the best candidate (not a fix)"
        if self.confirmed_by == "crossfit":
            cf = self.crossfit
            who = "the choosing procedure's out-of-fold decisions (first repeat)"
            return (f"Cross-fitted over {cf.get('folds')} folds x {cf.get('repeats')} "
                    f"repeats of the {self.rows.get('confirmation', 0)} held-out rows, each "
                    f"row decided by a choice it took no part in: {who} have "
                    f"{figures(self.confirmation['candidate'], gap)}; the "
                    f"unmitigated model "
                    f"{figures(self.confirmation['baseline'], base_gap)}.")
        return (f"On {self.rows.get('confirmation', 0)} rows that took no part in the choice, "
                f"{who} has {figures(self.confirmation['candidate'], gap)}; "
                f"the unmitigated model "
                f"{figures(self.confirmation['baseline'], base_gap)}.")

    def held_out_predictions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(row positions, decisions, scores) on the rows that took no part in choosing
        (the confirmation rows; the test rows when there are none) of the chosen model,
        or of the unmitigated model when no fix was found."""
        key, index = ("candidate", self.preferred) if self.fixed else ("baseline", 0)
        rows: np.ndarray | None
        if key in self.confirmation and self.confirmation_rows is not None:
            c, rows = self.confirmation[key], self.confirmation_rows
        else:
            c, rows = self.candidates[index], self.test_rows
        if rows is None or c.y_pred is None:
            raise ValueError("held_out_predictions needs the front as built: one read back "
                             "from JSON keeps its figures, not its predictions.")
        return rows, c.y_pred, c.score

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FrontResult:
        """Inverse of `to_dict`; results written before ``preferred`` preferred the fix."""
        return from_json(cls, {"preferred": d.get("chosen") or 0, **d})

    def summary_dict(self) -> dict[str, Any]:
        """The CLI's JSON: ``front``, ``chosen`` (null: no fix found), ``preferred``,
        ``baseline``, ``rejected`` as points, and the ``verdict``."""
        def point(c: Candidate) -> dict[str, Any]:
            d = c.to_dict()
            d.pop("groups")
            return d

        return {"constraint": self.constraint, "preference": self.preference,
                "front": [point(c) for c in self.front],
                "chosen": None if self.chosen is None else point(self.candidates[self.chosen]),
                "preferred": point(self.preferred_candidate),
                "verdict": None if self.verdict is None else self.verdict.to_dict(),
                "baseline": point(self.baseline_candidate),
                "rejected": [point(c) for c in self.rejected], "note": self.note,
                "rows": dict(self.rows),
                "confirmation": {k: point(c) for k, c in self.confirmation.items()},
                "seconds": float(self.seconds), "confirmed_by": self.confirmed_by,
                "crossfit": _jsonable(self.crossfit)}



# --------------------------------------------------------------------------- building


def _rows(mask_or_index, n: int, name: str) -> np.ndarray:
    arr = np.asarray(mask_or_index)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise InvalidParameterError(f"{name} must be a boolean mask of {n} rows. Got "
                                        f"shape {arr.shape}.")
        return np.flatnonzero(arr)
    return arr.astype(np.int64)


def build_front(
    X,
    y,
    groups: pd.DataFrame,
    *,
    train,
    calibration,
    test,
    constraint: str = "eo",
    methods: Sequence[str] = DEFAULT_METHODS,
    base_estimator: Any = None,
    base_scores=None,
    baseline_name: str = "gradient boosting (unmitigated)",
    prefer: str | None = None,
    min_support: int = 50,
    min_count: int = VERDICT_MIN_COUNT,
    n_bootstrap: int = 200,
    n_rounds: int = 60,
    confirm: float = 0.5,
    confirm_by: str = "auto",
    folds: int = 5,
    repeats: int = 3,
    min_reduction: float = DEFAULT_MIN_REDUCTION,
    max_cost: float = DEFAULT_MAX_COST,
    random_state: int = 0,
    n_jobs: int = 1,
    progress=None,
) -> FrontResult:
    """Fit every candidate, score it on the test rows, reject, find the front, choose.

    Parameters
    ----------
    X : array of shape (n_rows, n_features)
        Encoded features (fair boosting and the base estimator read them).
    y : array of shape (n_rows,)
        0/1 labels.
    groups : DataFrame of shape (n_rows, n_protected)
    train, calibration, test : bool masks or row positions
        Rows to fit models on, to fit post-processors and choose the boosting size on,
        and to score every candidate on (disjoint).
    constraint : {"dp", "eo", "eodds"}, default="eo"
    methods : sequence of str
        Among "thresholds", "score_transformer", "fair_boost", "reductions".
    base_estimator : unfitted classifier, optional
        The unmitigated model (default scikit-learn's HistGradientBoostingClassifier),
        fitted on the training rows. It decides at one threshold for everyone, the best
        for balanced accuracy on the calibration rows (`balanced_threshold`), so a fix
        is credited only with what group-aware mitigation adds.
    base_scores : array of shape (n_rows,), optional
        Scores of a model already trained (the user's): it is the baseline and the
        post-processors read it; nothing is refitted. Excludes fair boosting and
        reductions only if they are not asked for.
    prefer : str, optional
        Preference (`parse_preference`); default `default_preference` (constraint).
    min_support, min_count : int, default=50, 100
        Group rows, and rows of a rate's denominator, for a group to enter a gap
        (`VERDICT_MIN_COUNT`: each rate known to about +/-10 points).
    n_bootstrap : int
        Bootstrap resamples of each candidate's intervals.
    n_rounds : int
        Boosting rounds (every round is a candidate on the grid).
    confirm : float in [0, 1), default=0.5
        Share of the test rows held back from scoring the candidates and choosing: the
        baseline and the chosen model are scored again on them (`FrontResult.confirmation`),
        so the chosen model's figures are not flattered by having been picked, among many,
        on the rows that measure it. 0 scores and chooses on every test row, and then no
        fix can be confirmed. Not used when cross-fitting.
    confirm_by : {"auto", "split", "crossfit"}, default="auto"
        How the choice is confirmed: on the `confirm` share of the test rows ("split"),
        or by repeated cross-fitting over every test row ("crossfit": `folds` folds,
        `repeats` fold assignments; see the module docstring). "auto" cross-fits where
        the split's confirmation rows would leave a grouping without two groups of
        enough support.
    folds, repeats : int, default=5, 3
        Cross-fitting folds and repeats.
    min_reduction : float, default=0
        A candidate is chosen as the fix only when, on the confirmation rows, the 95 %
        paired-bootstrap interval of (its largest gap - the unmitigated model's largest
        gap, over every attribute and intersection) lies below ``-min_reduction``: 0 asks
        for a reduction the rows can tell from none; 0.02 for one of at least 2 points.
    max_cost : float, default=0.02
        Balanced accuracy a fix may give up against the unmitigated model, on the
        confirmation rows (point estimate; its interval is reported). Candidates that
        give up more on the test rows, or whose gap there is not below the unmitigated
        model's, are not preferred at all.
    random_state : int
    n_jobs : int, default=1
        Threads of the native libraries (OpenMP, BLAS) while the front is built. One
        thread is the safe default on a shared machine: gradient boosting's OpenMP loops
        slow down tenfold when their threads compete for busy cores.
    progress : callable(str), optional
        Told what is being fitted.

    Returns
    -------
    FrontResult
    """
    from threadpoolctl import threadpool_limits

    check_scalar(n_jobs, "n_jobs", kind=int, low=1)
    with threadpool_limits(n_jobs):
        return _build_front(X, y, groups, train=train, calibration=calibration, test=test,
                            constraint=constraint, methods=methods,
                            base_estimator=base_estimator, base_scores=base_scores,
                            baseline_name=baseline_name, prefer=prefer,
                            min_support=min_support, min_count=min_count,
                            n_bootstrap=n_bootstrap, n_rounds=n_rounds, confirm=confirm,
                            confirm_by=confirm_by, folds=folds, repeats=repeats,
                            min_reduction=min_reduction, max_cost=max_cost,
                            random_state=random_state, progress=progress)


def _build_front(X, y, groups, *, train, calibration, test, constraint, methods,
                 base_estimator, base_scores, baseline_name, prefer, min_support, min_count,
                 n_bootstrap, n_rounds, confirm, confirm_by, folds, repeats, min_reduction,
                 max_cost, random_state, progress) -> FrontResult:
    started = time.perf_counter()
    check_option(constraint, "constraint", ("dp", "eo", "eodds"))
    methods = tuple(dict.fromkeys(methods))
    for m in methods:
        check_option(m, "method", METHODS)
    if "reductions" in methods:
        _require_fairlearn(methods)
    preference = parse_preference(prefer or default_preference(constraint))
    check_scalar(n_rounds, "n_rounds", kind=int, low=1)
    confirm = check_scalar(confirm, "confirm", low=0.0, high=1.0, high_open=True)
    check_option(confirm_by, "confirm_by", CONFIRM_BY)
    check_scalar(folds, "folds", kind=int, low=2, high=20)
    check_scalar(repeats, "repeats", kind=int, low=1, high=50)
    min_reduction = check_scalar(min_reduction, "min_reduction", low=0.0, high=1.0)
    max_cost = check_scalar(max_cost, "max_cost", low=0.0, high=1.0)
    say = progress or (lambda _: None)
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y).astype(np.int64)
    n = y.shape[0]
    train, cal, test = (_rows(r, n, name) for r, name in
                        ((train, "train"), (calibration, "calibration"), (test, "test")))
    A = groups.reset_index(drop=True)
    # The test rows in order: those the candidates are scored and chosen on, then those
    # held back to confirm the choice. Every prediction covers both; scoring reads the first.
    chosen_on, confirming = confirmation_split(test, y, A, confirm, random_state)
    if confirm_by == "auto":
        # Support depends on labels and groups only (rows, positives, negatives).
        short = confirming.size and not has_support(y[confirming], A.iloc[confirming],
                                                 constraint, min_support, min_count)
        confirm_by = "crossfit" if short else "split"
    if confirm_by == "crossfit":
        # Every test row chooses and confirms, never both in one fold.
        chosen_on, confirming = np.sort(test), np.empty(0, dtype=np.int64)
    test = np.concatenate([chosen_on, confirming])
    on = slice(0, chosen_on.size)
    A_cal, A_test = A.iloc[cal].reset_index(drop=True), A.iloc[test].reset_index(drop=True)
    y_test = y[test]
    common = dict(min_support=min_support, min_count=min_count, n_bootstrap=n_bootstrap,
                  random_state=random_state)
    held: list[tuple[np.ndarray, np.ndarray | None]] = []
    from assay.fairness.mitigate import (
        FairBoostClassifier,
        FairScoreTransformer,
        GroupThresholdClassifier,
    )

    candidates: list[Candidate] = []

    def add(method, params, model, pred, score):
        pred = np.asarray(pred).astype(np.int64)
        score = None if score is None else np.asarray(score)
        held.append((pred, score))
        candidates.append(score_candidate(len(candidates), method, params, y_test[on],
                                          pred[on], None if score is None else score[on],
                                          A_test.iloc[on].reset_index(drop=True), **common))
        candidates[-1].model = model

    # The unmitigated model.
    if base_scores is not None:
        scores = np.asarray(base_scores, dtype=np.float64)
        base = None
        say("reading the model's scores")
    else:
        from sklearn.base import clone
        from sklearn.ensemble import HistGradientBoostingClassifier

        base = clone(base_estimator) if base_estimator is not None else \
            HistGradientBoostingClassifier(random_state=random_state)
        say(f"fitting the unmitigated model ({type(base).__name__})")
        base.fit(X[train], y[train])
        scores = np.full(n, np.nan)
        need = np.concatenate([cal, test])
        scores[need] = base.predict_proba(X[need])[:, 1]
    # One threshold for everyone, the best for balanced accuracy on the calibration rows:
    # a fix then gets no credit for what re-thresholding alone buys (0.5 on an imbalanced
    # target gives up a lot of balanced accuracy; every post-processor re-thresholds).
    cut = balanced_threshold(scores[cal], y[cal])
    add("baseline", {"model": baseline_name, "threshold": cut}, base, scores[test] >= cut,
        scores[test])

    s_cal, s_test = scores[cal], scores[test]
    if "thresholds" in methods:
        say("group thresholds")
        # One threshold per intersection, and per group of each single attribute: the
        # latter pool more rows per threshold, so their rates vary less off the fitting
        # rows (the gaps on intersections are then not held to the common rate).
        columns = [str(c) for c in A.columns]
        for by in [None] + (columns if len(columns) > 1 else []):
            first = GroupThresholdClassifier(None, constraint=constraint, by=by,
                                             min_support=min_count)
            first.fit(s_cal, y[cal], sensitive_features=A_cal)
            rates = sorted({round(float(np.clip(first.target_rate_ + d, 0.02, 0.98)), 3)
                            for d in RATE_OFFSETS})
            for rate in rates:
                model = GroupThresholdClassifier(None, constraint=constraint,
                                                 target_rate=rate, by=by,
                                                 min_support=min_count)
                model.fit(s_cal, y[cal], sensitive_features=A_cal)
                # Decisions from the scores already computed; the model then reads X.
                pred = model.predict(s_test, sensitive_features=A_test)
                _attach(model, base)
                add("thresholds", {"constraint": constraint, "by": by or "intersection",
                                   "target_rate": rate}, model, pred, None)
    if "score_transformer" in methods:
        say("fair score transformer")
        for eps in EPSILONS:
            model = FairScoreTransformer(None, constraint=constraint, epsilon=eps,
                                         min_support=min_support)
            model.fit(s_cal, y[cal], sensitive_features=A_cal)
            s = model.transform_scores(s_test, sensitive_features=A_test)
            _attach(model, base)
            add("score_transformer", {"constraint": constraint, "epsilon": eps}, model,
                s >= model.threshold, s)
    if "fair_boost" in methods:
        say(f"fair boosting ({n_rounds} rounds)")
        boost = FairBoostClassifier(constraint=constraint, n_estimators=n_rounds,
                                    min_support=min_count, random_state=random_state)
        boost.fit(X[train], y[train], sensitive_features=A.iloc[train].reset_index(drop=True),
                  X_val=X[cal], y_val=y[cal], sensitive_val=A_cal)
        staged = boost._staged_F(X[test])
        total = len(boost.estimators_)
        rounds = sorted({*np.unique(np.linspace(1, total, 12).round().astype(int)).tolist(),
                         boost.n_estimators_})
        for t in rounds:
            F = staged[t - 1]
            add("fair_boost", {"constraint": constraint, "rounds": int(t),
                               "chosen_on_validation": t == boost.n_estimators_},
                boost.with_rounds(t), F > 0, 1 / (1 + np.exp(-2 * F)))
    if "reductions" in methods:
        _reductions(add, X, y, A, train, test, constraint, random_state, say)

    mask = non_dominated(candidates, constraint)
    for c, on in zip(candidates, mask):
        c.on_front = bool(on)
    baseline = candidates[0]
    preferred, note, eligible, refs = prefer_candidate(candidates, constraint, preference, max_cost)
    crossfit: dict[str, Any]
    confirmation, comparison, crossfit = {}, None, {}
    kw = dict(min_support=min_support, min_count=min_count, random_state=random_state)
    if confirming.size:
        rest = slice(chosen_on.size, None)
        A_rest = A_test.iloc[rest].reset_index(drop=True)
        for name, i in (("baseline", 0), ("candidate", preferred))[:2 if preferred else 1]:
            pred, score = held[i]
            c = candidates[i]
            confirmation[name] = score_candidate(
                i, c.method, c.params, y_test[rest], pred[rest],
                None if score is None else score[rest], A_rest, **common)
        if preferred:
            comparison = compare_paired(y_test[rest], held[preferred][0][rest],
                                        held[0][0][rest], A_rest, constraint, **kw)
    elif confirm_by == "crossfit" and preferred and eligible:
        say(f"cross-fitting the choice ({folds} folds x {repeats} repeats)")
        comparison, crossfit, stitched = crossfit_confirmation(
            [h[0] for h in held], candidates, y_test, A_test, constraint=constraint,
            preference=preference, max_cost=max_cost, folds=folds, repeats=repeats,
            preferred=preferred, **kw)
        confirmation["baseline"] = score_candidate(0, baseline.method, baseline.params,
                                                   y_test, held[0][0], held[0][1], A_test,
                                                   **common)
        c = candidates[preferred]
        confirmation["candidate"] = score_candidate(preferred, c.method, c.params, y_test,
                                                    stitched, None, A_test, **common)
    verdict = judge(candidates, preferred, bool(eligible), comparison,
                    constraint=constraint, n_choosing=int(chosen_on.size),
                    min_reduction=min_reduction, max_cost=max_cost, min_count=min_count,
                    crossfit=crossfit or None)
    return FrontResult(constraint=constraint, preference=preference.describe(refs),
                       candidates=candidates, baseline=0,
                       chosen=preferred if verdict.fixed else None, preferred=preferred,
                       verdict=verdict, note=note,
                       rows={"train": int(len(train)), "calibration": int(len(cal)),
                             "test": int(chosen_on.size),
                             "confirmation": int(confirming.size or (
                                 chosen_on.size if crossfit else 0))},
                       confirmation=confirmation, test_rows=chosen_on,
                       confirmation_rows=confirming if not crossfit else chosen_on,
                       seconds=round(time.perf_counter() - started, 3),
                       confirmed_by=confirm_by, crossfit=crossfit)



def balanced_threshold(scores: np.ndarray, y: np.ndarray) -> float:
    """The cut ``scores >= t`` with the highest balanced accuracy on these rows (ties: the
    one nearest 0.5); 0.5 when the rows hold one class. Decisions given as 0/1 scores
    stay as they are (t = 1)."""
    from sklearn.metrics import roc_curve

    scores, y = np.asarray(scores, dtype=np.float64), np.asarray(y)
    if np.unique(y).size < 2:
        return 0.5
    fpr, tpr, cuts = roc_curve(y, scores)
    keep = np.isfinite(cuts)
    bal = (tpr[keep] + 1 - fpr[keep]) / 2
    cuts = cuts[keep]
    best = np.flatnonzero(bal >= bal.max() - 1e-12)
    return float(cuts[best[np.argmin(np.abs(cuts[best] - 0.5))]])



def _attach(model: Any, base: Any) -> None:
    """A post-processor fitted on scores, made to read X through the fitted base model."""
    if base is not None:
        model._attach(base)


def _require_fairlearn(methods) -> None:
    """The reductions backend is optional: asking for it without fairlearn is an error
    before anything is trained, not a silently missing method."""
    try:
        import fairlearn.reductions  # noqa: F401
    except ImportError:
        raise InvalidParameterError(
            f"methods must not include 'reductions' unless fairlearn is installed (pip "
            f"install fairlearn). Got {tuple(methods)}.") from None


def _reductions(add, X, y, A, train, test, constraint, random_state, say) -> None:
    """fairlearn's ExponentiatedGradient (logistic regression); fairlearn is checked first."""
    from fairlearn.reductions import (
        DemographicParity,
        EqualizedOdds,
        ExponentiatedGradient,
        TruePositiveRateParity,
    )
    from sklearn.linear_model import LogisticRegression

    say("fairlearn reductions (exponentiated gradient)")
    moment = {"dp": DemographicParity, "eo": TruePositiveRateParity,
              "eodds": EqualizedOdds}[constraint]
    sensitive = A.astype(str).agg("|".join, axis=1)
    for eps in (0.01, 0.05):
        model = ExponentiatedGradient(LogisticRegression(max_iter=500), moment(),
                                      eps=eps)
        model.fit(X[train], y[train], sensitive_features=sensitive.iloc[train])
        pred = model.predict(X[test], random_state=random_state)
        add("reductions", {"constraint": constraint, "eps": eps}, model, pred, None)
