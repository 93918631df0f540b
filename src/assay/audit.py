"""One audit end to end: load the table, train the population once, run every section.

`run_audit` reads an `AuditConfig`, builds the `Dataset`, fits one population of K
models (resumable through the on-disk cache under ``out/cache``) and hands the same
`AuditContext` to every registered audit section that applies. Each section returns a
`SectionResult`; together they make the `AuditResult` written to ``out/result.json``
and rendered to ``out/report.html``.

Sections are plug-ins: an object with ``name``, ``title``, ``applies(context)`` and
``run(context)`` passed to `register_section`. The privacy section is registered here;
other areas (``assay.fairness``, ``assay.multiplicity``) register theirs when their
package is imported, and `run_audit` imports them when they are installed. A section::

    class FairnessSection:
        name = "fairness"
        title = "Fairness: whom does it treat worse?"

        def applies(self, context):
            return bool(context.dataset.protected)

        def run(self, context):
            ...  # read context.population / context.dataset, or context.fit(plan)
            return SectionResult(name=self.name, title=self.title, summary=[...],
                                 metrics={"dp_gap": Metric(0.12, 0.05, 0.19, "...")},
                                 data={...})

    register_section(FairnessSection())

``metrics`` are what ``assay gate`` checks (``--max fairness.dp_gap=0.1``); the report
draws a section with the renderer registered for its name in `assay.report.html`
(`register_renderer`), or else shows its summary and a table of its metrics.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from assay._validation import (
    AssayError,
    DataError,
    InvalidParameterError,
    check_option,
    check_scalar,
)
from assay.report.result import (
    AuditResult,
    Metric,
    SectionResult,
    format_rate,
    format_value,
    package_versions,
)

__all__ = [
    "AuditConfig",
    "AuditContext",
    "DPGuarantee",
    "PrivacySection",
    "Section",
    "load_config",
    "register_section",
    "registered_sections",
    "run_audit",
    "unregister_section",
]

#: Packages that register sections of their own when imported (if installed).
SECTION_PACKAGES = ("assay.fairness", "assay.multiplicity")
#: Batch size assumed for the noise-vs-risk curve when no DP-SGD settings are given.
ASSUMED_BATCH_SIZE = 128
#: Epochs assumed for the noise-vs-risk curve when no DP-SGD settings are given.
ASSUMED_EPOCHS = 5
#: Noise multipliers on the noise-vs-risk curve.
NOISE_GRID = (0.4, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0)

ProgressFn = Callable[[str, float], None]


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class DPGuarantee:
    """The DP guarantee a model was trained with (drawn as the theory curve).

    Either DP-SGD settings (``noise_multiplier``, ``sample_rate``, ``steps``) or an
    (ε, δ) pair; not both.
    """

    noise_multiplier: float | None = None
    sample_rate: float | None = None
    steps: int | None = None
    epsilon: float | None = None
    delta: float | None = None

    def __post_init__(self) -> None:
        sgd = (self.noise_multiplier, self.sample_rate, self.steps)
        eps = (self.epsilon, self.delta)
        if any(v is not None for v in sgd) and any(v is not None for v in eps):
            raise InvalidParameterError(
                "dp must be either DP-SGD settings (noise_multiplier, sample_rate, steps) or "
                f"(epsilon, delta), not both. Got {self.to_dict()}.")
        if any(v is not None for v in sgd) and any(v is None for v in sgd):
            raise InvalidParameterError(
                "dp must give all three of noise_multiplier, sample_rate and steps. "
                f"Got {self.to_dict()}.")
        if self.epsilon is not None:
            check_scalar(self.epsilon, "dp epsilon", low=0)
        if self.delta is not None:
            check_scalar(self.delta, "dp delta", low=0, high=1, high_open=True)

    @property
    def kind(self) -> str:
        """``"dpsgd"``, ``"approx"`` or ``"none"``."""
        if self.noise_multiplier is not None:
            return "dpsgd"
        if self.epsilon is not None:
            return "approx"
        return "none"

    def tradeoff(self):
        """The f-DP trade-off curve of the guarantee (`assay.privacy.accounting`)."""
        from assay.privacy import accounting

        if self.kind == "dpsgd":
            return accounting.dpsgd(self.sample_rate, self.steps, self.noise_multiplier,
                                    discretization=1e-3)
        return accounting.approximate_dp(self.epsilon, self.delta or 0.0)

    def describe(self) -> str:
        """Plain-language description for the report."""
        if self.kind == "dpsgd":
            return (f"DP-SGD with noise multiplier σ = {self.noise_multiplier:g}, "
                    f"sample rate q = {self.sample_rate:g}, {self.steps} steps")
        return f"(ε = {self.epsilon:g}, δ = {self.delta or 0:g})-DP"

    def to_dict(self) -> dict[str, Any]:
        """JSON form (None fields left out)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class AuditConfig:
    """Everything an audit is run with (written verbatim into the result).

    Parameters
    ----------
    data : str
        Path of a CSV/Parquet table, or the name of a bundled table (``"synthetic"``,
        ``"adult"``, ...).
    target : str or None
        Label column (optional for a bundled table).
    protected : tuple of str
        Protected columns (default for a bundled table: its own).
    learner : str, default="logreg"
        Learner spec (`assay.learners.get_learner`).
    models : int, default=16
        Models in the population (even); every row is a member of half of them.
    out : str, default="assay-out"
        Output folder: ``result.json``, ``report.html`` and the population cache.
    backend : {"batched", "joblib", "dask"}, default="batched"
    seed : int, default=0
        Seed of the membership plan, the models and the attacks' permutation tests.
    attacks : tuple of str, default=("loss", "lira", "rmia")
    fprs : tuple of float, default=(0.1, 0.01, 0.001)
        FPR levels of the TPR figures.
    risk_target : str, default="tpr@fpr=0.01@0.001"
        Target of the noise calibration (`assay.privacy.calibrate.parse_target`).
    min_support : int, default=50
        Smallest group given per-group figures.
    n_permutations : int, default=200
        Permutations of the group-gap test.
    n_rows : int or None
        Rows of the synthetic table (bundled ``"synthetic"`` only).
    noise_grid : tuple of float, default=NOISE_GRID
        Noise multipliers of the noise-vs-risk curve (empty: no curve, no calibration).
    dp : DPGuarantee or None
        The DP guarantee the model was trained with, if any.
    """

    data: str
    target: str | None = None
    protected: tuple[str, ...] = ()
    learner: str = "logreg"
    models: int = 16
    out: str = "assay-out"
    backend: str = "batched"
    seed: int = 0
    attacks: tuple[str, ...] = ("loss", "lira", "rmia")
    fprs: tuple[float, ...] = (0.1, 0.01, 0.001)
    risk_target: str = "tpr@fpr=0.01@0.001"
    min_support: int = 50
    n_permutations: int = 200
    n_rows: int | None = None
    noise_grid: tuple[float, ...] = NOISE_GRID
    dp: DPGuarantee | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.data, str) or not self.data:
            raise InvalidParameterError(f"data must be a path or a table name. Got {self.data!r}.")
        models = check_scalar(self.models, "models", kind=int, low=4)
        if models % 2:
            raise InvalidParameterError(
                f"models must be an even integer in [4, inf). Got {models}.")
        check_option(self.backend, "backend", ("batched", "joblib", "dask"))
        check_scalar(self.seed, "seed", kind=int, low=0)
        check_scalar(self.min_support, "min_support", kind=int, low=1)
        check_scalar(self.n_permutations, "n_permutations", kind=int, low=0)
        for fpr in self.fprs:
            check_scalar(fpr, "fprs", low=0, high=1, low_open=True, high_open=True)
        object.__setattr__(self, "protected", tuple(self.protected))
        object.__setattr__(self, "attacks", tuple(self.attacks))
        object.__setattr__(self, "noise_grid", tuple(
            check_scalar(s, "noise_grid", low=0.1, high=1000) for s in self.noise_grid))
        object.__setattr__(self, "fprs", tuple(sorted({float(f) for f in self.fprs},
                                                      reverse=True)))
        if not self.fprs:
            raise InvalidParameterError("fprs must hold at least one FPR in (0, 1). Got ().")

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any], source: str = "config") -> AuditConfig:
        """Build from a flat mapping (a TOML file, CLI flags); unknown keys are an error.

        DP settings come as a ``dp`` table or as flat ``dp_*`` keys.
        """
        options = dict(options)
        dp = dict(options.pop("dp", None) or {})
        for key in [k for k in options if k.startswith("dp_")]:
            dp[key.removeprefix("dp_")] = options.pop(key)
        known = {f.name for f in fields(cls)} - {"dp"}
        unknown = sorted(set(options) - known)
        dp_known = {f.name for f in fields(DPGuarantee)}
        unknown += sorted(f"dp.{k}" for k in set(dp) - dp_known)
        if unknown:
            raise InvalidParameterError(
                f"{source} has unknown option(s) {', '.join(map(repr, unknown))}; known "
                f"options are: {', '.join(sorted(known | {'dp'}))} "
                f"(dp: {', '.join(sorted(dp_known))}).")
        if "data" not in options or options["data"] is None:
            raise InvalidParameterError(
                f"data must be a path or a table name (the first argument, or data = ... in a "
                f"config file). Got none in {source}.")
        for key in ("protected", "attacks", "fprs", "noise_grid"):
            if isinstance(options.get(key), str | int | float):
                options[key] = [options[key]]
        guarantee = DPGuarantee(**dp) if any(v is not None for v in dp.values()) else None
        try:
            return cls(dp=guarantee, **{k: v for k, v in options.items() if v is not None})
        except TypeError as exc:
            raise InvalidParameterError(f"{source} has an option of the wrong type: {exc}.") \
                from None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the ``dp`` table only when a guarantee is given)."""
        out = asdict(self)
        out["dp"] = None if self.dp is None else self.dp.to_dict()
        for key in ("protected", "attacks", "fprs", "noise_grid"):
            out[key] = list(out[key])
        return out


def load_config(path: str | Path) -> dict[str, Any]:
    """Read an ``audit.toml`` into a flat mapping for `AuditConfig.from_mapping`.

    Raises
    ------
    InvalidParameterError
        The file is missing or is not valid TOML.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidParameterError(f"config must be an existing TOML file. Got {str(path)!r}.")
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidParameterError(f"config {path} is not valid TOML: {exc}.") from None


