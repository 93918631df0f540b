"""A DP synthetic release at the largest budget meeting an attack-risk target: the
generator of `assay.synth.marginals` (or smartnoise-synth's MST, `assay.synth.mst`), the
release's utility beside the real table, and the audit of `assay.synth.run` on it
(`assay synth-dp`).

The generator's names (`ColumnDomain`, `DPMarginals`, `check_domain`, `fit_marginals`,
`generate`, `noise_for`) are importable from here as well.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from assay._serial import Serial, meta
from assay._validation import DataError
from assay.privacy.theory.accounting import GaussianTradeOff
from assay.privacy.theory.calibrate import RiskTarget
from assay.synth.marginals import (
    ColumnDomain,
    DPMarginals,
    check_domain,
    fit_marginals,
    generate,
    noise_for,
)
from assay.synth.mst import MSTCalibration
from assay.synth.run import SynthOptions, SynthPayload, audit_release, check_columns
from assay.synth.utility import downstream_utility

__all__ = ["DP_GENERATORS", "ColumnDomain", "DPMarginals", "SynthDPResult", "check_domain",
           "check_dp_generator", "fit_marginals", "generate", "noise_for", "utility", "synth_dp",
           "result_schema"]

#: δ at which the release's ε is reported beside μ (the usual one for tables of thousands).
REPORT_DELTA = 1e-5
#: The generators `synth_dp` can release with (``mst`` needs ``pip install 'assay[synth]'``).
DP_GENERATORS = ("marginals", "mst")


# ---------------------------------------------------------------------------------
# Utility
# ---------------------------------------------------------------------------------


def _cramers_v(a: np.ndarray, b: np.ndarray, ka: int, kb: int) -> float:
    table = np.bincount(a * kb + b, minlength=ka * kb).reshape(ka, kb).astype(float)
    table = table[table.sum(1) > 0][:, table.sum(0) > 0]
    if min(table.shape) < 2:
        return 0.0
    n = table.sum()
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return math.sqrt(chi2 / (n * (min(table.shape) - 1)))


def _association(frame: pd.DataFrame, domain: list[ColumnDomain]) -> dict[tuple[str, str], float]:
    """Pearson correlation of numeric pairs, Cramér's V on the cells otherwise."""
    cells = {d.name: d.encode(frame[d.name]) for d in domain}
    out = {}
    for i, a in enumerate(domain):
        for b in domain[i + 1:]:
            if a.kind == b.kind == "numeric":
                x = pd.to_numeric(frame[a.name], errors="coerce")
                y = pd.to_numeric(frame[b.name], errors="coerce")
                r = x.corr(y)
                out[(a.name, b.name)] = 0.0 if pd.isna(r) else float(r)
            else:
                out[(a.name, b.name)] = _cramers_v(cells[a.name], cells[b.name], a.size, b.size)
    return out


def utility(real: pd.DataFrame, synth: pd.DataFrame, holdout: pd.DataFrame,
            domain: list[ColumnDomain], target: str | None, seed: int = 0) -> dict[str, Any]:
    """Marginal total-variation distance per column (on the cells), the largest and mean
    absolute difference of pairwise associations, and the downstream figures
    (`assay.synth.utility`: accuracies for classes, MAE and R² for a continuous target)."""
    tvd = {}
    for d in domain:
        p = np.bincount(d.encode(real[d.name]), minlength=d.size) / len(real)
        q = np.bincount(d.encode(synth[d.name]), minlength=d.size) / len(synth)
        tvd[d.name] = float(0.5 * np.abs(p - q).sum())
    a_real, a_synth = _association(real, domain), _association(synth, domain)
    diffs = {k: abs(a_real[k] - a_synth[k]) for k in a_real}
    worst = max(diffs, key=lambda k: diffs[k]) if diffs else None
    return {
        "tvd": tvd, "tvd_mean": float(np.mean(list(tvd.values()))),
        "tvd_max": float(max(tvd.values())),
        "association": {
            "measure": "Pearson correlation (numeric pairs), Cramér's V on the cells (others)",
            "mean_abs_diff": float(np.mean(list(diffs.values()))) if diffs else 0.0,
            "max_abs_diff": float(diffs[worst]) if worst else 0.0,
            "worst_pair": list(worst) if worst else []},
        "downstream": None if target is None else downstream_utility(real, synth, holdout,
                                                                     target, seed),
    }


