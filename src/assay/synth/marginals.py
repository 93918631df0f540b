"""A differentially private marginal generator calibrated to an attack-risk target: its
domain, its noisy marginals and its sampler (`assay.synth.dp` audits the release).

assay's own generator, the simplest sound one (smartnoise-synth's MST, `assay.synth.mst`,
needs the optional synth extra, which pins pandas < 3):

* **Domain.** Each column becomes a finite set of cells. Categorical columns: their levels.
  Numeric columns: equal-width bins between *public* bounds the user gives (one cell per
  integer when an integer column's range has at most ``bins`` integers); values outside
  the bounds fall in the edge bins. Bin edges are never read from the private rows. The
  schema (column names and types, categorical levels, whether a column has missing
  values) is read from REAL and treated as public, as marginal generators do.
* **Measurements.** The 1-way marginal of every column and, for the *anchor* (the first
  protected column and the downstream label, when named), the anchor's joint marginal and
  its marginal with every other column (2- or 3-way): a choice made from the options, never
  from the data. Adding or removing one row changes one count
  of each of the m marginals by 1, so the L2 sensitivity is √m and Gaussian noise of
  standard deviation σ on every count makes the release μ-GDP with μ = √m / σ.
* **Calibration.** μ is the largest one whose trade-off curve meets the risk target
  (`assay.privacy.theory.calibrate.calibrate_gaussian`, bisection to 1e-9), so σ is the smallest.
* **Sampling** (post-processing, free): negative counts clipped to 0, each marginal
  normalised; the anchor from its joint marginal and every other column conditional on it
  (its noisy marginal with the anchor), or every column independently. The number
  of rows is the noisy total, not the private count.

Not addressed: floating-point Gaussian sampling (a discrete Gaussian would close the
known attacks on it) and levels that are themselves sensitive.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from assay._serial import Serial, meta
from assay._validation import DataError, InvalidParameterError, check_scalar
from assay.privacy.theory.accounting import GaussianTradeOff
from assay.privacy.theory.calibrate import RiskTarget, calibrate_gaussian

__all__ = ["ColumnDomain", "DPMarginals", "check_domain", "fit_marginals", "generate",
           "noise_for"]


@dataclass(frozen=True)
class ColumnDomain(Serial):
    """The cells of one column.

    Attributes
    ----------
    name : str
    kind : str
        ``"categorical"`` or ``"numeric"``.
    levels : list
        Categorical levels (a missing value is the level None), or for a numeric column
        the bin edges (``len(levels) - 1`` bins).
    integer : bool
        Numeric column of integers (sampled values are rounded).
    missing : bool
        Numeric column with a cell for missing values (after the bins).
    """

    name: str
    kind: str = field(metadata=meta(schema={"enum": ["categorical", "numeric"]}))
    levels: list = field(metadata=meta(encode=lambda levels: _levels_json(levels)))
    integer: bool = False
    missing: bool = False

    __json_layout__ = ("name", "kind", ("cells", lambda s: s.size), "levels", "integer",
                       "missing")
    __json_required__ = ("integer", "missing")

    @property
    def size(self) -> int:
        """Number of cells."""
        if self.kind == "categorical":
            return len(self.levels)
        return len(self.levels) - 1 + int(self.missing)

    def encode(self, values: pd.Series) -> np.ndarray:
        """Cell index of every value."""
        if self.kind == "categorical":
            where = {v: i for i, v in enumerate(self.levels)}
            keys = values.astype(object).where(values.notna(), None)
            return np.array([where.get(v, -1) for v in keys], dtype=np.int64)
        x = pd.to_numeric(values, errors="coerce").to_numpy(float)
        edges = np.asarray(self.levels, float)
        cells = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
        if self.missing:
            cells = np.where(np.isnan(x), len(edges) - 1, cells)
        return cells.astype(np.int64)

    def decode(self, cells: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Values for cell indices: a level, or a uniform draw within the bin."""
        if self.kind == "categorical":
            return np.asarray(self.levels, dtype=object)[cells]
        edges = np.asarray(self.levels, float)
        nb = len(edges) - 1
        missing = cells >= nb
        b = np.minimum(cells, nb - 1)
        x = edges[b] + rng.random(len(cells)) * (edges[b + 1] - edges[b])
        if self.integer:
            x = np.clip(np.round(x), math.ceil(edges[0]), math.floor(edges[-1]))
        x[missing] = np.nan
        return x


