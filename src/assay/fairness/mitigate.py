"""Mitigation: scikit-learn estimators that trade a little accuracy for smaller gaps.

Three methods, each for several protected attributes and their intersections at once:

- `FairBoostClassifier`: boosting in the spirit of AdaFair / MMM-Fair (own
  implementation). After every round the partial ensemble's group rates are measured on
  the real protected columns (every attribute and every intersection with enough rows);
  each misclassified row is re-weighted by ``1 + (how far its group is behind the best
  group)``, the largest such cost over the groupings (the worst attribute drives the
  update, as in MMM-Fair). Every round is kept, with its objectives, so the front over
  rounds costs nothing more; the ensemble size is chosen on validation rows for
  balanced error plus the gap (AdaFair's post-training step).
- `FairScoreTransformer`: post-processing of any scorer's probabilities r(x) into the
  scores s(x) closest in cross-entropy under linear constraints on group means of s
  (demographic parity; equal opportunity / equalized odds through r-weighted means, as
  in Wei, Natesan Ramamurthy & Calmon 2020/2021). The dual is a concave program in one
  multiplier per constraint, solved with scipy's L-BFGS-B; the primal solution is the
  closed-form root ``s = 2r / ((1 + mu) + sqrt((1 + mu)^2 - 4 mu r))``.
- `GroupThresholdClassifier`: one threshold per intersectional group on any scorer,
  chosen so that every group reaches the same selection rate (dp), TPR (eo) or TPR and
  FPR (eodds, as close as one threshold allows), at the common rate that maximises
  balanced accuracy on the fitting rows. Small groups sharing a value of one attribute
  are pooled (so the attribute's groups reach the rate too); the rest keep the global
  threshold. ``by`` sets thresholds on one attribute (or a sub-intersection) instead.

All take ``sensitive_features`` (a DataFrame, Series or array of protected columns) as a
keyword of ``fit`` and, where the decision depends on the group, of ``predict``. A
post-processor's estimator is used as it is when fitted, and fitted first on the same rows
when not (so it clones and passes scikit-learn's estimator checks). With
``estimator=None`` the post-processors read the base score directly from ``X`` (one
column): that is how a model assay did not train is post-processed from its predictions
file, and how such a post-processor is exported on its own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from assay._validation import DataError, check_option, check_scalar
from assay.fairness.kernels import (
    _FN,
    _FP,
    _TN,
    _TP,
    CONSTRAINTS,
    _attribute_codes,
    _balanced_accuracy,
    _base_scores,
    _binary_target,
    _check_common,
    _counts,
    _fit_sensitive,
    _gap,
    _grouping_codes,
    _groupings,
    _label,
    _rates,
)

__all__ = [
    "CONSTRAINTS",
    "FairBoostClassifier",
    "FairScoreTransformer",
    "GroupThresholdClassifier",
]

#: Fairness constraints every method understands.
_EPS = 1e-6


# --------------------------------------------------------------------------- boosting


class FairBoostClassifier(ClassifierMixin, BaseEstimator):
    """Fair boosting over several protected attributes and their intersections.

    Parameters
    ----------
    constraint : {"dp", "eo", "eodds"}, default="eo"
        The gap the fairness costs act on.
    n_estimators : int, default=100
        Rounds (every one is kept: ``staged_*`` and `with_rounds` reach each).
    max_depth : int, default=3
        Depth of each tree.
    learning_rate : float, default=1.0
        Shrinks each round's weight α.
    min_support : int, default=30
        Groups with fewer rows in the rate's denominator (positives for TPR) get no
        fairness cost and enter no tracked gap: a lag measured on a handful of rows is
        noise.
    cost_scale : float, default=1.0
        Each fairness cost is ``1 + cost_scale * lag``; 0 is plain AdaBoost (the
        objectives are still tracked).
    fairness_weight : float, default=1.0
        Weight of the gap against balanced error when the ensemble size is chosen.
    validation_fraction : float, default=0.2
        Rows held out of training to choose the ensemble size, when no validation set
        is passed to `fit`.
    max_samples : int or None, default=8192
        Each tree is fitted on this many rows drawn with probability proportional to
        their boosting weight (boosting by resampling; Freund & Schapire 1997), which
        keeps a round's cost flat as tables grow; None: every row, weighted.
    random_state : int or None, default=None

    Attributes
    ----------
    estimators_ : list of DecisionTreeClassifier
    alphas_ : ndarray of shape (n_rounds,)
    n_estimators_ : int
        The chosen ensemble size (rounds used by `predict`).
    objectives_ : dict of str to ndarray
        Per round, on the training rows: ``accuracy``, ``balanced_accuracy`` and
        ``gap`` (the constraint's largest gap over the groupings), plus
        ``gap:<grouping>`` per grouping.
    validation_objectives_ : dict of str to ndarray
        ``balanced_accuracy`` and ``gap`` per round on the validation rows.
    groupings_ : list of str
        Grouping keys (``"sex"``, ``"race"``, ``"sex & race"``).
    """

    def __init__(self, constraint: str = "eo", n_estimators: int = 100, max_depth: int = 3,
                 learning_rate: float = 1.0, min_support: int = 30,
                 cost_scale: float = 1.0, fairness_weight: float = 1.0,
                 validation_fraction: float = 0.2,
                 max_samples: int | None = 8192, random_state: int | None = None) -> None:
        self.constraint = constraint
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.min_support = min_support
        self.cost_scale = cost_scale
        self.fairness_weight = fairness_weight
        self.validation_fraction = validation_fraction
        self.max_samples = max_samples
        self.random_state = random_state

    def _check_params(self) -> None:
        _check_common(self.constraint, self.min_support)
        check_scalar(self.n_estimators, "n_estimators", kind=int, low=1)
        check_scalar(self.max_depth, "max_depth", kind=int, low=1)
        check_scalar(self.learning_rate, "learning_rate", low=0, low_open=True)
        check_scalar(self.cost_scale, "cost_scale", low=0)
        check_scalar(self.fairness_weight, "fairness_weight", low=0)
        check_scalar(self.validation_fraction, "validation_fraction", low=0, high=1,
                     high_open=True)
        if self.max_samples is not None:
            check_scalar(self.max_samples, "max_samples", kind=int, low=2)

    # ------------------------------------------------------------------ fit

    def fit(self, X, y, *, sensitive_features=None, X_val=None, y_val=None,
            sensitive_val=None) -> FairBoostClassifier:
        """Boost on (X, y); choose the ensemble size on the validation rows.

        Parameters
        ----------
        X : array-like of shape (n, d)
        y : array-like of shape (n,)
            Two classes (the larger one is the favourable outcome, class 1).
        sensitive_features : DataFrame, Series or array-like, optional
            Protected columns of the rows (none: plain AdaBoost).
        X_val, y_val, sensitive_val : optional
            Validation rows for the ensemble size; default a stratified
            ``validation_fraction`` of the rows (0: the training rows themselves).
        """
        from sklearn.model_selection import train_test_split
        from sklearn.utils.validation import validate_data

        self._check_params()
        y01, self.classes_ = _binary_target(y)
        # scikit-learn's checks: 2-D, finite, dense (a clear error for sparse), one row per
        # label; sets n_features_in_.
        X, _ = validate_data(self, X, y01, dtype=np.float32)
        n = X.shape[0]
        self.columns_, self.categories_ = _fit_sensitive(sensitive_features, n)
        codes = _attribute_codes(sensitive_features, n, self.columns_, self.categories_)
        if X_val is None and self.validation_fraction > 0:
            train, val = train_test_split(np.arange(n), test_size=self.validation_fraction,
                                          random_state=self.random_state, stratify=y01)
            Xv, yv, cv = X[val], y01[val], codes[val]
            X, y01, codes = X[train], y01[train], codes[train]
        elif X_val is not None:
            Xv = np.asarray(X_val, dtype=np.float32)
            yv = np.searchsorted(self.classes_, np.asarray(y_val))
            cv = _attribute_codes(sensitive_val, Xv.shape[0], self.columns_, self.categories_)
        else:
            Xv, yv, cv = X, y01, codes
        self._boost(X, y01, codes)
        self._choose(Xv, yv, cv)
        return self

    def _grouping_arrays(self, codes: np.ndarray):
        out = []
        for combo in _groupings(len(self.columns_)):
            c, size = _grouping_codes(codes, self.categories_, combo)
            out.append((combo, c, size))
        return out

    def _boost(self, X, y, codes) -> None:
        from sklearn.tree import DecisionTreeClassifier

        n = X.shape[0]
        rng = np.random.default_rng(self.random_state)
        groupings = self._grouping_arrays(codes)
        self.groupings_ = [" & ".join(self.columns_[j] for j in combo)
                           for combo, _, _ in groupings]
        w = np.full(n, 1.0 / n)
        F = np.zeros(n)
        self.estimators_, alphas = [], []
        tracked: dict[str, list[float]] = {"accuracy": [], "balanced_accuracy": [], "gap": []}
        for key in self.groupings_:
            tracked[f"gap:{key}"] = []
        for _ in range(self.n_estimators):
            tree = DecisionTreeClassifier(max_depth=self.max_depth,
                                          random_state=int(rng.integers(2**31 - 1)))
            if self.max_samples is not None and self.max_samples < n:
                rows = rng.choice(n, size=self.max_samples, p=w)
                tree.fit(X[rows], y[rows])
            else:
                tree.fit(X, y, sample_weight=w)
            h = tree.predict(X).astype(np.int64)
            miss = h != y
            err = float(np.clip(w[miss].sum() / w.sum(), 1e-10, 1 - 1e-10))
            if err >= 0.5:  # no better than chance on the weighted rows: stop
                break
            alpha = self.learning_rate * 0.5 * np.log((1 - err) / err)
            self.estimators_.append(tree)
            alphas.append(alpha)
            F += alpha * (2 * h - 1)
            pred = (F > 0).astype(np.int64)
            # Objectives of the partial ensemble, and each group's lag behind the best.
            cost = np.ones(n)
            gaps = []
            total = np.bincount(2 * y + pred, minlength=4)
            for _combo, c, size in groupings:
                counts = _counts(c, size, y, pred)
                gaps.append(_gap(counts, self.min_support, self.constraint))
                cost = np.maximum(cost, self._row_cost(counts, c, y, pred))
            tracked["accuracy"].append(float((total[_TN] + total[_TP]) / n))
            tracked["balanced_accuracy"].append(float(_balanced_accuracy(total)))
            for key, g in zip(self.groupings_, gaps):
                tracked[f"gap:{key}"].append(float(g))
            tracked["gap"].append(float(np.nanmax(gaps)) if not np.isnan(gaps).all()
                                  else float("nan"))
            w = w * np.exp(2 * alpha * miss) * cost
            w /= w.sum()
        if not self.estimators_:
            raise DataError("FairBoostClassifier: the first tree is no better than chance; "
                            "there is nothing to learn from X.")
        self.alphas_ = np.asarray(alphas)
        self.objectives_ = {k: np.asarray(v) for k, v in tracked.items()}

    def _row_cost(self, counts, codes, y, pred) -> np.ndarray:
        """1 + how far the row's group is behind, for rows whose error widens the gap
        (groups with at least ``min_support`` rows in the rate's denominator)."""
        rates = _rates(counts)
        pos = counts[:, _FN] + counts[:, _TP]
        neg = counts[:, _TN] + counts[:, _FP]
        den = {"selection_rate": pos + neg, "tpr": pos, "fpr": neg}

        def lag(name, worse_is_low=True):
            v = np.where(den[name] >= self.min_support, rates[name], np.nan)
            if np.sum(~np.isnan(v)) < 2:
                return np.zeros(len(v))
            ref = np.nanmax(v) if worse_is_low else np.nanmin(v)
            return self.cost_scale * np.nan_to_num(np.abs(ref - v), nan=0.0)

        cost = np.ones(len(y))
        if self.constraint in ("eo", "eodds"):
            missed = (y == 1) & (pred == 0)  # a missed positive of a group behind on TPR
            cost = np.where(missed, 1 + lag("tpr")[codes], cost)
        if self.constraint == "eodds":
            false_pos = (y == 0) & (pred == 1)  # a false positive of a group ahead on FPR
            cost = np.where(false_pos, 1 + lag("fpr", worse_is_low=False)[codes], cost)
        if self.constraint == "dp":
            missed = (y == 1) & (pred == 0)
            cost = np.where(missed, 1 + lag("selection_rate")[codes], cost)
            sel = np.where(den["selection_rate"] >= self.min_support,
                           rates["selection_rate"], np.nan)
            if np.sum(~np.isnan(sel)) >= 2:
                ahead = self.cost_scale * np.nan_to_num(sel - np.nanmin(sel), nan=0.0)
                false_pos = (y == 0) & (pred == 1)
                cost = np.where(false_pos, 1 + ahead[codes], cost)
        return cost

    def _choose(self, X, y, codes) -> None:
        """Ensemble size: least balanced error + weight x gap on the validation rows."""
        staged = self._staged_F(X) > 0  # (T, n)
        t, n = staged.shape
        pred = staged.astype(np.int64)
        cell = 2 * y[None, :] + pred
        total = np.bincount((np.arange(t)[:, None] * 4 + cell).reshape(-1),
                            minlength=4 * t).reshape(t, 4)
        bal = _balanced_accuracy(total)
        gaps = []
        for _combo, c, size in self._grouping_arrays(codes):
            flat = (np.arange(t)[:, None] * size + c[None, :]) * 4 + cell
            counts = np.bincount(flat.reshape(-1), minlength=t * size * 4).reshape(t, size, 4)
            gaps.append(_gap(counts, self.min_support, self.constraint))
        stacked = np.nan_to_num(np.stack(gaps), nan=0.0) if gaps else np.zeros((1, t))
        gap = stacked.max(axis=0)
        score = (1 - bal) + self.fairness_weight * gap
        self.validation_objectives_ = {"balanced_accuracy": bal, "gap": gap}
        self.n_estimators_ = int(np.nanargmin(score)) + 1

    # ------------------------------------------------------------------ predict

    def _features(self, X) -> np.ndarray:
        from sklearn.utils.validation import validate_data

        check_is_fitted(self, "estimators_")
        return validate_data(self, X, reset=False, dtype=np.float32)

    def _staged_F(self, X) -> np.ndarray:
        """Decision values after every round: (n_rounds, n)."""
        X = self._features(X)
        votes = np.stack([2 * est.predict(X).astype(np.int64) - 1 for est in self.estimators_])
        return np.cumsum(self.alphas_[:, None] * votes, axis=0)

    def decision_function(self, X) -> np.ndarray:
        """Weighted vote of the first ``n_estimators_`` trees (positive: class 1)."""
        X = self._features(X)
        t = self.n_estimators_
        votes = np.stack([2 * est.predict(X).astype(np.int64) - 1
                          for est in self.estimators_[:t]])
        return (self.alphas_[:t, None] * votes).sum(axis=0)

    def predict_proba(self, X) -> np.ndarray:
        """``sigmoid(2 F)``: boosting's estimate of P(class 1) (Friedman et al. 2000)."""
        p = 1.0 / (1.0 + np.exp(-2.0 * self.decision_function(X)))
        return np.stack([1 - p, p], axis=1)

    def predict(self, X) -> np.ndarray:
        decision = self.decision_function(X)
        return self.classes_[(decision > 0).astype(np.int64)]

    def staged_predict(self, X):
        """Predictions after each round (a generator, like scikit-learn's boosting)."""
        for F in self._staged_F(X):
            yield self.classes_[(F > 0).astype(np.int64)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # two classes: a favourable outcome
        return tags

    def with_rounds(self, n_rounds: int) -> FairBoostClassifier:
        """A copy that predicts with the first `n_rounds` trees (and keeps only those)."""
        check_is_fitted(self, "estimators_")
        n_rounds = check_scalar(n_rounds, "n_rounds", kind=int, low=1,
                                high=len(self.estimators_))
        out = clone(self)
        for key, value in self.__dict__.items():
            if key.endswith("_") and not key.startswith("__"):
                setattr(out, key, value)
        out.estimators_ = self.estimators_[:n_rounds]
        out.alphas_ = self.alphas_[:n_rounds]
        out.n_estimators_ = n_rounds
        out.objectives_ = {k: v[:n_rounds] for k, v in self.objectives_.items()}
        return out


# --------------------------------------------------------------------------- post-processors


class _PostProcessor:
    """Base scores for a post-processor: X itself (estimator None), a fitted estimator
    used as it is, or an unfitted one fitted first on the same rows (so that the
    post-processor clones, and passes scikit-learn's estimator checks, like any other)."""

    estimator: Any  # set by the subclass's __init__

    def __sklearn_tags__(self):
        # A mixin: the next class in the subclass's MRO is scikit-learn's BaseEstimator.
        tags = super().__sklearn_tags__()  # type: ignore[misc]
        tags.classifier_tags.multi_class = False
        if self.estimator is None:
            tags.input_tags.one_d_array = True
        return tags

    def _fit_scores(self, X, y) -> np.ndarray:
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import validate_data

        if self.estimator is None:
            self.estimator_ = None
            return _base_scores(None, X)
        X = validate_data(self, X, reset=True)
        try:
            check_is_fitted(self.estimator)
            self.estimator_ = self.estimator
        except NotFittedError:
            _binary_target(y)  # a one-line error before anything is fitted
            self.estimator_ = clone(self.estimator).fit(X, np.asarray(y))
        return _base_scores(self.estimator_, X)

    def _scores(self, X) -> np.ndarray:
        from sklearn.utils.validation import validate_data

        estimator = getattr(self, "estimator_", self.estimator)
        if estimator is not None:
            X = validate_data(self, X, reset=False)
        return _base_scores(estimator, X)

    def _attach(self, estimator) -> None:
        """Read X through `estimator` from now on (fitted on its scores, not on X)."""
        self.estimator = self.estimator_ = estimator
        if hasattr(estimator, "n_features_in_"):
            self.n_features_in_ = estimator.n_features_in_


# --------------------------------------------------------------------------- thresholds


class GroupThresholdClassifier(_PostProcessor, ClassifierMixin, BaseEstimator):
    """One decision threshold per intersectional group on a fitted scorer.

    Every group with enough rows gets its own threshold; small groups that share a
    value of one attribute are pooled (e.g. every small group of women together, the
    attribute with the fewest values first) and the pool gets one threshold, so that
    the attribute's groups, not only the intersections, reach the common rate on the
    fitting rows. Small groups no supported pool takes keep the global threshold.

    Parameters
    ----------
    estimator : fitted classifier with predict_proba, or None
        The scorer (used as fitted; never refitted). None: ``X`` is the score itself.
    constraint : {"dp", "eo", "eodds"}, default="eo"
    target_rate : float or None, default=None
        The common rate every group is brought to (selection rate for dp, TPR for eo and
        eodds); None: the rate that maximises balanced accuracy on the fitting rows.
    min_support : int, default=20
        Rows a group (or pool) needs in the rate's denominator (positives for eo) for a
        threshold of its own.
    n_grid : int, default=1000
        Candidate thresholds (quantiles of the fitting scores).
    by : str, sequence of str or None, default=None
        Protected columns whose intersection defines the groups; None: all of them.

    Attributes
    ----------
    thresholds_ : ndarray
        Threshold of every cell of the groups' product space (unseen values included).
    global_threshold_ : float
    target_rate_ : float
    groups_ : dict of str to float
        Threshold of each fitted group, by label.
    pooled_groups_ : dict of str to str
        Groups too small for their own threshold and the pool they joined.
    fallback_groups_ : list of str
        Groups at the global threshold (even their pool was too small).
    """

    def __init__(self, estimator=None, constraint: str = "eo", target_rate: float | None = None,
                 min_support: int = 20, n_grid: int = 1000, by=None) -> None:
        self.estimator = estimator
        self.constraint = constraint
        self.target_rate = target_rate
        self.min_support = min_support
        self.n_grid = n_grid
        self.by = by

    def _combo(self) -> tuple[int, ...]:
        if self.by is None:
            return tuple(range(len(self.columns_)))
        names = [self.by] if isinstance(self.by, str) else list(self.by)
        if not names:
            raise DataError("by must name at least one protected column. Got [].")
        for name in names:
            check_option(str(name), "by", self.columns_)
        return tuple(sorted({self.columns_.index(str(name)) for name in names}))

    def _units(self, codes, y01, combo) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
        """Each cell's fitting unit (own group first, then pools; -1: global threshold),
        the unit of every row, unit labels, and which cells had fitting rows."""
        cell, size = _grouping_codes(codes, self.categories_, combo)
        pos = np.bincount(cell, weights=y01, minlength=size)
        rows = np.bincount(cell, minlength=size).astype(float)
        den = {"dp": lambda p, r: r, "eo": lambda p, r: p,
               "eodds": lambda p, r: np.minimum(p, r - p)}[self.constraint]
        present = rows > 0
        own = present & (den(pos, rows) >= self.min_support)
        unit = np.full(size, -1, dtype=np.int64)
        unit[own] = np.arange(int(own.sum()))
        labels = [_label(self.columns_, self.categories_, combo, int(c))
                  for c in np.flatnonzero(own)]
        left = present & ~own
        parts = np.stack(np.unravel_index(np.arange(size), tuple(
            len(self.categories_[j]) + 1 for j in combo)), axis=1)
        # Pools: small cells sharing a value of one attribute (fewest values first). Cells
        # left over keep the global threshold: a pool of unrelated small groups would get
        # a threshold fitted on a few rows of a mixture, noisier than the global one.
        order = sorted(range(len(combo)), key=lambda i: len(self.categories_[combo[i]]))
        for i in order if len(combo) > 1 else []:
            key = np.where(left, parts[:, i], -1)
            for value in np.unique(key[key >= 0]):
                m = key == value
                if den(pos[m].sum(), rows[m].sum()) >= self.min_support:
                    unit[m] = len(labels)
                    j = combo[i]
                    name = self.categories_[j][value] if value < len(self.categories_[j]) \
                        else "(unseen)"
                    labels.append(f"{self.columns_[j]}={name} (small groups pooled)")
                    left &= ~m
        return unit, unit[cell], labels, present

    def fit(self, X, y, *, sensitive_features=None) -> GroupThresholdClassifier:
        _check_common(self.constraint, self.min_support)
        if self.target_rate is not None:
            check_scalar(self.target_rate, "target_rate", low=0, high=1)
        check_scalar(self.n_grid, "n_grid", kind=int, low=2)
        y01, self.classes_ = _binary_target(y)
        s = self._fit_scores(X, y)
        n = s.shape[0]
        self.columns_, self.categories_ = _fit_sensitive(sensitive_features, n)
        self.combo_ = self._combo()
        codes = _attribute_codes(sensitive_features, n, self.columns_, self.categories_)
        cell_unit, row_unit, unit_labels, present = self._units(codes, y01, self.combo_)
        n_own = int(np.sum(~np.char.endswith(np.asarray(unit_labels, dtype=str), "pooled)"))) \
            if unit_labels else 0
        size = len(unit_labels) + 1  # the last unit: rows at the global threshold
        row_unit = np.where(row_unit < 0, size - 1, row_unit)
        # Candidate thresholds: quantiles of the scores (plus "nobody" above the top).
        grid = np.unique(np.concatenate([np.quantile(s, np.linspace(0, 1, self.n_grid)),
                                         [1.0 + 1e-9]]))
        b = np.searchsorted(grid, s, side="right") - 1  # bin: grid[b] <= s < grid[b+1]
        hist = np.bincount((row_unit * len(grid) + b) * 2 + y01,
                           minlength=size * len(grid) * 2).reshape(size, len(grid), 2)
        above = hist[:, ::-1].cumsum(axis=1)[:, ::-1]  # rows with s >= grid[k]
        neg, pos = above[..., 0].astype(float), above[..., 1].astype(float)
        n_neg, n_pos = neg[:, 0], pos[:, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            tpr = pos / n_pos[:, None]
            fpr = neg / n_neg[:, None]
            sel = (pos + neg) / (n_pos + n_neg)[:, None]
        own = np.arange(size) < size - 1
        # Overall rates at each global threshold (the fallback and the eodds FPR target).
        g_pos, g_neg = pos.sum(axis=0), neg.sum(axis=0)
        g_tpr = g_pos / max(g_pos[0], 1)
        g_fpr = g_neg / max(g_neg[0], 1)
        g_sel = (g_pos + g_neg) / max(g_pos[0] + g_neg[0], 1)
        rate, g_rate = {"dp": (sel, g_sel), "eo": (tpr, g_tpr), "eodds": (tpr, g_tpr)}[
            self.constraint]
        targets = (np.linspace(0.01, 0.99, 197) if self.target_rate is None
                   else np.array([float(self.target_rate)]))
        # For each target: every unit's threshold index closest to it (T, U).
        dist = np.abs(rate[None, :, :] - targets[:, None, None])
        g_index = np.abs(g_rate[None, :] - targets[:, None]).argmin(axis=1)  # (T,)
        if self.constraint == "eodds":
            dist = np.maximum(dist, np.abs(fpr[None] - g_fpr[g_index][:, None, None]))
        dist = np.nan_to_num(dist, nan=np.inf)
        choice = dist.argmin(axis=2)
        choice = np.where(own[None, :], choice, g_index[:, None])
        tp = np.take_along_axis(pos[None].repeat(len(targets), 0), choice[..., None], 2)[..., 0]
        fp = np.take_along_axis(neg[None].repeat(len(targets), 0), choice[..., None], 2)[..., 0]
        total_pos, total_neg = n_pos.sum(), n_neg.sum()
        bal = (tp.sum(axis=1) / max(total_pos, 1) + 1 - fp.sum(axis=1) / max(total_neg, 1)) / 2
        best = int(np.argmax(bal))
        self.target_rate_ = float(targets[best])
        self.global_threshold_ = float(grid[g_index[best]])
        unit_thresholds = grid[choice[best]].astype(np.float64)
        unit_thresholds[-1] = self.global_threshold_
        self.thresholds_ = unit_thresholds[np.where(cell_unit < 0, size - 1, cell_unit)]
        self.thresholds_[~present] = self.global_threshold_
        label = lambda c: _label(self.columns_, self.categories_, self.combo_, int(c))  # noqa: E731
        self.groups_ = {label(c): float(self.thresholds_[c]) for c in np.flatnonzero(present)}
        self.unit_thresholds_ = {name: float(t) for name, t in
                                 zip(unit_labels, unit_thresholds[:-1])}
        self.pooled_groups_ = {label(c): unit_labels[cell_unit[c]]
                               for c in np.flatnonzero(present)
                               if cell_unit[c] >= n_own}
        self.fallback_groups_ = [label(c) for c in np.flatnonzero(present & (cell_unit < 0))]
        self.fit_balanced_accuracy_ = float(bal[best])
        return self

    def _cell_thresholds(self, X, sensitive_features) -> tuple[np.ndarray, np.ndarray]:
        check_is_fitted(self, "thresholds_")
        s = self._scores(X)
        codes = _attribute_codes(sensitive_features, s.shape[0], self.columns_,
                                 self.categories_)
        cell, _ = _grouping_codes(codes, self.categories_, self.combo_)
        return s, self.thresholds_[cell]

    def predict_proba(self, X, *, sensitive_features=None) -> np.ndarray:
        """The score mapped piecewise-linearly so that each group's threshold sits at 0.5."""
        s, t = self._cell_thresholds(X, sensitive_features)
        t = np.clip(t, _EPS, 1 - _EPS)
        p = np.where(s < t, 0.5 * s / t, 0.5 + 0.5 * (s - t) / (1 - t))
        p = np.clip(p, 0, 1)
        return np.stack([1 - p, p], axis=1)

    def predict(self, X, *, sensitive_features=None) -> np.ndarray:
        s, t = self._cell_thresholds(X, sensitive_features)
        return self.classes_[(s >= t).astype(np.int64)]


# --------------------------------------------------------------------------- score transformer


def _transform(r: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Root in [0, 1] of ``mu s^2 - (1 + mu) s + r = 0`` (the stable form; s = r at mu = 0)."""
    b = 1.0 + mu
    disc = np.sqrt(np.maximum(b * b - 4.0 * mu * r, 0.0))
    return np.clip(2.0 * r / (b + disc), 0.0, 1.0)


def _cross_entropy(r: np.ndarray, s: np.ndarray) -> np.ndarray:
    s = np.clip(s, 1e-12, 1 - 1e-12)
    return -(r * np.log(s) + (1 - r) * np.log1p(-s))


class FairScoreTransformer(_PostProcessor, ClassifierMixin, BaseEstimator):
    """Scores closest to a base scorer's under fairness constraints (FST-style).

    Solves ``min_s mean CE(r, s)`` subject to, for every supported group a of every
    grouping (attributes and intersections),
    ``|E[s | A=a] - E[s]| <= epsilon`` (dp), or the same with the means over the
    positives (eo) and also over the negatives (eodds), those conditional means taken
    r-weighted so that the transform needs no label at prediction time:
    ``E[s | A=a, Y=1] = E[r s | A=a] / E[r | A=a]``.

    Parameters
    ----------
    estimator : fitted classifier with predict_proba, or None
        The base scorer r(x) (never refitted). None: ``X`` is the score itself.
    constraint : {"dp", "eo", "eodds"}, default="dp"
    epsilon : float, default=0.02
        Allowed deviation of each group mean from the overall mean.
    min_support : int, default=30
        Groups with fewer fitting rows are not constrained.
    threshold : float, default=0.5
        Decision threshold on the transformed score.
    max_iter : int, default=2000
        Iterations of the dual solver.

    Attributes
    ----------
    lambdas_ : ndarray
        Dual multipliers (two per constrained group and event: above and below).
    constraint_values_ : ndarray
        Each constraint's left-hand side minus epsilon on the fitting rows (<= 0 when met).
    """

    def __init__(self, estimator=None, constraint: str = "dp", epsilon: float = 0.02,
                 min_support: int = 30, threshold: float = 0.5, max_iter: int = 2000) -> None:
        self.estimator = estimator
        self.constraint = constraint
        self.epsilon = epsilon
        self.min_support = min_support
        self.threshold = threshold
        self.max_iter = max_iter

    def _events(self, r: np.ndarray) -> list[np.ndarray]:
        """Row weights of each conditioning event: all rows, or r / (1 - r)."""
        if self.constraint == "dp":
            return [np.ones_like(r)]
        if self.constraint == "eo":
            return [r]
        return [r, 1 - r]

    def _design(self, r: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Constraint coefficients (J, n): rows a(i) with E-weights, both signs."""
        blocks = []
        for e, (weights, totals) in zip(self._events(r), zip(self.event_totals_,
                                                              self.group_totals_)):
            for (combo, groups), tot_g in zip(self.constrained_, totals):
                c, _ = _grouping_codes(codes, self.categories_, combo)
                member = (c[None, :] == groups[:, None])
                coef = e[None, :] * (member / tot_g[:, None] - 1.0 / weights)
                blocks.append(coef)
        if not blocks:
            return np.zeros((0, len(r)))
        g = np.concatenate(blocks, axis=0)
        return np.concatenate([g, -g], axis=0)

    def fit(self, X, y=None, *, sensitive_features=None) -> FairScoreTransformer:
        """Solve the dual on the fitting rows (y is only checked: the constraints are
        label-free)."""
        from scipy.optimize import minimize

        _check_common(self.constraint, self.min_support)
        check_scalar(self.epsilon, "epsilon", low=0)
        check_scalar(self.threshold, "threshold", low=0, high=1, low_open=True,
                     high_open=True)
        check_scalar(self.max_iter, "max_iter", kind=int, low=1)
        if y is not None:
            _, self.classes_ = _binary_target(y)
        else:
            self.classes_ = np.array([0, 1])
        r = np.clip(self._fit_scores(X, y), _EPS, 1 - _EPS)
        n = r.shape[0]
        self.columns_, self.categories_ = _fit_sensitive(sensitive_features, n)
        codes = _attribute_codes(sensitive_features, n, self.columns_, self.categories_)
        self.n_fit_ = n
        # Which groups are constrained, and the fitting-time normalisers of each event.
        self.constrained_ = []
        for combo in _groupings(len(self.columns_)):
            c, size = _grouping_codes(codes, self.categories_, combo)
            counts = np.bincount(c, minlength=size)
            groups = np.flatnonzero(counts >= self.min_support)
            if len(groups) >= 2:
                self.constrained_.append((combo, groups))
        self.event_totals_, self.group_totals_ = [], []
        for e in self._events(r):
            self.event_totals_.append(float(e.sum()))
            per = []
            for combo, groups in self.constrained_:
                c, size = _grouping_codes(codes, self.categories_, combo)
                per.append(np.bincount(c, weights=e, minlength=size)[groups])
            self.group_totals_.append(per)
        G = self._design(r, codes)
        eps = np.full(G.shape[0], float(self.epsilon))

        def negative_dual(lam):
            mu = n * (lam @ G)
            s = _transform(r, mu)
            value = np.mean(_cross_entropy(r, s) + mu * s) - lam @ eps
            grad = G @ s - eps
            return -value, -grad

        if G.shape[0]:
            # Scale: n * lambda is the size of mu, so start small and let L-BFGS-B move.
            result = minimize(negative_dual, np.zeros(G.shape[0]), jac=True, method="L-BFGS-B",
                              bounds=[(0, None)] * G.shape[0],
                              options={"maxiter": self.max_iter, "gtol": 1e-12,
                                       "ftol": 1e-15, "maxcor": 30})
            self.lambdas_ = np.asarray(result.x)
            self.converged_ = bool(result.success)
            self.n_iter_ = int(result.nit)
        else:
            self.lambdas_ = np.zeros(0)
            self.converged_ = True
            self.n_iter_ = 1  # nothing to solve: one evaluation of s = r
        s = _transform(r, n * (self.lambdas_ @ G)) if G.shape[0] else r
        self.constraint_values_ = G @ s - eps
        self.fit_scores_ = s
        return self

    def transform_scores(self, X, *, sensitive_features=None) -> np.ndarray:
        """The fair scores s(x)."""
        check_is_fitted(self, "lambdas_")
        r = np.clip(self._scores(X), _EPS, 1 - _EPS)
        if not self.lambdas_.size:
            return r
        codes = _attribute_codes(sensitive_features, r.shape[0], self.columns_,
                                 self.categories_)
        G = self._design(r, codes)
        return _transform(r, self.n_fit_ * (self.lambdas_ @ G))

    def predict_proba(self, X, *, sensitive_features=None) -> np.ndarray:
        s = self.transform_scores(X, sensitive_features=sensitive_features)
        return np.stack([1 - s, s], axis=1)

    def predict(self, X, *, sensitive_features=None) -> np.ndarray:
        s = self.transform_scores(X, sensitive_features=sensitive_features)
        return self.classes_[(s >= self.threshold).astype(np.int64)]
