"""One audit end to end: validate everything, train the population once, run every section.

`run_audit` reads an `AuditConfig`, builds the `Dataset` (and reads the predictions of
the model under audit, when one is given), asks every section to check its options
against them, and only then fits one population of K models (resumable through the
on-disk cache under ``out/cache``). The same `AuditContext` goes to every registered
section (`assay.section`); their `SectionResult`s make the `AuditResult` written to
``out/result.json`` and rendered to ``out/report.html``.

The runner knows no pillar. It keeps what all sections share: the data, target and
protected columns, the learner and its parameters, the population size, the output
folder, the backend, the seed, the group-layer settings (``[groups]``) and the model
under audit (``predictions``). Everything else lives in the sections' own tables of
``audit.toml``::

    data = "credit.csv"
    target = "default"
    protected = ["sex", "age"]
    models = 32

    [learner]
    name = "logreg"
    C = 0.5

    [groups]
    min_support = 50

    [privacy]
    attacks = ["lira", "rmia"]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay._validation import (
    AssayError,
    DataError,
    InvalidParameterError,
    check_output_folder,
)
from assay.audit.config import AuditConfig, GroupOptions, load_config
from assay.audit.outputs import RunLayout, begin_run
from assay.section import Section, registered_sections

if TYPE_CHECKING:
    pass

__all__ = [
    "AuditConfig",
    "AuditContext",
    "GroupOptions",
    "load_config",
    "run_audit",
    "run_section",
]

ProgressFn = Callable[[str, float], None]



# --------------------------------------------------------------------------- context


@dataclass
class AuditContext:
    """What every section reads.

    Attributes
    ----------
    config : AuditConfig
    dataset : Dataset
    population : Population or None
        K models (``member`` says which rows each trained on); None during `Section.check`.
        With a predictions file these are the reference models of the attack.
    target : TargetPredictions or None
        The model under audit: the user's (``predictions``), or model 0 of the population.
    groups : GroupIndex
        The protected attributes and their intersections (`assay.groups`), built once.
    group_policy : GroupPolicy
        Significance level, support and permutations of every section's group tests.
    learner : Learner
        The learner of the population, with its parameters (built once, in `prepare`).
    out_dir : Path
    progress : bool
    cache_dir : Path or None
        Folder of the population cache (None: ``out_dir / "cache"``).
    extras : dict
        Free space for sections to share intermediate results (by section name).
    """

    config: AuditConfig
    dataset: Any
    population: Any = None
    target: Any = None
    groups: Any = None
    learner: Any = None
    out_dir: Path = Path("assay-out")
    progress: bool = False
    scheduler_address: str | None = None
    cache_dir: Path | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def cache_folder(self) -> Path:
        """Where every fit of this audit keeps its chunks (resumable)."""
        return self.cache_dir if self.cache_dir is not None else self.out_dir / "cache"

    @property
    def group_policy(self) -> Any:
        """The audit's `GroupPolicy` (``[groups]``): every section tests its groups by it."""
        return self.config.groups.policy

    @property
    def task(self) -> str:
        """``"classification"``, or ``"regression"`` for a continuous target."""
        return str(getattr(self.dataset, "task", "classification"))

    @property
    def brings_own_model(self) -> bool:
        """Whether the model under audit came from outside (predictions or an estimator)."""
        return self.target is not None and not self.target.source.startswith("population")

    def engine_options(self) -> dict[str, Any]:
        """Backend, cluster, cache, progress and memory budget of every fit of this audit
        (`assay.engine.engine_options`), for sections that fit on other data."""
        from assay.engine import engine_options

        return engine_options(self.config.backend, self.cache_folder, self.progress,
                              self.config.memory_budget, self.scheduler_address)

    def fit(self, plan: Any, learner: Any = None, data: tuple[Any, Any] | None = None) -> Any:
        """Fit another population on the same backend, cluster, cache and memory budget
        (resumable): on the audit's data, or on ``data=(X, y)`` (other features of the
        same rows, keyed in the cache by their own hash). Every fit of a section goes
        through here (`assay.engine.FitFn`)."""
        from assay.engine import fit_population

        learner = learner or self.learner or self.config.make_learner()
        if self.task == "regression":  # predicted values, not class probabilities
            from assay.engine.regression import regression_fitter

            return regression_fitter(self.dataset.X, self.dataset.y,
                                     data_fingerprint=str(self.dataset.fingerprint),
                                     **self.engine_options())(plan, learner, data)
        n_classes = int(len(self.dataset.classes))
        if data is not None:
            return fit_population(data[0], data[1], learner, plan, n_classes=n_classes,
                                  **self.engine_options())
        return fit_population(
            self.dataset.X, self.dataset.y, learner, plan, n_classes=n_classes,
            data_fingerprint=str(self.dataset.fingerprint), **self.engine_options())


