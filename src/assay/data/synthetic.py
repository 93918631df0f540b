"""A synthetic loan table with three planted effects, and the truth about them.

`make_synthetic` draws a small table (default 4,000 rows) whose target ``approved``
follows a known logistic score, then plants three effects that a privacy, a fairness
and a multiplicity audit must each find:

(a) **Leaky group** — ``region == "Isle"`` (about 8 % of rows). Its records are
    atypical (wider income and age spread), their labels are noisy (flipped with
    probability 0.35) and each carries its own rare level in each of ``code``,
    ``branch`` and ``agent`` (other rows share six common levels), which one-hot
    encoding turns into three features present for that record only. A model, even a
    logistic regression, memorises these records, so the loss gap between members and
    non-members, and hence membership inference, is much larger there than elsewhere.
(b) **Biased label** — for ``sex == "F"``, positive labels are flipped to negative with
    probability ``flip_rate`` (0.4). Features do not depend on sex, so a model trained
    on the observed labels has a lower selection rate and true-positive rate (measured
    against the unbiased labels, and also against the observed ones) for women.
(c) **Arbitrary region** — the rows closest to their group's decision boundary
    (``arbitrary_fraction`` = 12 % of rows: the slab ``|score - centre| < width`` of
    feature space, where ``centre`` is 0 for men and, for women, the score at which
    the biased label is positive half the time) get labels that are pure noise
    (p = 0.5; the bias of (b) is not applied there), so equally good models disagree
    there far more than elsewhere.

Measured on the default table with models trained on random halves (8 models): the
member/non-member loss gap is about 1.4 nats on the leaky group against 0.01 elsewhere
for scikit-learn's ``LogisticRegression(C=10)`` (1.2 against 0.1 for a 32-unit
``MLPClassifier``), and the LOSS attack's AUC is about 0.64 there against 0.50
elsewhere even for a logistic regression with ``C=1``; women's selection rate is about
0.23 against 0.55 for men; the share of models disagreeing with the majority is about
4x higher in the arbitrary region than in the ordinary rows (logistic regression and
MLP), and about 6x for MLPs fitted on the same rows with different seeds (a convex
model fitted twice on the same rows agrees with itself everywhere). Note that the
leaky group also shows high disagreement between models trained on different rows,
because its records are memorised when they are members.

`synthetic_truth` returns the same draw's `SyntheticTruth`: which group leaks, which
group is disadvantaged, the masks of the leaky, disadvantaged and arbitrary rows, the
true score and the labels before the bias. Row positions match the frame's rows (and
the default row ids of a `Dataset` built from it). Everything is deterministic given
an integer ``random_state``; the integer seeds a salted stream, so the draw is
independent of, e.g., a membership plan seeded with the same integer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from assay._serial import Serial
from assay._validation import InvalidParameterError, check_scalar

__all__ = [
    "SYNTHETIC_PROTECTED",
    "SYNTHETIC_REGRESSION_TARGET",
    "SYNTHETIC_TARGET",
    "SyntheticRegressionTruth",
    "SyntheticTruth",
    "make_synthetic",
    "make_synthetic_regression",
    "synthetic_truth",
]

SYNTHETIC_TARGET = "approved"
SYNTHETIC_PROTECTED = ("sex", "region")
LEAKY_REGION = "Isle"
DISADVANTAGED_SEX = "F"
_REGIONS = ("North", "South", "East", "West")
_COMMON_CODES = tuple(f"C{k}" for k in range(1, 7))
_RARE_COLUMNS = ("code", "branch", "agent")
_ISLE_LABEL_NOISE = 0.35
_SHARPNESS = 4.0  # slope of the true logistic label model outside the arbitrary region
_MIN_ROWS = 200
_SEED_SALT = 0x5A17


@dataclass(frozen=True)
class SyntheticTruth(Serial):
    """The planted effects of one `make_synthetic` draw.

    Attributes
    ----------
    target : str
        Target column (``"approved"``, 1 = approved).
    protected : tuple of str
        Protected columns (``("sex", "region")``).
    leaky_group : dict
        ``{"column": "region", "value": "Isle"}``: the group membership inference
        should find most vulnerable.
    disadvantaged_group : dict
        ``{"column": "sex", "value": "F"}``: the group whose positive labels were flipped.
    flip_rate : float
        Probability that a positive label in the disadvantaged group was flipped.
    leaky, disadvantaged, arbitrary : bool ndarray of shape (n_rows,)
        Row masks of the three effects.
    flipped : bool ndarray of shape (n_rows,)
        Rows whose label was flipped by the bias.
    score : float ndarray of shape (n_rows,)
        True score (label model's logit is ``4 * score`` outside the arbitrary region).
    arbitrary_centre : dict
        Centre of the arbitrary slab per ``sex`` value.
    arbitrary_width : float
        The arbitrary region is ``|score - arbitrary_centre[sex]| < arbitrary_width``.
    label_unbiased : int ndarray of shape (n_rows,)
        Labels before the bias (b) was applied.
    n_rows, random_state : int
    """

    target: str
    protected: tuple[str, ...]
    leaky_group: dict[str, str]
    disadvantaged_group: dict[str, str]
    flip_rate: float
    leaky: np.ndarray
    disadvantaged: np.ndarray
    arbitrary: np.ndarray
    flipped: np.ndarray
    score: np.ndarray
    arbitrary_centre: dict[str, float]
    arbitrary_width: float
    label_unbiased: np.ndarray
    n_rows: int
    random_state: int | None

    # A JSON-able summary: the groups, rates and the row positions of each effect.
    __json_layout__ = ("target", "protected", "leaky_group", "disadvantaged_group", "flip_rate",
                       "arbitrary_centre", "arbitrary_width", "n_rows", "random_state",
                       ("leaky_rows", lambda s: np.flatnonzero(s.leaky)),
                       ("arbitrary_rows", lambda s: np.flatnonzero(s.arbitrary)),
                       ("flipped_rows", lambda s: np.flatnonzero(s.flipped)))


def make_synthetic(
    n_rows: int = 4000,
    random_state: int | np.random.Generator | None = 0,
    *,
    leak_fraction: float = 0.08,
    flip_rate: float = 0.4,
    arbitrary_fraction: float = 0.12,
    return_truth: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, SyntheticTruth]:
    """Draw the synthetic loan table with planted effects (see the module docstring).

    Parameters
    ----------
    n_rows : int, default=4000
        Number of rows (at least 200).
    random_state : int, numpy Generator or None, default=0
        Seed; an int gives the same table every time.
    leak_fraction : float in (0, 0.5], default=0.08
        Share of rows in the leaky group ``region == "Isle"``.
    flip_rate : float in [0, 1], default=0.4
        Probability that a positive label of ``sex == "F"`` is flipped to negative.
    arbitrary_fraction : float in [0, 0.5], default=0.12
        Share of rows in the arbitrary (pure-noise) region.
    return_truth : bool, default=False
        Also return the `SyntheticTruth`.

    Returns
    -------
    frame : pandas.DataFrame
        Columns ``age, income, tenure, debt_ratio, credit_score, region, code, branch,
        agent, sex, approved``. ``frame.attrs["assay_synthetic"]`` holds the JSON-able summary of
        the planted groups (without the row lists).
    truth : SyntheticTruth
        Only when `return_truth` is true.
    """
    frame, truth = _generate(n_rows, random_state, leak_fraction, flip_rate,
                             arbitrary_fraction)
    summary = truth.to_dict()
    frame.attrs["assay_synthetic"] = {k: v for k, v in summary.items()
                                      if not k.endswith("_rows")}
    return (frame, truth) if return_truth else frame


def synthetic_truth(
    n_rows: int = 4000, random_state: int = 0, **effects: float
) -> SyntheticTruth:
    """The `SyntheticTruth` of ``make_synthetic(n_rows, random_state, **effects)``."""
    if random_state is None or isinstance(random_state, np.random.Generator):
        raise InvalidParameterError(
            "random_state must be an integer so the draw can be repeated. "
            f"Got {random_state!r}.")
    return make_synthetic(n_rows, random_state, return_truth=True, **effects)[1]


def _generate(n_rows, random_state, leak_fraction, flip_rate, arbitrary_fraction):
    n = check_scalar(n_rows, "n_rows", kind=int, low=_MIN_ROWS)
    leak_fraction = check_scalar(leak_fraction, "leak_fraction", low=0, high=0.5,
                                 low_open=True)
    flip_rate = check_scalar(flip_rate, "flip_rate", low=0, high=1)
    arbitrary_fraction = check_scalar(arbitrary_fraction, "arbitrary_fraction", low=0,
                                      high=0.5)
    rng = _rng(random_state)
    leaky = np.zeros(n, dtype=bool)
    leaky[rng.permutation(n)[: max(2, round(leak_fraction * n))]] = True
    columns = _features(rng, leaky)
    score = _true_score(columns)
    female = columns["sex"] == DISADVANTAGED_SEX
    centres = {"F": _biased_boundary(flip_rate), "M": 0.0}
    centre = np.where(female, centres["F"], centres["M"])
    distance = np.abs(score - centre)
    width = float(np.quantile(distance, arbitrary_fraction)) if arbitrary_fraction else 0.0
    arbitrary = distance < width
    unbiased = _labels(rng, score, arbitrary, leaky)
    # Inside the arbitrary region every label stays a fair coin, so the bias skips it.
    flipped = female & ~arbitrary & (unbiased == 1) & (rng.random(n) < flip_rate)
    frame = pd.DataFrame(columns)
    frame[SYNTHETIC_TARGET] = np.where(flipped, 0, unbiased).astype(np.int64)
    seed = random_state if isinstance(random_state, int | np.integer) else None
    truth = SyntheticTruth(
        target=SYNTHETIC_TARGET, protected=SYNTHETIC_PROTECTED,
        leaky_group={"column": "region", "value": LEAKY_REGION},
        disadvantaged_group={"column": "sex", "value": DISADVANTAGED_SEX},
        flip_rate=flip_rate, leaky=leaky, disadvantaged=female, arbitrary=arbitrary,
        flipped=flipped, score=score, arbitrary_centre=centres, arbitrary_width=width,
        label_unbiased=unbiased,
        n_rows=n, random_state=None if seed is None else int(seed))
    return frame, truth


def _rng(random_state: Any) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None:
        return np.random.default_rng()
    if (isinstance(random_state, int | np.integer) and not isinstance(random_state, bool)
            and random_state >= 0):
        # Salted, so the draw is independent of other streams seeded with the same int
        # (e.g. a membership plan with random_state=0 would otherwise pick the same rows).
        return np.random.default_rng([_SEED_SALT, int(random_state)])
    raise InvalidParameterError(
        "random_state must be a non-negative int, a numpy Generator or None. "
        f"Got {random_state!r}.")


def _features(rng: np.random.Generator, leaky: np.ndarray) -> dict[str, np.ndarray]:
    """Draw the feature columns; the leaky group's records are atypical."""
    n, n_leaky = len(leaky), int(leaky.sum())
    age = np.clip(rng.normal(42, 12, n), 18, 80)
    income = rng.lognormal(np.log(45.0), 0.45, n)
    # Atypical records: wide income and age spread, far from the bulk.
    age[leaky] = rng.uniform(18, 90, n_leaky)
    income[leaky] = rng.lognormal(np.log(45.0), 1.3, n_leaky)
    region = rng.choice(_REGIONS, n).astype(object)
    region[leaky] = LEAKY_REGION
    rare = {}
    for column in _RARE_COLUMNS:
        values = rng.choice(_COMMON_CODES, n).astype(object)
        # A rare level per leaky record: a one-hot feature only that record has.
        values[leaky] = [f"{column[0].upper()}{k:04d}" for k in rng.permutation(n_leaky)]
        rare[column] = values
    return {
        "age": np.round(age).astype(np.int64),
        "income": np.round(income, 1),
        "tenure": rng.integers(0, 31, n),
        "debt_ratio": np.round(rng.beta(2.0, 5.0, n), 3),
        "credit_score": np.round(rng.normal(0.0, 1.0, n), 3),
        "region": region,
        **rare,
        "sex": rng.choice(np.array(["F", "M"], dtype=object), n),
    }


def _true_score(columns: dict[str, np.ndarray]) -> np.ndarray:
    """The label model's score: a fixed linear function of standardised features."""
    log_income = np.log(columns["income"])
    z_income = (log_income - np.log(45.0)) / 0.45
    z_debt = (columns["debt_ratio"] - 2 / 7) / 0.16
    z_tenure = (columns["tenure"] - 15) / 8.9
    z_age = (columns["age"] - 42) / 12
    return (0.5 * z_income - 0.45 * z_debt + 0.3 * z_tenure + 0.5 * columns["credit_score"]
            + 0.15 * z_age)


def _biased_boundary(flip_rate: float) -> float:
    """Score at which a biased label is positive with probability 1/2.

    Solves ``(1 - flip_rate) * sigmoid(SHARPNESS * s) = 1/2``: where a model fitted on
    the biased labels puts its decision boundary for the disadvantaged group.
    """
    p = min(0.5 / max(1.0 - flip_rate, 1e-9), 0.99)
    return float(np.log(p / (1.0 - p)) / _SHARPNESS)


def _labels(rng, score, arbitrary, leaky) -> np.ndarray:
    """Unbiased labels: logistic in the score, coin flips in the arbitrary region."""
    p = 1.0 / (1.0 + np.exp(-_SHARPNESS * score))
    p[arbitrary] = 0.5
    labels = (rng.random(len(score)) < p).astype(np.int64)
    noisy = leaky & (rng.random(len(score)) < _ISLE_LABEL_NOISE)
    return np.where(noisy, 1 - labels, labels)


# --------------------------------------------------------------------------- regression

#: The continuous target of the regression variant of the table.
SYNTHETIC_REGRESSION_TARGET = "premium"
NOISY_SEX = "F"
_PREMIUM_SALT = 0x9E37  # the premium's own stream: the loan table's draw is untouched
_PREMIUM_BASE = 1000.0
_PREMIUM_SLOPE = 150.0  # premium units per unit of the premium score


@dataclass(frozen=True)
class SyntheticRegressionTruth(Serial):
    """The planted effects of one `make_synthetic_regression` draw.

    Attributes
    ----------
    target : str
        Target column (``"premium"``).
    protected : tuple of str
        Protected columns (``("sex", "region")``).
    leaky_group : dict
        ``{"column": "region", "value": "Isle"}``: the group a membership attack on the
        residuals should find most exposed.
    noisy_group : dict
        ``{"column": "sex", "value": "F"}``: the group whose premium the features explain
        worst, so every model's errors are larger there.
    noise_sd : dict
        Standard deviation of the premium's unexplained part per ``sex`` value.
    leaky_sd : float
        Standard deviation of each leaky record's own premium loading.
    leaky, noisy : bool ndarray of shape (n_rows,)
        Row masks of the two effects.
    expected : float ndarray of shape (n_rows,)
        The premium the features explain (before noise and loadings).
    n_rows, random_state : int
    """

    target: str
    protected: tuple[str, ...]
    leaky_group: dict[str, str]
    noisy_group: dict[str, str]
    noise_sd: dict[str, float]
    leaky_sd: float
    leaky: np.ndarray
    noisy: np.ndarray
    expected: np.ndarray
    n_rows: int
    random_state: int | None

    __json_layout__ = ("target", "protected", "leaky_group", "noisy_group", "noise_sd",
                       "leaky_sd", "n_rows", "random_state",
                       ("leaky_rows", lambda s: np.flatnonzero(s.leaky)))


def make_synthetic_regression(
    n_rows: int = 4000,
    random_state: int | np.random.Generator | None = 0,
    *,
    leak_fraction: float = 0.08,
    noise_sd: float = 60.0,
    noise_ratio: float = 2.5,
    leaky_sd: float = 400.0,
    return_truth: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, SyntheticRegressionTruth]:
    """The synthetic table with a continuous target: an insurance premium.

    The people and features are those of ``make_synthetic(n_rows, random_state,
    leak_fraction=leak_fraction)`` (the same draw), without ``approved``; the premium is
    drawn from a stream of its own, so the loan table is the same with or without it.
    It is ``1000 + 150 * s`` plus noise, ``s`` a fixed linear score (older, more indebted,
    lower credit score and shorter tenure: dearer), with two planted effects:

    (a) **Errors larger for one group** — the unexplained part of the premium has standard
        deviation ``noise_sd`` (60) for men and ``noise_ratio`` (2.5) times that for
        ``sex == "F"`` (as if their premium depended on something the table lacks):
        every model's absolute errors are larger for women, a fairness audit's MAE gap.
    (b) **Memorised records** — each ``region == "Isle"`` record (atypical, with its own
        rare ``code``, ``branch`` and ``agent`` levels, as in the loan table) carries its
        own loading of standard deviation ``leaky_sd`` (400). A model fits it through the
        record's rare one-hot features when it trains on the record and cannot otherwise:
        a large member/non-member residual gap, found by membership inference there.

    Parameters
    ----------
    n_rows : int, default=4000
        Number of rows (at least 200).
    random_state : int, numpy Generator or None, default=0
        Seed; an int gives the same table every time (the loan table's people).
    leak_fraction : float in (0, 0.5], default=0.08
        Share of rows in the leaky group.
    noise_sd : float > 0, default=60
        Standard deviation of men's unexplained premium.
    noise_ratio : float >= 1, default=2.5
        Women's unexplained standard deviation over men's.
    leaky_sd : float >= 0, default=400
        Standard deviation of a leaky record's own loading.
    return_truth : bool, default=False
        Also return the `SyntheticRegressionTruth`.

    Returns
    -------
    frame : pandas.DataFrame
        Columns ``age, income, tenure, debt_ratio, credit_score, region, code, branch,
        agent, sex, premium``; ``frame.attrs["assay_synthetic"]`` holds the JSON-able
        summary of the planted groups (without the row list).
    truth : SyntheticRegressionTruth
        Only when `return_truth` is true.
    """
    noise_sd = float(check_scalar(noise_sd, "noise_sd", low=0, low_open=True))
    noise_ratio = float(check_scalar(noise_ratio, "noise_ratio", low=1))
    leaky_sd = float(check_scalar(leaky_sd, "leaky_sd", low=0))
    loans, loan_truth = _generate(n_rows, random_state, leak_fraction, 0.4, 0.12)
    frame = loans.drop(columns=SYNTHETIC_TARGET)
    rng = _premium_rng(random_state)
    n, leaky = len(frame), loan_truth.leaky
    noisy = (frame["sex"] == NOISY_SEX).to_numpy()
    expected = _PREMIUM_BASE + _PREMIUM_SLOPE * _premium_score(frame)
    sd = np.where(noisy, noise_sd * noise_ratio, noise_sd)
    premium = expected + sd * rng.standard_normal(n)
    premium[leaky] += leaky_sd * rng.standard_normal(int(leaky.sum()))
    frame[SYNTHETIC_REGRESSION_TARGET] = np.round(premium, 2)
    truth = SyntheticRegressionTruth(
        target=SYNTHETIC_REGRESSION_TARGET, protected=SYNTHETIC_PROTECTED,
        leaky_group={"column": "region", "value": LEAKY_REGION},
        noisy_group={"column": "sex", "value": NOISY_SEX},
        noise_sd={"F": noise_sd * noise_ratio, "M": noise_sd}, leaky_sd=leaky_sd,
        leaky=leaky, noisy=noisy, expected=expected, n_rows=n,
        random_state=loan_truth.random_state)
    summary = truth.to_dict()
    frame.attrs["assay_synthetic"] = {k: v for k, v in summary.items()
                                      if not k.endswith("_rows")}
    return (frame, truth) if return_truth else frame


def _premium_rng(random_state: Any) -> np.random.Generator:
    """The premium's stream: salted apart from the loan table's for an int seed; a
    Generator goes on from where the table's draw left it."""
    if isinstance(random_state, int | np.integer) and not isinstance(random_state, bool):
        return np.random.default_rng([_SEED_SALT, int(random_state), _PREMIUM_SALT])
    return _rng(random_state)


def _premium_score(frame: pd.DataFrame) -> np.ndarray:
    """The premium's explained part in units: a fixed linear function of the features."""
    z_age = (frame["age"].to_numpy() - 42) / 12
    z_debt = (frame["debt_ratio"].to_numpy() - 2 / 7) / 0.16
    z_tenure = (frame["tenure"].to_numpy() - 15) / 8.9
    return (0.5 * z_age + 0.6 * z_debt - 0.5 * frame["credit_score"].to_numpy()
            - 0.3 * z_tenure)