def _levels_json(levels: list) -> list:
    """Numbers and null as they are, any other level (a category) as its string."""
    return [None if v is None else (v if isinstance(v, int | float) else str(v))
            for v in levels]


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def check_domain(real: pd.DataFrame, bounds: Mapping[str, tuple[float, float]],
                 bins: int = 10) -> list[ColumnDomain]:
    """The cells of every column, from public numeric bounds and REAL's schema.

    Parameters
    ----------
    real : pandas.DataFrame
    bounds : mapping of str to (low, high)
        Public bounds of every numeric column.
    bins : int, default=10
        Equal-width bins per numeric column.

    Raises
    ------
    DataError
        A numeric column without bounds, or bounds for a column REAL lacks or that is
        not numeric.
    InvalidParameterError
        Bounds that are not finite with low < high.
    """
    bins = check_scalar(bins, "bins", kind=int, low=1, high=10_000)
    columns = [str(c) for c in real.columns]
    unknown = [c for c in bounds if c not in columns]
    if unknown:
        raise DataError(f"--bounds must name columns of REAL. Got {', '.join(unknown)} "
                        f"(columns: {', '.join(columns)}).")
    frame = real.rename(columns=str)
    numeric = [c for c in columns if _is_numeric(frame[c])]
    not_numeric = [c for c in bounds if c not in numeric]
    if not_numeric:
        raise DataError(f"--bounds must name numeric columns. Got {', '.join(not_numeric)} "
                        "(categorical: its levels are its cells).")
    missing = [c for c in numeric if c not in bounds]
    if missing:
        raise DataError(
            f"--bounds must give public bounds of every numeric column (bin edges are never "
            f"read from the private rows). Got none for {', '.join(missing)}; e.g. "
            f"--bounds {missing[0]}=LOW:HIGH.")
    out = []
    for c in columns:
        s = frame[c]
        if c not in bounds:
            levels = sorted({None if pd.isna(v) else v for v in s}, key=lambda v: (v is None,
                                                                                  str(v)))
            out.append(ColumnDomain(c, "categorical", levels))
            continue
        lo = check_scalar(bounds[c][0], f"--bounds {c} low")
        hi = check_scalar(bounds[c][1], f"--bounds {c} high")
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise InvalidParameterError(f"--bounds {c} must be finite with LOW < HIGH. "
                                        f"Got {lo:g}:{hi:g}.")
        integer = pd.api.types.is_integer_dtype(s)
        n_int = math.floor(hi) - math.ceil(lo) + 1
        if integer and n_int <= bins:
            # One cell per integer: edges at the half-integers.
            edges = list(np.arange(math.ceil(lo), math.floor(hi) + 2) - 0.5)
        else:
            edges = list(np.linspace(lo, hi, bins + 1))
        out.append(ColumnDomain(c, "numeric", [float(e) for e in edges], bool(integer),
                                bool(s.isna().any())))
    return out


@dataclass
class DPMarginals:
    """The noisy marginals of one release and the privacy they cost.

    Attributes
    ----------
    domain : list of ColumnDomain
    marginals : list of tuple of str
        The measured marginals (one or two columns each).
    noisy : list of ndarray
        Noisy counts of each marginal (2-way: rows the first column's cells).
    sigma : float
        Standard deviation of the noise on every count.
    mu : float
        The release is μ-GDP, μ = √m / σ.
    anchor : tuple of str
        Columns every other column was measured jointly with (may be empty).
    """

    domain: list[ColumnDomain]
    marginals: list[tuple[str, ...]]
    noisy: list[np.ndarray]
    sigma: float
    mu: float
    anchor: tuple[str, ...] = ()

    def total(self) -> float:
        """The noisy number of rows: inverse-variance mean of every marginal's total."""
        sizes = np.array([n.size for n in self.noisy], float)
        totals = np.array([n.sum() for n in self.noisy])
        w = 1.0 / sizes
        return float((w * totals).sum() / w.sum())