# --------------------------------------------------------------------------- running


def load_dataset(config: AuditConfig):
    """The `Dataset` of an audit: a file path or a bundled table's name."""
    from assay.data import Dataset, load
    from assay.data.public import PUBLIC_TABLES

    path = Path(config.data)
    bundled = config.data == "synthetic" or config.data in PUBLIC_TABLES
    # A folder named like a bundled table (say the --out of an earlier `assay audit bank
    # --out bank`) does not hide the table.
    if path.exists() and not (bundled and path.is_dir()):
        if not path.is_file():
            raise DataError(f"data must be a file. Got the folder {config.data!r}.")
        if not config.target:
            raise InvalidParameterError(
                f"target must name the label column of {config.data}. Got none.")
        return Dataset.from_path(path, config.target, list(config.protected),
                                 encoding=config.encoding, task=config.task or "auto",
                                 **config.encoding_limits())
    if config.data == "synthetic" or config.data in PUBLIC_TABLES:
        overrides: dict[str, Any] = config.encoding_limits()
        overrides["task"] = config.task or "auto"
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


def _population_summary(population: Any, brings_own_model: bool,
                        regression: bool = False) -> dict[str, Any]:
    import numpy as np

    info = population.info
    # A regression population is scored by its squared error, a classifier's by accuracy.
    name, score = ("mse", population.mse) if regression else ("accuracy", population.accuracy)
    return {
        "role": "reference models" if brings_own_model else "audited population",
        **({"task": "regression"} if regression else {}),
        "n_models": int(population.n_models),
        "n_rows": int(population.n_rows),
        "learner": info.get("learner", {}),
        "backend": info.get("backend"),
        "seeds": [int(s) for s in info.get("seeds", [])],
        "plan_fingerprint": info.get("plan_fingerprint"),
        f"train_{name}": float(np.mean(score(members=True))),
        f"test_{name}": float(np.mean(score(members=False))),
        "n_fitted": int(info.get("n_fitted", 0)),
        "n_loaded_from_cache": int(info.get("n_loaded_from_cache", 0)),
        "seconds": float(info.get("seconds", 0.0)),
    }


def _data_summary(dataset: Any) -> dict[str, Any]:
    out = {"name": str(dataset.name), "n_rows": int(dataset.X.shape[0]),
           "n_features": int(dataset.X.shape[1]), "target": str(dataset.target),
           "protected": [str(p) for p in dataset.protected],
           "classes": [str(c) for c in dataset.classes],
           "fingerprint": str(dataset.fingerprint), "notes": [str(n) for n in dataset.notes]}
    if getattr(dataset, "task", "classification") != "classification":
        out["task"] = str(dataset.task)
    return out


