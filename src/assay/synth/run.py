"""The synthetic-release audit: every attack on one encoding, one typed result.

`audit_release` takes the generator's training rows (REAL), the release (SYNTH) and rows
of the same population the generator never saw (HOLDOUT), and returns a `SynthPayload`
whose JSON form has ``singling_out``, ``linkability``, ``inference`` and ``membership``
(each with its headline ``risk`` or ``auc`` as ``{value, ci_low, ci_high}``), validated by
``schema.json`` beside this module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, ClassVar, cast

import numpy as np
import pandas as pd

from assay._serial import Serial, meta
from assay._stats import Estimate
from assay._validation import DataError, InvalidParameterError, check_scalar
from assay.synth.encoding import encode_tables
from assay.synth.membership import MembershipFigures, membership_attack
from assay.synth.risks import (
    LinkabilityFigures,
    RiskFigures,
    SecretFigures,
    default_link_columns,
    inference_risk,
    linkability_risk,
    singling_out_risk,
)
from assay.synth.shadow import check_generator, make_generator, shadow_attack
from assay.synth.utility import RegressionUtility

__all__ = ["RegressionSynthPayload", "SynthOptions", "SynthPayload", "audit_release",
           "payload_schema"]


@dataclass(frozen=True)
class SynthOptions:
    """Attack settings of a synthetic-release audit.

    Parameters
    ----------
    secrets : tuple of str, default=()
        Columns whose inference is attacked (default: every column).
    protected : tuple of str, default=()
        Columns whose values are the groups of the per-group figures.
    n_attacks : int, default=500
        Attacks of each kind on each side (anonymeter's default).
    n_cols : int, default=3
        Attributes per multivariate singling-out predicate.
    link_columns : tuple of two tuples of str, optional
        The attacker's two parts for linkability (default: the columns' two halves).
    n_neighbors : int, default=1
        Nearest synthetic rows the two parts may share.
    k : int, default=5
        Largest neighbour rank of the membership attack's densities.
    fprs : tuple of float, default=(0.1, 0.01, 0.001)
    max_attempts : int, default=10_000_000
        Multivariate singling-out predicates tried at most.
    min_support : int, default=30
        Targets (or members and non-members) a group needs for figures.
    min_gap : float, default=0.05
        Smallest excess of a group's risk (AUC) over the overall one that is flagged.
    alpha : float, default=0.05
    confidence : float, default=0.95
    seed : int, default=0
    generator : str, optional
        The release's generator (``marginals``, ``dp-marginals:RISK``, ``copula`` or
        ``mst:RISK``, see `assay.synth.shadow.check_generator`): then the
        shadow-generator attack runs beside the density one (``membership.shadow``).
    n_shadow : int, default=16
        Shadow tables the generator is refitted on, even (the shadow attack's whole cost).
    n_jobs : int or None, default=1
        Shadow fits at once (None: one per core).
    """

    secrets: tuple[str, ...] = ()
    protected: tuple[str, ...] = ()
    n_attacks: int = 500
    n_cols: int = 3
    link_columns: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    n_neighbors: int = 1
    k: int = 5
    fprs: tuple[float, ...] = (0.1, 0.01, 0.001)
    max_attempts: int = 10_000_000
    min_support: int = 30
    min_gap: float = 0.05
    alpha: float = 0.05
    confidence: float = 0.95
    seed: int = 0
    generator: str | None = None
    n_shadow: int = 16
    n_jobs: int | None = 1

    def __post_init__(self) -> None:
        check_scalar(self.n_attacks, "n_attacks", kind=int, low=1)
        check_scalar(self.n_cols, "n_cols", kind=int, low=1)
        check_scalar(self.n_neighbors, "n_neighbors", kind=int, low=1)
        check_scalar(self.k, "k", kind=int, low=1)
        for a in self.fprs:
            check_scalar(a, "fprs", low=0, high=1, low_open=True, high_open=True)
        check_scalar(self.max_attempts, "max_attempts", kind=int, low=1)
        check_scalar(self.min_support, "min_support", kind=int, low=1)
        check_scalar(self.min_gap, "min_gap", low=0, high=1)
        check_scalar(self.alpha, "alpha", low=0, high=1, low_open=True, high_open=True)
        check_scalar(self.confidence, "confidence", low=0, high=1, low_open=True,
                     high_open=True)
        check_scalar(self.seed, "seed", kind=int, low=0)
        check_scalar(self.n_shadow, "n_shadow", kind=int, low=2)
        if self.n_shadow % 2:
            raise InvalidParameterError(f"n_shadow must be even (complementary pairs of "
                                        f"shadow tables). Got {self.n_shadow}.")
        if self.n_jobs is not None:
            check_scalar(self.n_jobs, "n_jobs", kind=int, low=1)
        if self.generator is not None:
            check_generator(self.generator)
        if self.link_columns is not None and (
                len(self.link_columns) != 2 or not all(self.link_columns)):
            raise InvalidParameterError(
                f"link_columns must be two non-empty lists of columns. Got "
                f"{self.link_columns!r}.")


@dataclass
class SinglingOut(Serial):
    """Univariate and multivariate singling out; the headline is the larger risk."""

    univariate: RiskFigures
    multivariate: RiskFigures
    n_queries: dict[str, int] = field(metadata=meta(schema={"required": ["univariate",
                                                                       "multivariate"]}))
    n_cols: int

    __json_layout__ = ("risk", "univariate", "multivariate", "n_queries", "n_cols")

    @property
    def risk(self) -> Estimate:
        u, m = self.univariate.risk, self.multivariate.risk
        return m if not np.isfinite(u.value) or m.value >= u.value else u


@dataclass
class Inference(Serial):
    """Inference of every secret; the headline is the most exposed secret's risk."""

    secrets: list[SecretFigures] = field(metadata=meta(schema={"minItems": 1}))

    __json_layout__ = (("risk", lambda s: s.worst.figures.risk),
                       ("secret", lambda s: s.worst.secret), "secrets")

    @property
    def worst(self) -> SecretFigures:
        return max(self.secrets, key=lambda s: (np.nan_to_num(s.figures.risk.value, nan=-1),
                                                s.figures.risk.ci_high))


@dataclass
class SynthPayload(Serial):
    """Everything the synthetic-release audit found."""

    singling_out: SinglingOut
    linkability: LinkabilityFigures
    inference: Inference
    membership: MembershipFigures
    n_real: int
    n_synth: int
    n_holdout: int
    columns: list[str]
    protected: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    __json_required__: ClassVar[tuple[str, ...]] = ("protected", "options")
    # The audit of a regression table (``task``) reads as its own type.
    __json_variants__ = ("task", {"regression": lambda: RegressionSynthPayload})

    def flagged_groups(self) -> list[str]:
        """Labels of every flagged group, with the attack that flags it."""
        out = [f"linkability: {g.label}" for g in self.linkability.groups if g.flagged]
        out += [f"inference of {s.secret}: {g.label}" for s in self.inference.secrets
                for g in s.groups if g.flagged]
        out += [f"membership: {g.label}" for g in self.membership.groups if g.flagged]
        return out


@dataclass(kw_only=True)
class RegressionSynthPayload(SynthPayload):
    """The synthetic section's payload on a regression table: the same risks and
    membership attack (the target's kind does not enter them) and the release's
    downstream utility for the continuous target (``utility``); ``task`` is
    "regression"."""

    utility: RegressionUtility
    task: str = field(default="regression", metadata=meta(schema={"const": "regression"}))

    __json_required__ = ("protected", "options", "task")


@cache
def payload_schema() -> dict[str, Any]:
    """JSON Schema of `SynthPayload.to_dict`."""
    text = resources.files("assay.synth").joinpath("schema.json").read_text("utf-8")
    return json.loads(text)


def check_columns(real: pd.DataFrame, synth: pd.DataFrame, holdout: pd.DataFrame,
                  options: SynthOptions) -> list[str]:
    """The attack columns (the real table's), after checking every named column exists.

    Raises
    ------
    DataError
        A table without rows or without a column of the real table, a secret, protected
        or link column the real table lacks.
    """
    for name, frame in (("REAL", real), ("SYNTH", synth), ("HOLDOUT", holdout)):
        if len(frame) < 2:
            raise DataError(f"{name} must have at least 2 rows. Got {len(frame)}.")
    columns = [str(c) for c in real.columns]
    if len(columns) < 2:
        raise DataError(f"REAL must have at least 2 columns. Got {columns}.")
    for name, frame in (("SYNTH", synth), ("HOLDOUT", holdout)):
        missing = [c for c in columns if c not in set(map(str, frame.columns))]
        if missing:
            raise DataError(f"{name} must have every column of REAL. Got it without "
                            f"{', '.join(missing)}.")
    named = [("--secret", list(options.secrets)), ("--protected", list(options.protected))]
    if options.link_columns is not None:
        named.append(("--link-columns", [c for p in options.link_columns for c in p]))
    for flag, names in named:
        unknown = [c for c in names if c not in columns]
        if unknown:
            raise DataError(f"{flag} must name columns of REAL. Got {', '.join(unknown)} "
                            f"(columns: {', '.join(columns)}).")
    if options.n_cols > len(columns):
        raise InvalidParameterError(f"n_cols must be at most the {len(columns)} columns. "
                                    f"Got {options.n_cols}.")
    return columns


def audit_release(real: pd.DataFrame, synth: pd.DataFrame, holdout: pd.DataFrame,
                  options: SynthOptions | None = None, *,
                  on_shadow_fit: Callable[[int, int], None] | None = None) -> SynthPayload:
    """Measure singling out, linkability, inference and membership risk of a release.

    Parameters
    ----------
    real : pandas.DataFrame
        The generator's training rows.
    synth : pandas.DataFrame
        The release (at least the real table's columns; others are ignored).
    holdout : pandas.DataFrame
        Rows of the same population the generator never saw (the control).
    options : SynthOptions, optional
    on_shadow_fit : callable, optional
        Called as ``on_shadow_fit(done, total)`` after each of the shadow attack's fits.

    Returns
    -------
    SynthPayload
    """
    options = options or SynthOptions()
    columns = check_columns(real, synth, holdout, options)
    real = real.rename(columns=str)
    synth = synth.rename(columns=str)
    holdout = holdout.rename(columns=str)
    tables = encode_tables(real, synth, holdout, columns)
    groups = {p: (real[p].astype(str).to_numpy(object), holdout[p].astype(str).to_numpy(object))
              for p in options.protected}
    seed = options.seed
    common: dict[str, Any] = dict(confidence=options.confidence)
    group_rule: dict[str, Any] = dict(min_support=options.min_support,
                                      min_gap=options.min_gap, alpha=options.alpha)
    uni, n_uni = singling_out_risk(tables, mode="univariate", n_attacks=options.n_attacks,
                                   random_state=seed, **common)
    multi, n_multi = singling_out_risk(tables, mode="multivariate", n_attacks=options.n_attacks,
                                       n_cols=options.n_cols, max_attempts=options.max_attempts,
                                       random_state=seed + 1, **common)
    singling = SinglingOut(uni, multi, {"univariate": n_uni, "multivariate": n_multi},
                           options.n_cols)
    link_cols = (default_link_columns(columns) if options.link_columns is None
                 else cast(tuple[list[str], list[str]],
                           tuple(list(p) for p in options.link_columns)))
    link = linkability_risk(tables, link_cols, n_attacks=options.n_attacks,
                            n_neighbors=options.n_neighbors, groups=groups,
                            random_state=seed + 2, **common, **group_rule)
    secrets = list(options.secrets) or columns
    # Every secret's groups share the level (see `risks._group_figures`).
    secret_rule: dict[str, Any] = {**group_rule, "alpha": options.alpha / len(secrets)}
    inference = Inference([inference_risk(tables, s, n_attacks=options.n_attacks,
                                          groups=groups, random_state=seed + 3 + i,
                                          **common, **secret_rule)
                           for i, s in enumerate(secrets)])
    membership = membership_attack(tables, k=options.k, fprs=options.fprs, groups=groups,
                                   min_support=options.min_support, min_gap=options.min_gap,
                                   **common)
    if options.generator is not None:
        membership.shadow = shadow_attack(tables, make_generator(options.generator, tables,
                                                                   seed + 5),
                                          n_shadow=options.n_shadow, n_jobs=options.n_jobs,
                                          fprs=options.fprs, random_state=seed + 4,
                                          name=options.generator, on_world=on_shadow_fit,
                                          **common)
    return SynthPayload(
        singling_out=singling, linkability=link, inference=inference, membership=membership,
        n_real=len(real), n_synth=len(synth), n_holdout=len(holdout), columns=columns,
        protected=list(options.protected),
        options={"n_attacks": options.n_attacks, "n_cols": options.n_cols,
                 "n_neighbors": options.n_neighbors, "k": options.k,
                 "fprs": list(options.fprs), "confidence": options.confidence,
                 "min_support": options.min_support, "min_gap": options.min_gap,
                 "alpha": options.alpha, "seed": options.seed,
                 "max_attempts": options.max_attempts,
                 "generator": options.generator, "n_shadow": options.n_shadow})


def summary_lines(payload: SynthPayload) -> list[str]:
    """Plain-language findings, most important first."""

    def ci(e: Estimate) -> str:
        return f"{100 * e.value:.1f} % [{100 * e.ci_low:.1f}, {100 * e.ci_high:.1f}]"

    m = payload.membership
    lines = [
        f"Membership inference on the release: AUC {m.auc.value:.3f} "
        f"[{m.auc.ci_low:.3f}, {m.auc.ci_high:.3f}] ({m.n_members} training rows against "
        f"{m.n_nonmembers} holdout rows).",
    ]
    if m.shadow is not None:
        sh = m.shadow
        lines.append(f"Shadow-generator membership attack ({sh.generator} refitted on "
                     f"{sh.n_shadow} shadow tables, each target in half of them): AUC "
                     f"{sh.auc.value:.3f} "
                     f"[{sh.auc.ci_low:.3f}, {sh.auc.ci_high:.3f}] ({sh.n_members} training "
                     f"rows against {sh.n_nonmembers} holdout rows).")
    lines += [
        f"Singling-out risk {ci(payload.singling_out.risk)}, linkability risk "
        f"{ci(payload.linkability.figures.risk)}, inference risk "
        f"{ci(payload.inference.worst.figures.risk)}"
        f" (most exposed secret: {payload.inference.worst.secret}); each beyond what the same "
        "attack achieves on rows the generator never saw.",
        f"Distance to closest record: exact copies of {100 * m.dcr.exact_real:.1f} % of the "
        f"training rows ({100 * m.dcr.exact_holdout:.1f} % of holdout rows); {m.dcr.note}.",
    ]
    lines += _caveats(payload)
    flagged = payload.flagged_groups()
    if flagged:
        lines.append("Flagged groups: " + "; ".join(flagged) + ".")
    if isinstance(payload, RegressionSynthPayload):
        lines.append(utility_line(payload.utility))
    return lines


def _caveats(payload: SynthPayload) -> list[str]:
    """What a linkability risk means when counting tied rows links materially more, and a
    singling-out risk when fewer predicates than attacks were found."""
    n = payload.options.get("n_attacks")
    so = payload.singling_out
    out: list[str] = []
    link, ties = payload.linkability.figures.risk, payload.linkability.with_ties
    if ties is not None and ties.risk.value - link.value >= payload.options.get("min_gap",
                                                                                 0.05):
        out.append(f"Linkability counting every tied nearest synthetic row: "
                   f"{100 * ties.risk.value:.1f} % [{100 * ties.risk.ci_low:.1f}, "
                   f"{100 * ties.risk.ci_high:.1f}], against {100 * link.value:.1f} % "
                   "by anonymeter's rule, which keeps one of tied rows by row order: where a "
                   "part's values repeat in the release, read the larger.")
    if not n:
        return out
    if so.n_queries["univariate"] < n:
        out.append(f"Singling out (univariate): only {so.n_queries['univariate']} single "
                   f"values single out a row of the release; the other attacks of {n} count "
                   "as failed (anonymeter's rule).")
    if so.n_queries["multivariate"] < n:
        tries = payload.options.get("max_attempts")
        within = f" in {tries:,} tries" if tries else ""
        out.append(f"Singling out (multivariate): {so.n_queries['multivariate']} of {n} "
                   f"predicates found{within}; the missing ones count as failed attacks, so "
                   "this risk is a lower bound (a larger max_attempts searches further).")
    return out


def utility_line(u: RegressionUtility) -> str:
    """The downstream utility of a release for a continuous target, in one sentence."""
    from assay.report.result import format_amount

    def r2(e: Estimate) -> str:
        return f"{e.value:.3f} [{e.ci_low:.3f}, {e.ci_high:.3f}]"

    return (f"Predicting {u.target} on the holdout with a {u.model}: R² {r2(u.r2_synthetic)} "
            f"trained on the release against {r2(u.r2_real)} trained on the real rows "
            f"(loss {r2(u.r2_gap)}); MAE {format_amount(u.mae_synthetic.value)} against "
            f"{format_amount(u.mae_real.value)} (predicting the real mean: "
            f"{format_amount(u.mae_mean_baseline)}).")