# --------------------------------------------------------------------------- sections


@dataclass
class AuditContext:
    """What every section reads: the configuration, the data and the one population.

    Attributes
    ----------
    config : AuditConfig
    dataset : Dataset
    population : Population
        K models on random halves of the rows (``member`` says which).
    out_dir : Path
        The audit's output folder (the population cache is ``out_dir / "cache"``).
    progress : bool
        Whether progress bars are shown.
    extras : dict
        Free space for sections to share intermediate results (by section name).
    """

    config: AuditConfig
    dataset: Any
    population: Any
    out_dir: Path
    progress: bool = False
    extras: dict[str, Any] = field(default_factory=dict)

    def fit(self, plan: Any, learner: Any = None) -> Any:
        """Fit another population on the same data, backend and cache (resumable).

        For sections that need models the shared population does not hold (e.g. a
        Rashomon set trained on the same rows with other seeds or settings).
        """
        from assay.population import fit_population

        return fit_population(
            self.dataset.X, self.dataset.y, learner or self.config.learner, plan,
            n_classes=int(len(self.dataset.classes)), backend=self.config.backend,
            cache_dir=self.out_dir / "cache", data_fingerprint=str(self.dataset.fingerprint),
            progress=self.progress)


@runtime_checkable
class Section(Protocol):
    """An audit section: a pillar of the report that reads the shared population."""

    name: str
    title: str

    def applies(self, context: AuditContext) -> bool:
        """Whether the section has anything to say for this audit."""

    def run(self, context: AuditContext) -> SectionResult:
        """Compute the section's figures."""