def _run_section(section: Section, context: AuditContext):
    """One section's result; a section that fails is recorded as an error, not raised.

    The population is already paid for, so a failing section must not take the others
    down with it. A user-caused failure (`AssayError`) keeps its message; anything else
    is a bug in the section: its message says so and the traceback is kept in ``data``.
    """
    from assay.audit.regression import skip_reason, supports
    from assay.report.result import SectionResult

    started = time.perf_counter()
    options = context.config.options(section.name)
    try:
        if not supports(section, context.task):
            result = SectionResult(name=section.name, title=section.title, status="skipped",
                                   message=skip_reason(section))
        elif not section.applies(context, options):
            result = SectionResult(name=section.name, title=section.title, status="skipped",
                                   message="does not apply to this audit")
        else:
            result = section.run(context, options)
    except AssayError as exc:  # user-caused: report it, keep the other sections
        result = SectionResult(name=section.name, title=section.title, status="error",
                               message=str(exc))
    except Exception as exc:  # noqa: BLE001 - a bug in one section: record it, go on
        import traceback

        result = SectionResult(
            name=section.name, title=section.title, status="error",
            message=(f"internal error in the {section.name} section: "
                     f"{type(exc).__name__}: {exc} (a bug in assay or the section's plug-in; "
                     "the traceback is in result.json)"),
            data={"exception": type(exc).__name__, "traceback": traceback.format_exc()})
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def prepare(config: AuditConfig, *, dataset: Any = None, target: Any = None,
            progress: bool = False, only: str | None = None) -> AuditContext:
    """Everything before training: data, learner, model under audit, every section's check
    (or section `only`'s alone).

    Raises an `AssayError` for any bad option or input, so a run that would fail does so
    before it costs any training time.
    """
    learner = config.make_learner()  # validates the learner and its parameters
    out_dir = Path(check_output_folder(config.out, "out"))
    if dataset is None:
        dataset = load_dataset(config)
    from assay.audit.regression import regression_config, supports
    from assay.engine import check_population_size

    task = str(getattr(dataset, "task", "classification"))
    if task == "regression":  # the learner and every option checked for a number's model
        config = regression_config(config, dataset, _sections(only))
        learner = config.make_learner()
    elif config.decision_threshold is not None:
        raise InvalidParameterError(
            f"decision_threshold (--decision-threshold) applies to a regression target only "
            f"(a classifier decides by its classes; {dataset.target!r} is classes). Got "
            f"{config.decision_threshold:g}.")
    elif callable(getattr(learner, "fit_predict_values", None)):
        raise InvalidParameterError(
            f"learner must be a classifier for the class target {dataset.target!r} (pass "
            f"task regression, --task regression, to audit a regression model). Got "
            f"{config.learner!r}.")
    check_population_size(config.models, dataset.n_rows, len(dataset.classes) or 2,
                          config.memory_budget, name="models (--models)")
    if target is None and config.predictions is not None:
        from assay.engine.predictions import read_predictions, read_regression_predictions

        # A regression model's file holds its predicted numbers, not class probabilities.
        read = read_regression_predictions if task == "regression" else read_predictions
        target = read(config.predictions, dataset, train_column=config.train_column)
    context = AuditContext(config=config, dataset=dataset, target=target,
                           groups=_group_index(dataset, config.groups), learner=learner,
                           out_dir=out_dir, progress=progress)
    for section in _sections(only):
        if supports(section, task):  # the others are skipped, their options refused
            section.check(context, config.options(section.name))
    return context


def _sections(only: str | None) -> list[Section]:
    """The registered sections an audit runs: all, or the one named `only`."""
    sections = list(registered_sections())
    if only is None:
        return sections
    chosen = [s for s in sections if s.name == only]
    if not chosen:
        raise InvalidParameterError(
            f"section must be one of {', '.join(s.name for s in sections)}. Got {only!r}.")
    return chosen


def _uses_population(section: Section, config: AuditConfig) -> bool:
    """Whether `section` needs the audit's population: yes unless it says otherwise
    (``uses_population``: a bool, or a function of the audit's config)."""
    uses = getattr(section, "uses_population", True)
    return bool(uses(config) if callable(uses) else uses)


def _group_index(dataset: Any, groups: GroupOptions):
    from assay.groups import GroupIndex

    if dataset.groups.shape[1] == 0:
        return None
    return GroupIndex.from_frame(dataset.groups, max_intersection=groups.max_intersection)


def plan_for(context: AuditContext):
    """The population plan: balanced halves, or references shaped like the user's model."""
    from assay.engine import PopulationPlan

    config = context.config
    if context.target is not None:
        from assay.engine.predictions import reference_plan

        return reference_plan(context.target, config.models, config.seed)
    return PopulationPlan.balanced(context.dataset.X.shape[0], config.models, config.seed)


