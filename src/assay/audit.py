"""One audit end to end: load the table, train the population once, run every section.

`run_audit` reads an `AuditConfig`, builds the `Dataset`, fits one population of K
models (resumable through the on-disk cache under ``out/cache``) and hands the same
`AuditContext` to every registered audit section that applies. Each section returns a
`SectionResult`; together they make the `AuditResult` written to ``out/result.json``
and rendered to ``out/report.html``.

Sections are plug-ins: an object with ``name``, ``title``, ``applies(context)`` and
``run(context)`` passed to `register_section`. Each area registers its own section when
its module is imported (``assay.privacy.audit`` now; ``assay.fairness`` and
``assay.multiplicity`` as they land), and `run_audit` imports them (`SECTION_PACKAGES`)
before any expensive work. A section::

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
    SectionResult,
    package_versions,
)

__all__ = [
    "AuditConfig",
    "AuditContext",
    "DPGuarantee",
    "Section",
    "load_config",
    "register_section",
    "registered_sections",
    "run_audit",
    "unregister_section",
]

#: Modules that register audit sections of their own when imported (if installed).
SECTION_PACKAGES = ("assay.privacy.audit", "assay.fairness", "assay.multiplicity")
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