_REGISTRY: dict[str, Section] = {}


def register_section(section: Section, *, force: bool = False) -> Section:
    """Add a section to every later audit (in registration order); return it.

    Raises
    ------
    InvalidParameterError
        Not a `Section`, or the name is taken and ``force`` is false.
    """
    if not isinstance(section, Section):
        raise InvalidParameterError(
            "section must have name, title, applies(context) and run(context). "
            f"Got {type(section).__name__}.")
    if section.name in _REGISTRY and not force:
        raise InvalidParameterError(
            f"section name must be unused (pass force=True to replace). Got {section.name!r}.")
    _REGISTRY[section.name] = section
    return section


def unregister_section(name: str) -> None:
    """Remove a registered section (no error when absent)."""
    _REGISTRY.pop(name, None)


def registered_sections() -> list[Section]:
    """The registered sections, after importing the packages that register their own."""
    for package in SECTION_PACKAGES:
        if importlib.util.find_spec(package) is not None:
            importlib.import_module(package)
    return list(_REGISTRY.values())


# --------------------------------------------------------------------------- privacy


class PrivacySection:
    """Membership inference (LOSS, LiRA, RMIA) beside the DP guarantee and the fix."""

    name = "privacy"
    title = "Privacy: membership inference"

    def applies(self, context: AuditContext) -> bool:
        return context.population.n_models >= 4

    def run(self, context: AuditContext) -> SectionResult:
        from assay.privacy.attacks import run_mia

        cfg = context.config
        mia = run_mia(context.population, attacks=cfg.attacks, groups=context.dataset.groups,
                      row_ids=context.dataset.row_ids, fprs=cfg.fprs, random_state=cfg.seed,
                      min_support=cfg.min_support, n_permutations=cfg.n_permutations)
        data = {"mia": mia.to_dict()}
        attacks = data["mia"]["attacks"]
        strongest = _strongest_attack(attacks, min(cfg.fprs))
        data["strongest_attack"] = strongest
        data["exposed_groups"] = _exposed_groups(attacks[strongest], min(cfg.fprs))
        if cfg.dp is not None:
            data["theory"] = _theory(cfg.dp, attacks[strongest], cfg.fprs)
        if cfg.noise_grid:
            data["calibration"] = _calibration(cfg, context.population)
            fix = _fix_curve(data["calibration"], attacks[strongest])
            if fix is not None:
                data["fix_curve"] = fix
        metrics = _privacy_metrics(attacks, cfg.fprs, data.get("theory"))
        summary = _privacy_summary(data, cfg.fprs, cfg.n_permutations)
        return SectionResult(name=self.name, title=self.title, summary=summary,
                             metrics=metrics, data=data)