def _choose_marginals(columns: Sequence[str], anchor: Sequence[str]) -> list[tuple[str, ...]]:
    """1-way marginals of every column; the anchor's joint and the anchor with each other."""
    ways: list[tuple[str, ...]] = [(c,) for c in columns]
    if len(anchor) > 1:
        ways.append(tuple(anchor))
    if anchor:
        ways += [(*anchor, c) for c in columns if c not in anchor]
    return ways


def noise_for(target: RiskTarget, n_marginals: int) -> tuple[float, float, float]:
    """(σ, μ, achieved risk): the smallest σ whose release of ``n_marginals`` meets ``target``."""
    res = calibrate_gaussian(target)
    mu = res.value
    if mu <= 0:
        raise InvalidParameterError(f"--risk must allow some release. Got {target.describe()}.")
    sigma = math.sqrt(n_marginals) / mu
    # √m/σ may round above the calibrated μ: step σ up until the release's own μ is safe.
    while target.measure(GaussianTradeOff(math.sqrt(n_marginals) / sigma)) > target.value:
        sigma = math.nextafter(sigma, math.inf)
    mu_release = math.sqrt(n_marginals) / sigma
    return sigma, mu_release, float(target.measure(GaussianTradeOff(mu_release)))


def fit_marginals(real: pd.DataFrame, domain: list[ColumnDomain], target: RiskTarget,
                  anchor: Sequence[str] = (), seed: int = 0) -> DPMarginals:
    """Measure the marginals of ``real`` with Gaussian noise calibrated to ``target``.

    ``anchor``: at most two distinct columns every other column is measured (and later
    sampled) jointly with.
    """
    anchor = tuple(dict.fromkeys(anchor))
    if len(anchor) > 2:
        raise InvalidParameterError(f"anchor must be at most two columns. Got {anchor}.")
    frame = real.rename(columns=str)
    cells = {d.name: d.encode(frame[d.name]) for d in domain}
    sizes = {d.name: d.size for d in domain}
    ways = _choose_marginals([d.name for d in domain], anchor)
    sigma, mu, _ = noise_for(target, len(ways))
    rng = np.random.default_rng(seed)
    noisy = []
    for w in ways:
        shape = tuple(sizes[c] for c in w)
        flat = np.ravel_multi_index(tuple(cells[c] for c in w), shape)
        counts = np.bincount(flat, minlength=math.prod(shape)).reshape(shape).astype(float)
        noisy.append(counts + rng.normal(0.0, sigma, size=shape))
    return DPMarginals(domain, ways, noisy, sigma, mu, anchor)


def _normalise(counts: np.ndarray) -> np.ndarray:
    p = np.clip(counts, 0, None)
    s = p.sum(axis=-1, keepdims=True)
    uniform = np.full_like(p, 1.0 / p.shape[-1])
    return np.where(s > 0, p / np.where(s > 0, s, 1), uniform)


def _draw(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One category per row of ``p`` (rows are distributions)."""
    c = np.cumsum(p, axis=-1)
    u = rng.random(p.shape[0]) * c[:, -1]
    return np.minimum((c < u[:, None]).sum(axis=1), p.shape[1] - 1)


def generate(model: DPMarginals, n_rows: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Sample a synthetic table from the noisy marginals (post-processing only).

    ``n_rows`` defaults to the noisy total (at least 2).
    """
    rng = np.random.default_rng(seed + 1)
    n = max(2, int(round(model.total()))) if n_rows is None else check_scalar(
        n_rows, "rows", kind=int, low=1)
    noisy = dict(zip(model.marginals, model.noisy))
    anchor = tuple(model.anchor)
    cells: dict[str, np.ndarray] = {}
    flat = np.zeros(n, dtype=np.int64)
    if anchor:
        joint = noisy[anchor]
        p = _normalise(joint.ravel())
        flat = rng.choice(p.size, size=n, p=p)
        for c, idx in zip(anchor, np.unravel_index(flat, joint.shape)):
            cells[c] = idx
    for d in model.domain:
        if d.name in cells:
            continue
        if anchor:
            table = noisy[(*anchor, d.name)].reshape(-1, d.size)
            cells[d.name] = _draw(_normalise(table)[flat], rng)
        else:
            one = noisy[(d.name,)]
            p = _normalise(one)
            cells[d.name] = rng.choice(p.size, size=n, p=p)
    return pd.DataFrame({d.name: d.decode(cells[d.name], rng) for d in model.domain})