def run_audit(
    config: AuditConfig,
    *,
    dataset: Any = None,
    target: Any = None,
    progress: bool = True,
    on_stage: ProgressFn | None = None,
    write: bool = True,
    only: str | None = None,
    cache_dir: Path | None = None,
):
    """Run a whole audit: checks, one population, every section; write result and report.

    Parameters
    ----------
    config : AuditConfig
    dataset : Dataset, optional
        Use this dataset instead of loading ``config.data``.
    target : TargetPredictions, optional
        The model under audit (`assay.engine.predictions.predictions_from_estimator` for a
        fitted estimator); default: ``config.predictions`` if given.
    progress : bool, default=True
        Show rich progress bars.
    on_stage : callable(stage, fraction), optional
        Called as the audit moves on (for the web app's status endpoint).
    write : bool, default=True
        Write ``result.json`` and ``report.html`` into ``config.out``.
    only : str, optional
        Run (and check) this section alone (`run_section`).
    cache_dir : Path, optional
        Folder of the population cache; default ``config.out / "cache"``.

    Returns
    -------
    AuditResult
    """
    from assay.engine import fit_population
    from assay.engine.predictions import RegressionTarget, TargetPredictions
    from assay.report.result import AuditResult, package_versions

    started = time.perf_counter()
    stage = _stages(progress, on_stage)
    if on_stage is not None:  # not printed: a bad option must leave one error line alone
        on_stage("checking the data and every option", 0.02)
    if write:  # out holds one run: a rerun that fails must leave no result behind
        begin_audit(config.out)
    context = prepare(config, dataset=dataset, target=target, progress=progress, only=only)
    config = context.config  # a regression target's learner resolved (ridge for logreg)
    context.cache_dir = None if cache_dir is None else Path(cache_dir)
    regression = context.task == "regression"
    if regression and config.task is None and progress:
        from rich.console import Console

        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"target {context.dataset.target!r} looks continuous: auditing a regression "
            f"model (learner {config.learner}; --task classification refuses it)")
    brings_own = context.target is not None
    context.out_dir.mkdir(parents=True, exist_ok=True)
    what = "reference models" if brings_own else "models"
    sections = _sections(only)
    # A section that trains all its own models (distribution inference) says so with
    # ``uses_population = False`` (or a function of the config): run alone, it costs no
    # population.
    fit_needed = any(_uses_population(s, config) for s in sections)
    if fit_needed:
        stage(f"training {config.models} {what}", 0.1)
    # Each finished chunk is reported too: the web app's progress moves, and its cancel
    # (an exception from on_stage) stops the training between chunks.
    on_chunk = None if on_stage is None else (
        lambda done, total: on_stage(f"trained {done} of {total} {what}",
                                     0.1 + 0.5 * done / total))
    from assay.engine.cluster import shared_cluster

    # With the Dask backend, fitting and every section's Dask work share one cluster.
    with shared_cluster(config.backend, config.scheduler_address) as address:
        context.scheduler_address = address
        population: Any = None
        if fit_needed and regression:
            from assay.engine.regression import fit_regression_population

            population = fit_regression_population(
                context.dataset.X, context.dataset.y, context.learner, plan_for(context),
                backend=config.backend, cache_dir=context.cache_folder,
                data_fingerprint=str(context.dataset.fingerprint), progress=progress,
                on_chunk=on_chunk, memory_budget=config.memory_budget,
                scheduler_address=address)
            context.population = population
        elif fit_needed:
            population = fit_population(
                context.dataset.X, context.dataset.y, context.learner, plan_for(context),
                n_classes=int(len(context.dataset.classes)), backend=config.backend,
                cache_dir=context.cache_folder,
                data_fingerprint=str(context.dataset.fingerprint), progress=progress,
                on_chunk=on_chunk, memory_budget=config.memory_budget,
                scheduler_address=address)
            context.population = population
        if context.target is None and population is not None and regression:
            context.target = RegressionTarget(
                values=population.values[0].copy(), member=population.member[0],
                source="population model 0 (trained by assay on a random half)")
        elif context.target is None and population is not None:
            context.target = TargetPredictions(
                probs=population.read_models(0).astype("float64"),
                member=population.member[0],
                source="population model 0 (trained by assay on a random half)")
        results: dict[str, Any] = {}
        context.extras["results"] = results  # later sections read earlier ones (release)
        for i, section in enumerate(sections):
            stage(f"{section.name} audit", 0.6 + 0.35 * i / max(len(sections), 1))
            results[section.name] = _run_section(section, context)
    result = AuditResult(
        config=config.to_dict(), data=_data_summary(context.dataset),
        population=({} if population is None
                    else _population_summary(population, brings_own, regression)),
        target={} if context.target is None else context.target.summary(), sections=results,
        versions=package_versions(), created=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - started, 3))
    if write:
        stage("writing the report", 0.97)
        write_outputs(result, context.out_dir)
    stage("done", 1.0)
    return result