# ---------------------------------------------------------------------------------
# The release and its audit
# ---------------------------------------------------------------------------------


@dataclass
class SynthDPResult(Serial):
    """A DP synthetic release: its calibration, its utility and its audit."""

    target: dict[str, Any] = field(metadata=meta(schema={
        "required": ["target", "target_value", "description"]}))
    sigma: float
    mu: float
    achieved: float
    marginals: list[list[str]] = field(metadata=meta(schema={
        "items": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3}}))
    domain: list[ColumnDomain]
    n_real: int
    n_synth: int
    utility: dict[str, Any] = field(metadata=meta(schema={
        "required": ["tvd", "tvd_mean", "tvd_max", "association", "downstream"]}))
    audit: SynthPayload
    seconds: dict[str, float] = field(default_factory=dict)
    generator: str = "noisy marginals, columns conditional on the anchor (Gaussian mechanism)"
    anchor: list[str] = field(default_factory=list, metadata=meta(schema={"maxItems": 2}))
    #: MST's budget (`assay.synth.mst`); then ``mu`` is its Gaussian measurements' only.
    mst: MSTCalibration | None = None

    __json_layout__ = ("target", "sigma", "mu",
                       ("epsilon", lambda s: {"value": float(s.epsilon), "delta": REPORT_DELTA}),
                       "achieved", ("n_marginals", lambda s: len(s.marginals)), "marginals",
                       "domain", "n_real", "n_synth", "utility", "audit", "seconds", "generator",
                       "anchor", "mst")
    __json_required__ = ("seconds", "generator", "anchor")

    @property
    def epsilon(self) -> float:
        """ε of the release at δ = `REPORT_DELTA` (exact for μ-GDP; MST's composed curve's)."""
        if self.mst is not None:
            return self.mst.curve().epsilon(REPORT_DELTA)
        return GaussianTradeOff(self.mu).epsilon(REPORT_DELTA)


@cache
def result_schema() -> dict[str, Any]:
    """JSON Schema of `SynthDPResult.to_dict`."""
    text = resources.files("assay.synth").joinpath("dp.schema.json").read_text("utf-8")
    return json.loads(text)


def synth_dp(real: pd.DataFrame, holdout: pd.DataFrame, target: RiskTarget, *,
             bounds: Mapping[str, tuple[float, float]], bins: int = 10,
             label: str | None = None, options: SynthOptions | None = None,
             n_rows: int | None = None, generator: str = "marginals"
             ) -> tuple[pd.DataFrame, SynthDPResult]:
    """Generate a release at the largest budget meeting ``target`` and audit it.

    Parameters
    ----------
    real : pandas.DataFrame
        The private rows.
    holdout : pandas.DataFrame
        Rows of the same population the generator never sees (the audit's control and
        the downstream model's test set).
    target : RiskTarget
        E.g. ``parse_target("tpr@fpr=0.05@0.01")``.
    bounds : mapping of str to (low, high)
        Public bounds of every numeric column.
    bins : int, default=10
    label : str, optional
        Column the downstream model predicts (skipped when None).
    options : SynthOptions, optional
        The audit's settings; its first ``protected`` column and ``label`` are the
        anchor every other column is measured with, and its ``seed`` seeds the noise.
    n_rows : int, optional
        Rows to generate (default: the noisy total).
    generator : {"marginals", "mst"}, default="marginals"
        assay's noisy marginals, or smartnoise-synth's MST (`assay.synth.mst`: no anchor,
        the tree of 2-way marginals is chosen privately; needs the synth extra).

    Returns
    -------
    (pandas.DataFrame, SynthDPResult)
    """
    check_dp_generator(generator)
    options = options or SynthOptions()
    real = real.rename(columns=str)
    holdout = holdout.rename(columns=str)
    check_columns(real, real, holdout, options)
    if label is not None and label not in real.columns:
        raise DataError(f"--target must name a column of REAL. Got {label}.")
    t0 = time.perf_counter()
    domain = check_domain(real, bounds, bins)
    if generator == "mst":
        return _synth_mst(real, holdout, target, domain, label, options, n_rows, t0)
    anchor = tuple(dict.fromkeys([*options.protected[:1], *([label] if label else [])]))
    model = fit_marginals(real, domain, target, anchor, options.seed)
    synth = generate(model, n_rows, options.seed)
    util, audit, seconds = _audit_release(real, synth, holdout, domain, label, options, t0)
    achieved = float(target.measure(GaussianTradeOff(model.mu)))
    result = SynthDPResult(
        target={**target.params(), "description": target.describe()}, sigma=model.sigma,
        mu=model.mu, achieved=achieved, marginals=[list(m) for m in model.marginals],
        domain=domain, n_real=len(real), n_synth=len(synth), utility=util, audit=audit,
        anchor=list(anchor), seconds=seconds)
    return synth, result


