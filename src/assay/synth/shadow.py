"""Shadow-generator membership attack on a synthetic release whose generator is known.

Stadler et al. 2022 ("Synthetic Data – Anonymisation Groundhog Day") and TAPAS: the
attacker fits the known generator on shadow tables drawn from the population (HOLDOUT),
samples a synthetic table from each, and learns from features of those tables relative to
a target whether the target was in the shadow table's rows; the classifier then scores the
real release's features for that target. Their attack fits a fresh set of shadow tables
per target. Here every target is in exactly half of one set of shadow tables (the
balanced plan of a LiRA population), so each fit serves all targets at once: 16 fits
instead of 10 per target (2,000 for 200 targets), with AUCs within each other's
intervals on German credit and Adult for a leaky copy, independent marginals and DP
marginals. That is what makes slow generators (MST, 15 to 30 s a fit) attackable.

Features of a synthetic table relative to a target (mixed-type L1 distance of
`assay.synth.encoding`): the shares of its rows that equal the target and that lie within
``NEAR`` of it, and the log distances to its ``k`` nearest rows. They are relative to the
target, so one classifier is trained on the worlds of every target together.

Generators work on the encoded values (`Tables.values`: numeric columns as float,
categorical ones as integer codes): ``fit(values, numeric) -> self`` and
``sample(n, rng) -> values``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from assay._serial import Serial
from assay._stats import Estimate
from assay._validation import AssayError, InvalidParameterError, check_scalar
from assay.engine import PopulationPlan
from assay.synth.encoding import Tables
from assay.synth.roc import auc_estimate, tpr_figures

__all__ = ["GENERATORS", "CopulaGenerator", "CopyGenerator", "DPMarginalsGenerator",
           "MSTGenerator", "MarginalsGenerator", "ShadowFigures",
           "check_generator", "make_generator", "shadow_attack"]

NEAR = 0.1
EPS = 0.01


class MarginalsGenerator:
    """Independent columns, each drawn from its empirical marginal."""

    name = "marginals"

    def fit(self, values: np.ndarray, numeric: np.ndarray) -> MarginalsGenerator:
        self.values_ = np.asarray(values, dtype=float)
        return self

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        rows, cols = self.values_.shape
        pick = rng.integers(0, rows, size=(n, cols))
        return self.values_[pick, np.arange(cols)]


class CopyGenerator:
    """Its training rows resampled, numeric cells jittered: a leaky generator (for tests).

    Parameters
    ----------
    noise : float, default=0.01
        Standard deviation of the jitter, as a share of each numeric column's spread.
    """

    name = "copy"

    def __init__(self, noise: float = 0.01) -> None:
        self.noise = noise

    def fit(self, values: np.ndarray, numeric: np.ndarray) -> CopyGenerator:
        self.values_ = np.asarray(values, dtype=float)
        self.numeric_ = np.asarray(numeric, dtype=bool)
        spread = np.nanstd(self.values_[:, self.numeric_], axis=0) if self.numeric_.any() \
            else np.zeros(0)
        self.spread_ = np.where(np.isfinite(spread), spread, 0.0)
        return self

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        out = self.values_[rng.integers(0, self.values_.shape[0], size=n)].copy()
        out[:, self.numeric_] += rng.normal(size=(n, int(self.numeric_.sum()))) \
            * self.noise * self.spread_
        return out


class DPMarginalsGenerator:
    """`assay synth-dp`'s generator (noisy 1-way marginals, no anchor) on encoded values.

    Parameters
    ----------
    target : RiskTarget
        The risk target the noise is calibrated to, as ``synth-dp --risk``.
    domain : list of ColumnDomain
        Cells of every encoded column (categorical codes; numeric bins over public bounds).
    seed : int
        Seed of the noise on the counts.
    """

    name = "dp-marginals"

    def __init__(self, target, domain, seed: int = 0, noise=None) -> None:
        self.target, self.domain, self.seed = target, domain, seed
        # (σ, μ) of `assay.synth.marginals.noise_for`, computed once for every shadow fit.
        self.noise = noise

    def fit(self, values: np.ndarray, numeric: np.ndarray) -> DPMarginalsGenerator:
        # `assay.synth.marginals.fit_marginals` without an anchor, counting the encoded cells
        # directly (categorical codes are the cells): thousands of fits stay in seconds.
        from assay.synth.marginals import DPMarginals, noise_for

        values = np.asarray(values, float)
        sigma, mu = self.noise or noise_for(self.target, len(self.domain))[:2]
        rng = np.random.default_rng(self.seed)
        noisy = []
        for j, d in enumerate(self.domain):
            if d.kind == "categorical":
                cells = values[:, j].astype(np.int64)
            else:
                edges = np.asarray(d.levels, float)
                cells = np.clip(np.searchsorted(edges, values[:, j], side="right") - 1, 0,
                                len(edges) - 2)
                if d.missing:
                    cells = np.where(np.isnan(values[:, j]), len(edges) - 1, cells)
            counts = np.bincount(cells, minlength=d.size).astype(float)
            noisy.append(counts + rng.normal(0.0, sigma, size=d.size))
        self.model_ = DPMarginals(self.domain, [(d.name,) for d in self.domain], noisy, sigma,
                                  mu, ())
        return self

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        from assay.synth.marginals import generate

        out = generate(self.model_, n, int(rng.integers(2**31)))
        return out.to_numpy(dtype=float)


class CopulaGenerator:
    """The copulas package's Gaussian copula (``GaussianMultivariate``) on the encoded values.

    Each column's marginal is a truncated Gaussian between its observed bounds: the
    package's default picks among several families per column, about 20 s a fit on German
    credit against 0.3 s, and the attack refits the generator thousands of times. Missing
    numeric values are filled with the column's median before the fit; sampled categorical
    codes are rounded into the codes seen. Needs ``pip install 'assay[synth]'``.
    """

    name = "copula"

    def fit(self, values: np.ndarray, numeric: np.ndarray) -> CopulaGenerator:
        import warnings

        import pandas as pd
        from copulas.multivariate import GaussianMultivariate

        values = np.asarray(values, dtype=float)
        self.numeric_ = np.asarray(numeric, dtype=bool)
        filled = np.where(np.isnan(values), np.nanmedian(values, axis=0), values)
        filled = np.nan_to_num(filled)  # a column with no value at all
        self.low_, self.high_ = filled.min(axis=0), filled.max(axis=0)
        frame = pd.DataFrame(filled, columns=[str(j) for j in range(filled.shape[1])])
        self.model_ = GaussianMultivariate(
            distribution="copulas.univariate.TruncatedGaussian")
        with warnings.catch_warnings():  # constant columns and fits it cannot improve
            warnings.simplefilter("ignore")
            self.model_.fit(frame)
        return self

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        # copulas draws from NumPy's global generator: seed it from ours.
        state = np.random.get_state()
        np.random.seed(int(rng.integers(2**31)))
        try:
            out = self.model_.sample(n).to_numpy(dtype=float)
        finally:
            np.random.set_state(state)
        out = np.clip(out, self.low_, self.high_)
        out[:, ~self.numeric_] = np.round(out[:, ~self.numeric_])
        return out


class MSTGenerator:
    """smartnoise's MST as ``assay synth-dp --generator mst`` runs it, on encoded values.

    Parameters
    ----------
    calibration : MSTCalibration
        The (ε, δ) handed to smartnoise (`assay.synth.mst.calibrate_mst` at the risk target).
    domain : list of ColumnDomain
        Cells of every encoded column, as `DPMarginalsGenerator`'s.

    One fit takes 15 to 30 s on 500 rows of German credit: the attack's ``n_shadow`` fits
    are its whole cost. Needs ``pip install 'assay[synth]'``.
    """

    name = "mst"

    def __init__(self, calibration, domain) -> None:
        self.calibration, self.domain = calibration, domain

    def fit(self, values: np.ndarray, numeric: np.ndarray) -> MSTGenerator:
        import pandas as pd

        from assay.synth.mst import fit_mst_model

        frame = pd.DataFrame(np.asarray(values, float), columns=[d.name for d in self.domain])
        self.model_ = fit_mst_model(frame, self.domain, self.calibration)
        return self

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        from assay.synth.mst import sample_mst

        # MST samples with NumPy's global generator: seed it from ours.
        state = np.random.get_state()
        np.random.seed(int(rng.integers(2**31)))
        try:
            return sample_mst(self.model_, self.domain, n, rng).to_numpy(dtype=float)
        finally:
            np.random.set_state(state)


def _dp_domain(tables: Tables, bins: int = 10) -> list:
    """Cells of the encoded columns: categorical codes, numeric bins over the three tables."""
    from assay.synth.marginals import ColumnDomain

    domain = []
    for j, cats in enumerate(tables.categories):
        if cats is not None:
            domain.append(ColumnDomain(str(j), "categorical", [float(c) for c in range(len(cats))]))
            continue
        v = np.concatenate([t[:, j] for t in tables.values.values()])
        seen = v[np.isfinite(v)]
        low, high = (float(seen.min()), float(seen.max())) if seen.size else (0.0, 1.0)
        high = high if high > low else low + 1.0
        domain.append(ColumnDomain(str(j), "numeric", list(np.linspace(low, high, bins + 1)),
                                   integer=bool(np.all(seen == np.round(seen))),
                                   missing=bool(np.isnan(v).any())))
    return domain


GENERATORS = ("marginals", "dp-marginals:RISK", "copula", "mst:RISK")


def check_generator(spec: str, what: str = "--generator") -> str:
    """A built-in generator's spec (``marginals``, ``dp-marginals:RISK``, ``copula`` or
    ``mst:RISK``, the last two with the synth extra installed), or a one-line error naming
    the choices and ``what`` (the flag or option that gave it)."""
    name, _, risk = str(spec).partition(":")
    if name in ("marginals", "copula") and not risk:
        if name == "copula":
            from assay.synth.mst import check_extra

            check_extra("copulas", f"{what} copula")
        return spec
    if name in ("dp-marginals", "mst"):
        from assay.privacy.theory.calibrate import parse_target

        try:
            parse_target(risk)
        except AssayError as e:
            raise InvalidParameterError(f"{what} {name}:RISK needs a risk target as "
                                        f"synth-dp --risk, e.g. {name}:tpr@fpr=0.05@0.01"
                                        f" ({e}). Got {spec!r}.") from None
        if name == "mst":
            from assay.synth.mst import check_extra

            check_extra("snsynth", f"{what} mst:RISK")
        return spec
    raise InvalidParameterError(f"{what} must be one of {', '.join(GENERATORS)}. "
                                f"Got {spec!r}.")


def make_generator(spec: str, tables: Tables, seed: int = 0):
    """A factory of fresh generators of ``spec`` for the columns of ``tables``."""
    name, _, risk = check_generator(spec).partition(":")
    if name == "marginals":
        return MarginalsGenerator
    if name == "copula":
        return CopulaGenerator
    from assay.privacy.theory.calibrate import parse_target

    target, domain = parse_target(risk), _dp_domain(tables)
    if name == "mst":
        from assay.synth.mst import calibrate_mst

        calibration = calibrate_mst(target, len(domain))
        return lambda: MSTGenerator(calibration, domain)
    from assay.synth.marginals import noise_for

    noise = noise_for(target, len(domain))[:2]
    seeds = np.random.default_rng(seed)
    return lambda: DPMarginalsGenerator(target, domain, int(seeds.integers(2**31)), noise)


@dataclass
class ShadowFigures(Serial):
    """The shadow-generator attack's AUC and TPR at low FPR (None where not estimable)."""

    generator: str
    auc: Estimate
    tpr_at_fpr: dict[float, Estimate | None]
    tpr_reason: dict[float, str]
    n_members: int
    n_nonmembers: int
    n_shadow: int
    n_reference: int
    n_synth: int
    attack: str = ("shadow generator (Stadler et al. / TAPAS-style; shadow tables from "
                   "holdout, each target in half of them; logistic regression on "
                   "target-relative features)")

    __json_layout__ = ("attack", "generator", "auc", "tpr_at_fpr", "tpr_reason", "n_members",
                       "n_nonmembers", "n_shadow", "n_reference", "n_synth")
    __json_required__ = ("attack",)