def run_section(config: AuditConfig, name: str, *, dataset: Any = None,
                cache_dir: Path | str | None = None, progress: bool = True,
                out: Path | str | None = None):
    """A one-section audit: `run_audit` with section `name` alone, no result written.

    What ``assay mia``, ``assay fair`` ... run: the same checks, population, engine
    settings, group policy, progress and payload as that section in ``assay audit``.

    Parameters
    ----------
    config : AuditConfig
        Shared options and the section's options (``config.out`` is not written).
    name : str
        The section (``"privacy"``, ``"fairness"``, ...).
    dataset : Dataset, optional
        Use this dataset instead of loading ``config.data``.
    cache_dir : path, optional
        Population cache (resumable); default a temporary folder removed at the end.
    progress : bool, default=True
    out : path, optional
        Folder a section's exports are written into (the DP section's deployed model,
        ``dp.deploy``); default the cache folder.

    Returns
    -------
    AuditResult
        With the one section in ``sections[name]``.
    """
    import dataclasses
    import tempfile
    from contextlib import ExitStack

    with ExitStack() as stack:
        if cache_dir is None:
            cache_dir = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="assay-population-"))
        config = dataclasses.replace(config, out=str(cache_dir if out is None else out))
        return run_audit(config, dataset=dataset, progress=progress, write=False, only=name,
                         cache_dir=Path(cache_dir))


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


#: What one audit writes into ``out`` (`assay.audit.outputs`): result, report, the fairness
#: exports and the DP section's deployed model (``dp.deploy``) are the run's; the
#: population cache stays (it is keyed by content).
AUDIT_LAYOUT = RunLayout(files=("result.json", "report.html", "model.npz", "model.json"),
                         folders=("fairness",),
                         kept=("cache",),
                         legacy=("result.previous.json", "report.previous.html"))


def begin_audit(out: Any, name: str = "out") -> Path:
    """Check the ``out`` folder, then move an earlier run's files into ``out/previous/``.

    Called as an audit starts, before its options and data are checked, so that
    ``out/result.json`` is always the latest run's or absent (a gate never passes on a
    stale result) and no earlier model stands beside it; calling it again moves nothing.

    Raises
    ------
    InvalidParameterError
        ``out`` cannot hold a run (a file, not writable, ``result.json`` a folder ...).
    """
    return begin_run(out, name, AUDIT_LAYOUT)


def write_outputs(result, out_dir: Path) -> tuple[Path, Path]:
    """Write ``result.json`` and ``report.html`` into ``out_dir``; return their paths.

    The report is rendered before anything is written, and each file is written to a
    temporary name and renamed: a failure leaves no half-written or mismatched pair.
    """
    from assay.report.html import render_report
    from assay.report.result import write_text_atomic

    out_dir = Path(out_dir)
    html = render_report(result)
    json_path = result.to_json(out_dir / "result.json")
    html_path = write_text_atomic(out_dir / "report.html", html)
    return json_path, html_path