def _audit_release(real: pd.DataFrame, synth: pd.DataFrame, holdout: pd.DataFrame,
                   domain: list[ColumnDomain], label: str | None, options: SynthOptions,
                   t0: float) -> tuple[Any, Any, dict[str, float]]:
    """What every DP generator's release goes through once generated (since `t0`): REAL's
    integer columns kept as integers (in place), then its utility and its audit, timed."""
    for d in domain:
        if d.integer and not d.missing:
            synth[d.name] = synth[d.name].astype(np.int64)
    t1 = time.perf_counter()
    util = utility(real, synth, holdout, domain, label, options.seed)
    t2 = time.perf_counter()
    audit = audit_release(real, synth, holdout, options)
    t3 = time.perf_counter()
    return util, audit, {"generate": t1 - t0, "utility": t2 - t1, "audit": t3 - t2}


def check_dp_generator(generator: str) -> str:
    """``marginals``, or ``mst`` with the synth extra installed; a one-line error otherwise."""
    from assay._validation import InvalidParameterError

    if generator not in DP_GENERATORS:
        raise InvalidParameterError(f"--generator must be one of {', '.join(DP_GENERATORS)}. "
                                    f"Got {generator!r}.")
    if generator == "mst":
        from assay.synth.mst import check_extra

        check_extra("snsynth", "--generator mst")
    return generator


def _synth_mst(real: pd.DataFrame, holdout: pd.DataFrame, target: RiskTarget,
               domain: list[ColumnDomain], label: str | None, options: SynthOptions,
               n_rows: int | None, t0: float) -> tuple[pd.DataFrame, SynthDPResult]:
    """`synth_dp` with smartnoise's MST at the ρ calibrated by `assay.synth.mst`."""
    from assay.synth.mst import calibrate_mst, fit_mst

    calibration = calibrate_mst(target, len(domain))
    synth, fitted = fit_mst(real, domain, calibration, n_rows)
    util, audit, seconds = _audit_release(real, synth, holdout, domain, label, options, t0)
    marginals = [[d.name] for d in domain] + fitted["tree"]
    result = SynthDPResult(
        target={**target.params(), "description": target.describe()}, sigma=fitted["sigma"],
        mu=calibration.gaussian_mu, achieved=float(target.measure(calibration.curve())),
        marginals=marginals, domain=domain, n_real=len(real), n_synth=len(synth),
        utility=util, audit=audit, anchor=[], mst=calibration,
        generator=("smartnoise-synth MST (1-way marginals, a privately chosen tree of 2-way "
                   "marginals, Private-PGM), row total from the noisy marginals"),
        seconds=seconds)
    return synth, result