def _features(synth: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """Target-relative features of one encoded synthetic table, a row per target (see the
    module's note)."""
    kk = min(k, synth.shape[0])
    out = np.empty((targets.shape[0], 2 + kk))
    # Blocks of targets keep the (targets, rows, columns) differences small in memory.
    step = max(1, 2_000_000 // max(1, synth.size))
    for lo in range(0, targets.shape[0], step):
        d = np.abs(targets[lo:lo + step, None, :] - synth[None, :, :]).sum(axis=2)
        nearest = np.sort(np.partition(d, kk - 1, axis=1)[:, :kk], axis=1)
        out[lo:lo + step, 0] = np.mean(d == 0, axis=1)
        out[lo:lo + step, 1] = np.mean(d <= NEAR, axis=1)
        out[lo:lo + step, 2:] = np.log(nearest + EPS)
    return out


def _fit_and_sample(generator, ref: np.ndarray, numeric: np.ndarray, n: int,
                    seed: int) -> np.ndarray:
    """One shadow world: the generator fitted on ``ref``, ``n`` rows sampled."""
    return generator.fit(ref, numeric).sample(n, np.random.default_rng(seed))


def shadow_attack(tables: Tables, generator, *, n_targets: int = 100, n_shadow: int = 16,
                  n_synth: int = 5000, k: int = 5, fprs=(0.1, 0.01, 0.001),
                  confidence: float = 0.95, random_state: int | None = 0,
                  name: str | None = None, n_jobs: int | None = 1,
                  on_world: Callable[[int, int], None] | None = None) -> ShadowFigures:
    """Run the shadow-generator attack for a sample of members and non-members.

    Every target (a member from REAL or a non-member from HOLDOUT) is in exactly half of
    the ``n_shadow`` shadow tables, as rows are in half of a LiRA population: each fit
    serves every target, so the attack costs ``n_shadow`` fits, not ``n_shadow`` per
    target. The rest of each shadow table is drawn from HOLDOUT's other rows.

    Parameters
    ----------
    tables : Tables
    generator : object or callable
        A generator (``fit``, ``sample``) or a factory of fresh ones; refitted per world.
    n_targets : int, default=100
        Members (REAL rows) and non-members (HOLDOUT rows) attacked, each.
    n_shadow : int, default=16
        Shadow tables (generator fits), even: complementary pairs, every target in one of
        each pair.
    n_synth : int, default=5000
        Rows sampled from each shadow generator, and of the release's sample the features
        are read on.
    k : int, default=5
        Nearest synthetic rows among the features.
    fprs, confidence : as in `assay.synth.membership.membership_attack`.
    random_state : int or None
    name : str, optional
        The generator's name in the result (default: its ``name`` attribute).
    n_jobs : int or None, default=1
        Shadow fits run at once (joblib processes; None: one per core).
    on_world : callable, optional
        Called as ``on_world(done, total)`` after each shadow fit.
    """
    check_scalar(n_targets, "n_targets", kind=int, low=1)
    check_scalar(n_shadow, "n_shadow", kind=int, low=2)
    if n_shadow % 2:
        raise InvalidParameterError(f"n_shadow must be even (complementary pairs of shadow "
                                    f"tables). Got {n_shadow}.")
    check_scalar(n_synth, "n_synth", kind=int, low=1)
    check_scalar(k, "k", kind=int, low=1)
    rng = np.random.default_rng(random_state)
    factory = generator if isinstance(generator, type) or not hasattr(generator, "fit") \
        else (lambda: generator)
    real, synth, hold = (tables.values[t] for t in ("real", "synth", "holdout"))
    if hold.shape[0] < 3:
        raise InvalidParameterError("the holdout table needs at least 3 rows for reference "
                                    f"tables. Got {hold.shape[0]}.")
    n_out = int(min(n_synth, synth.shape[0]))
    worlds = n_shadow

    # Encoding a block of values the way `Tables.features` encodes the three tables.
    def encode(values: np.ndarray) -> np.ndarray:
        return replace(tables, values={**tables.values, "x": values}).features("x")

    # Non-members come from HOLDOUT but at most half of it: the rest fills shadow tables.
    m_idx = rng.choice(real.shape[0], size=min(n_targets, real.shape[0]), replace=False)
    h_idx = rng.choice(hold.shape[0], size=min(n_targets, hold.shape[0] // 2), replace=False)
    target_rows = np.concatenate([real[m_idx], hold[h_idx]])
    labels = np.r_[np.ones(m_idx.size, bool), np.zeros(h_idx.size, bool)]
    pool = hold[np.setdiff1d(np.arange(hold.shape[0]), h_idx)]
    n_ref = int(min(real.shape[0], pool.shape[0] + labels.size // 2))
    # Complementary pairs of shadow tables: each target in exactly half of them, and
    # every table holds half of the targets and as many rows as REAL where HOLDOUT allows.
    plan = PopulationPlan.balanced(labels.size, worlds, random_state=rng)
    inside = plan.member
    jobs = []
    for w in range(worlds):
        chosen = target_rows[inside[w]]
        fill = pool[rng.choice(pool.shape[0], size=min(pool.shape[0],
                                                       max(0, n_ref - chosen.shape[0])),
                               replace=False)]
        ref = np.concatenate([chosen, fill])[rng.permutation(chosen.shape[0] + fill.shape[0])]
        jobs.append((factory(), ref, int(plan.seeds[w])))
    from joblib import Parallel, delayed

    samples = []
    parallel = Parallel(n_jobs=-1 if n_jobs is None else n_jobs, return_as="generator")
    for i, sample in enumerate(parallel(delayed(_fit_and_sample)(g, ref, tables.numeric, n_out, s)
                                        for g, ref, s in jobs)):
        samples.append(sample)
        if on_world is not None:
            on_world(i + 1, worlds)
    targets = encode(target_rows)
    x_train = np.concatenate([_features(encode(s), targets, k) for s in samples])
    y_train = inside.reshape(-1)
    release = encode(synth[rng.choice(synth.shape[0], size=n_out, replace=False)])
    x_release = _features(release, targets, k)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(x_train, y_train.astype(int))
    scores = model.decision_function(x_release)
    pos, neg = scores[labels], scores[~labels]
    tpr, reasons = tpr_figures(pos, neg, fprs, confidence)
    label = name or getattr(factory, "name", None) or type(factory()).__name__
    return ShadowFigures(generator=str(label), auc=auc_estimate(pos, neg, confidence),
                         tpr_at_fpr=tpr, tpr_reason=reasons, n_members=int(pos.size),
                         n_nonmembers=int(neg.size), n_shadow=worlds, n_reference=n_ref,
                         n_synth=n_out)