def _strongest_attack(attacks: dict[str, Any], fpr: float) -> str:
    """The attack with the highest TPR at the smallest FPR (ties: higher AUC)."""
    key = f"{fpr:g}"
    return max(attacks, key=lambda a: (_nan0(attacks[a]["tpr_at_fpr"][key]["value"]),
                                       _nan0(attacks[a]["auc"]["value"])))


def _nan0(value: float | None) -> float:
    return -math.inf if value is None or not math.isfinite(value) else value


def _exposed_groups(attack: dict[str, Any], fpr: float) -> list[dict[str, Any]]:
    """Every supported group (attributes and intersections), most exposed first.

    Ranked by AUC (the whole curve, less noisy than one low-FPR point); each entry
    carries its label (``sex=F & region=Isle``), AUC and TPR at ``fpr`` with intervals,
    support and whether the attribute's gap test is significant.
    """
    key = f"{fpr:g}"
    rows = []
    for attr_key, attr in attack["groups"].items():
        names = attr["attributes"]
        gap = attr["gaps"].get("auc")
        for group, figures in attr["groups"].items():
            if not figures["supported"]:
                continue
            values = group.split(" & ")
            if len(values) == len(names):
                label = " & ".join(f"{n}={v}" for n, v in zip(names, values))
            else:  # a value itself holds " & ": keep the joined form unambiguous
                label = f"{attr_key}={group}"
            rows.append({
                "attributes": attr_key, "group": group, "label": label,
                "n_rows": figures["n_rows"], "auc": figures["auc"],
                "tpr": figures["tpr_at_fpr"].get(key),
                "most_vulnerable": attr["most_vulnerable"] == group,
                "gap_p_value": None if gap is None else gap["p_value"],
                "gap_significant": bool(gap and gap["significant"] and gap["max_group"] == group),
            })
    rows.sort(key=lambda r: -_nan0(r["auc"]["value"]))
    return rows


def _theory(dp: DPGuarantee, attack: dict[str, Any], fprs: tuple[float, ...]) -> dict[str, Any]:
    """The f-DP bound on the attack's ROC grid, and whether the attack exceeds it."""
    curve = dp.tradeoff()
    grid = np.asarray(attack["roc"]["fpr"], dtype=float)
    bound = {f"{f:g}": float(curve.tpr(f)) for f in fprs}
    exceeded = [f"{f:g}" for f in fprs
                if (attack["tpr_at_fpr"][f"{f:g}"]["ci_low"] or 0) > bound[f"{f:g}"] + 1e-12]
    return {"description": dp.describe(), "guarantee": dp.to_dict(),
            "fpr": grid.tolist(), "tpr": np.asarray(curve.tpr(grid), dtype=float).tolist(),
            "tpr_at_fpr": bound, "advantage": float(curve.advantage()),
            "exceeded_at": exceeded}


def _fix_curve(calibration: dict[str, Any], attack: dict[str, Any]) -> dict[str, Any] | None:
    """The f-DP bound of the calibrated fix on the attack's ROC grid (None: no fix found).

    Drawn beside the measured ROC: what no attacker could exceed had the model been
    trained with the calibrated noise.
    """
    if "noise_multiplier" not in calibration:
        return None
    guarantee = DPGuarantee(noise_multiplier=round(calibration["noise_multiplier"], 4),
                            sample_rate=calibration["sample_rate"], steps=calibration["steps"])
    curve = guarantee.tradeoff()
    grid = np.asarray(attack["roc"]["fpr"], dtype=float)
    return {"description": f"after the fix, σ = {guarantee.noise_multiplier:.3g}",
            "guarantee": guarantee.to_dict(), "fpr": grid.tolist(),
            "tpr": np.asarray(curve.tpr(grid), dtype=float).tolist()}


def _calibration(cfg: AuditConfig, population: Any) -> dict[str, Any]:
    """Noise-vs-risk curve of DP-SGD at the population's sample rate, and the noise needed.

    With DP-SGD settings given, those are used; otherwise a batch of
    ``ASSUMED_BATCH_SIZE`` rows of a model's training set and ``ASSUMED_EPOCHS`` epochs
    are assumed (stated in the result).
    """
    from assay.privacy.calibrate import calibrate_dpsgd, noise_risk_curve, parse_target

    if cfg.dp is not None and cfg.dp.kind == "dpsgd":
        q, steps = float(cfg.dp.sample_rate), int(cfg.dp.steps)
        assumption = "the DP-SGD sample rate and steps given for this model"
    else:
        n_train = max(1, int(population.member.sum(axis=1).mean()))
        q = min(1.0, ASSUMED_BATCH_SIZE / n_train)
        steps = max(1, math.ceil(ASSUMED_EPOCHS / q))
        assumption = (f"DP-SGD on each model's {n_train} training rows with batches of "
                      f"{ASSUMED_BATCH_SIZE} (sample rate q = {q:.3g}) for {ASSUMED_EPOCHS} "
                      f"epochs ({steps} steps)")
    fprs = tuple(sorted(cfg.fprs))
    out: dict[str, Any] = {"sample_rate": q, "steps": steps, "assumption": assumption,
                           "risk_target": cfg.risk_target}
    curve = noise_risk_curve(q, steps, cfg.noise_grid, fprs=fprs)
    out["curve"] = curve.to_dict()["curve"]
    try:
        target = parse_target(cfg.risk_target)
        result = calibrate_dpsgd(target, sample_rate=q, steps=steps)
        out["target"] = {**target.params(), "description": target.describe(),
                         "value": float(target.value)}
        out["noise_multiplier"] = float(result.noise_multiplier)
        out["achieved"] = float(result.achieved)
    except AssayError as exc:
        out["error"] = str(exc)
    return out


def _metric(estimate: dict[str, Any], label: str) -> Metric:
    return Metric(value=estimate["value"], ci_low=estimate["ci_low"],
                  ci_high=estimate["ci_high"], label=label)


def _advantage(roc: dict[str, Any]) -> dict[str, float]:
    """Largest TPR − FPR on the averaged ROC grid, with the band at that point."""
    fpr = np.asarray(roc["fpr"], dtype=float)
    gap = np.asarray(roc["tpr"], dtype=float) - fpr
    i = int(np.nanargmax(gap))
    return {"value": float(gap[i]), "ci_low": float(roc["tpr_low"][i] - fpr[i]),
            "ci_high": float(roc["tpr_high"][i] - fpr[i])}


def _privacy_metrics(attacks: dict[str, Any], fprs: tuple[float, ...],
                     theory: dict[str, Any] | None) -> dict[str, Metric]:
    """Per-attack figures (``lira.auc``) and the worst over attacks (``auc``)."""
    metrics: dict[str, Metric] = {}
    per_key: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name, attack in attacks.items():
        figures = {"auc": (attack["auc"], "attack AUC"),
                   "advantage": (_advantage(attack["roc"]), "attack advantage (TPR − FPR)")}
        for f in fprs:
            figures[f"tpr@{f:g}"] = (attack["tpr_at_fpr"][f"{f:g}"], f"TPR at FPR {f:g}")
        for key, (estimate, label) in figures.items():
            metrics[f"{name}.{key}"] = _metric(estimate, f"{name}: {label}")
            per_key.setdefault(key, []).append((name, estimate))
    for key, entries in per_key.items():
        name, worst = max(entries, key=lambda e: _nan0(e[1]["value"]))
        label = metrics[f"{name}.{key}"].label.split(": ", 1)[1]
        metrics[key] = _metric(worst, f"{label}, strongest attack ({name})")
    if theory is not None:
        for key, bound in theory["tpr_at_fpr"].items():
            metrics[f"dp.tpr@{key}"] = Metric(value=bound, label=f"DP bound on TPR at FPR {key}")
        metrics["dp.advantage"] = Metric(value=theory["advantage"], label="DP bound on advantage")
    return metrics


def _privacy_summary(data: dict[str, Any], fprs: tuple[float, ...],
                     n_permutations: int) -> list[str]:
    """Plain-language findings, the headline first."""
    fpr = min(fprs)
    name = data["strongest_attack"]
    attack = data["mia"]["attacks"][name]
    tpr = attack["tpr_at_fpr"][f"{fpr:g}"]
    alarms = round(1 / fpr)
    lines = [
        f"An attacker who accepts 1 false alarm in {alarms:,} identifies "
        f"{format_rate(tpr['value'])} [{format_rate(tpr['ci_low'])}, "
        f"{format_rate(tpr['ci_high'])}] of the training records ({name.upper()} attack, "
        f"AUC {format_value(attack['auc']['value'])})."
    ]
    groups = data["exposed_groups"]
    if groups:
        top = groups[0]
        overall = format_value(attack["auc"]["value"])
        if top["gap_significant"]:
            gap = (f"; the gap between groups is significant (permutation p = "
                   f"{top['gap_p_value']:.3g})")
        elif top["gap_p_value"] is not None and n_permutations > 0:
            gap = (f"; but the gap between groups is not significant (permutation p = "
                   f"{top['gap_p_value']:.3g})")
        else:
            gap = ""
        lines.append(
            f"{top['label']} records are most exposed: AUC {format_value(top['auc']['value'])} "
            f"[{format_value(top['auc']['ci_low'])}, {format_value(top['auc']['ci_high'])}] "
            f"against {overall} overall ({top['n_rows']} rows){gap}.")
    theory = data.get("theory")
    if theory is not None:
        if theory["exceeded_at"]:
            lines.append(
                f"The attack beats the claimed guarantee ({theory['description']}) at FPR "
                f"{', '.join(theory['exceeded_at'])}: the claim or its accounting is wrong.")
        else:
            bound = theory["tpr_at_fpr"][f"{fpr:g}"]
            lines.append(
                f"The claimed guarantee ({theory['description']}) bounds this attacker at "
                f"{format_rate(bound)}; the attack stays within it.")
    cal = data.get("calibration", {})
    if "noise_multiplier" in cal:
        lines.append(
            f"DP-SGD with noise multiplier σ ≥ {cal['noise_multiplier']:.3g} would guarantee "
            f"{cal['target']['description']} (assuming {cal['assumption']}).")
    return lines


register_section(PrivacySection())


# --------------------------------------------------------------------------- running


def load_dataset(config: AuditConfig):
    """The `Dataset` of an audit: a file path or a bundled table's name."""
    from assay.data import Dataset, load
    from assay.data.public import PUBLIC_TABLES

    path = Path(config.data)
    if path.exists():
        if not config.target:
            raise InvalidParameterError(
                f"target must name the label column of {config.data}. Got none.")
        return Dataset.from_path(path, config.target, list(config.protected))
    if config.data == "synthetic" or config.data in PUBLIC_TABLES:
        overrides: dict[str, Any] = {}
        if config.target:
            overrides["target"] = config.target
        if config.protected:
            overrides["protected"] = list(config.protected)
        if config.data == "synthetic":
            overrides["random_state"] = config.seed
            if config.n_rows:
                overrides["n_rows"] = config.n_rows
        return load(config.data, **overrides)
    raise DataError(
        f"data must be an existing file or one of 'synthetic', "
        f"{', '.join(repr(t) for t in PUBLIC_TABLES)}. Got {config.data!r}.")


def _population_summary(population: Any) -> dict[str, Any]:
    info = population.info
    return {
        "n_models": int(population.n_models),
        "n_rows": int(population.n_rows),
        "learner": info.get("learner", {}),
        "backend": info.get("backend"),
        "seeds": [int(s) for s in info.get("seeds", [])],
        "plan_fingerprint": info.get("plan_fingerprint"),
        "train_accuracy": float(np.mean(population.accuracy(members=True))),
        "test_accuracy": float(np.mean(population.accuracy(members=False))),
        "n_fitted": int(info.get("n_fitted", 0)),
        "n_loaded_from_cache": int(info.get("n_loaded_from_cache", 0)),
        "seconds": float(info.get("seconds", 0.0)),
    }


def _data_summary(dataset: Any) -> dict[str, Any]:
    return {"name": str(dataset.name), "n_rows": int(dataset.X.shape[0]),
            "n_features": int(dataset.X.shape[1]), "target": str(dataset.target),
            "protected": [str(p) for p in dataset.protected],
            "classes": [str(c) for c in dataset.classes],
            "fingerprint": str(dataset.fingerprint), "notes": [str(n) for n in dataset.notes]}


def _run_section(section: Section, context: AuditContext) -> SectionResult:
    started = time.perf_counter()
    if not section.applies(context):
        result = SectionResult(name=section.name, title=section.title, status="skipped",
                               message="does not apply to this audit")
    else:
        try:
            result = section.run(context)
        except AssayError as exc:  # user-caused: report it, keep the other sections
            result = SectionResult(name=section.name, title=section.title, status="error",
                                   message=str(exc))
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def run_audit(
    config: AuditConfig,
    *,
    dataset: Any = None,
    progress: bool = True,
    on_stage: ProgressFn | None = None,
    write: bool = True,
) -> AuditResult:
    """Run a whole audit: data, one population, every section; write result and report.

    Parameters
    ----------
    config : AuditConfig
    dataset : Dataset, optional
        Use this dataset instead of loading ``config.data``.
    progress : bool, default=True
        Show rich progress bars.
    on_stage : callable(stage, fraction), optional
        Called as the audit moves on (for the web app's status endpoint).
    write : bool, default=True
        Write ``result.json`` and ``report.html`` into ``config.out``.

    Returns
    -------
    AuditResult
    """
    from assay.population import PopulationPlan, fit_population

    started = time.perf_counter()
    stage = _stages(progress, on_stage)
    out_dir = Path(config.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = registered_sections()  # import plug-ins before any expensive work
    stage("loading data", 0.02)
    if dataset is None:
        dataset = load_dataset(config)
    stage(f"training {config.models} models", 0.1)
    plan = PopulationPlan.balanced(dataset.X.shape[0], config.models, config.seed)
    population = fit_population(
        dataset.X, dataset.y, config.learner, plan, n_classes=int(len(dataset.classes)),
        backend=config.backend, cache_dir=out_dir / "cache",
        data_fingerprint=str(dataset.fingerprint), progress=progress)
    context = AuditContext(config=config, dataset=dataset, population=population,
                           out_dir=out_dir, progress=progress)
    results: dict[str, SectionResult] = {}
    for i, section in enumerate(sections):
        stage(f"{section.name} audit", 0.6 + 0.35 * i / max(len(sections), 1))
        results[section.name] = _run_section(section, context)
    result = AuditResult(
        config=config.to_dict(), data=_data_summary(dataset),
        population=_population_summary(population), sections=results,
        versions=package_versions(), created=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - started, 3))
    if write:
        stage("writing the report", 0.97)
        write_outputs(result, out_dir)
    stage("done", 1.0)
    return result


def _stages(progress: bool, on_stage: ProgressFn | None) -> ProgressFn:
    """Report each stage to ``on_stage`` and, with progress on, as a line on stderr."""
    console = None
    if progress:
        from rich.console import Console

        console = Console(stderr=True, highlight=False)
    started = time.perf_counter()

    def stage(name: str, fraction: float) -> None:
        if on_stage is not None:
            on_stage(name, fraction)
        if console is not None and fraction < 1.0:
            from rich.text import Text

            console.print(Text.assemble((f"{time.perf_counter() - started:6.1f} s  ", "dim"),
                                        (name, "bold")))

    return stage


def write_outputs(result: AuditResult, out_dir: Path) -> tuple[Path, Path]:
    """Write ``result.json`` and ``report.html`` into ``out_dir``; return their paths."""
    from assay.report.html import write_report

    out_dir = Path(out_dir)
    json_path = result.to_json(out_dir / "result.json")
    html_path = write_report(result, out_dir / "report.html")
    return json_path, html_path
