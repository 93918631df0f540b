"""`assay distribution DATA --target COL --property COL=VALUE --ratios 0.3,0.5`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from assay._validation import InvalidParameterError, check_scalar
from assay.cli import app, split_names
from assay.cli.options import (
    HELP,
    Backend,
    CacheDir,
    DataHome,
    Learner,
    LearnerParam,
    MemoryBudget,
    Progress,
    Scheduler,
    Task,
    check_engine_flags,
    check_json_path,
    check_task,
    encoding_limits,
    given,
    load_dataset,
    run_one_section,
    section_json,
    section_result,
)


def parse_ratios(text: str) -> tuple[float, float]:
    """``"0.3,0.5"`` → (0.3, 0.5), each in (0, 1), not equal."""
    parts = split_names([text])
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise InvalidParameterError(f"--ratios must be two shares in (0, 1), e.g. 0.3,0.5. "
                                    f"Got {text!r}.") from None
    if len(values) != 2:
        raise InvalidParameterError(f"--ratios must be two shares in (0, 1), e.g. 0.3,0.5. "
                                    f"Got {text!r}.")
    from assay.privacy.distribution.inference import check_ratios

    return check_ratios(values, "--ratios")


@app.command("distribution")
def distribution(
    data: Annotated[str, typer.Argument(help="A .csv/.parquet file, or a public table name.")],
    prop: Annotated[str, typer.Option("--property", help="COL=VALUE whose share is inferred.")],
    target: Annotated[str | None, typer.Option("--target", help="Label column.")] = None,
    ratios: Annotated[str, typer.Option("--ratios", help="The two shares.")] = "0.3,0.5",
    models: Annotated[int, typer.Option("--models", help="Models per share (even).")] = 32,
    train_size: Annotated[int | None, typer.Option("--train-size")] = None,
    learner: Learner = "logreg",
    learner_param: LearnerParam = None,
    backend: Backend = "batched",
    scheduler: Scheduler = None,
    cache_dir: CacheDir = None,
    memory_budget: MemoryBudget = None,
    json_path: Annotated[Path | None, typer.Option(
        "--json", help=HELP["section_json"].format(name="distribution"))] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    data_home: DataHome = None,
    progress: Progress = True,
    task: Task = "auto",
) -> None:
    """Does the model reveal the share of a group in its training data? KL and
    meta-classifier attacks on 2 x K models; accuracy and n_leaked: the distribution
    section of assay audit, run alone."""
    shares = parse_ratios(ratios)
    check_scalar(models, "--models", kind=int, low=4)
    if models % 2:
        raise InvalidParameterError(f"--models must be an even integer in [4, inf). Got {models}.")
    if train_size is not None:
        check_scalar(train_size, "--train-size", kind=int, low=2)
    from assay.privacy.distribution.inference import parse_property

    backend = check_engine_flags(backend, scheduler, cache_dir)
    limits = encoding_limits(None, None, memory_budget)
    parse_property(prop)
    check_json_path(json_path)
    check_task(task, None)
    from assay.learners import get_learner, parse_learner_params

    params = parse_learner_params(learner_param or [])
    get_learner(learner, **params)  # every learner parameter checked before the table is read
    dataset = load_dataset(data, target, [], data_home, task=task, section="distribution",
                           **limits)
    from assay.audit import AuditConfig
    from assay.engine import check_population_size
    from assay.privacy.distribution.section import DistributionOptions

    check_population_size(models, dataset.n_rows, dataset.n_classes, memory_budget,
                          name="--models", factor=2)
    # A one-section audit: the distribution section of `assay audit`, with its defaults;
    # it trains its own 2 x K models (no population) on the audit's engine: the
    # --scheduler cluster, the cache and --memory-budget.
    config = AuditConfig(
        data=data, target=dataset.target, protected=tuple(dataset.protected), learner=learner,
        learner_params=params, models=models, backend=backend, scheduler_address=scheduler,
        seed=seed, **given(limits), sections={"distribution": DistributionOptions(
            property=prop, ratios=shares, models=models, train_size=train_size)})
    audit = run_one_section(config, "distribution", dataset, cache_dir, progress,
                            flags={"distribution.train_size": "--train-size",
                                   "distribution.property": "--property",
                                   "distribution.models": "--models"}, task=task)
    result = section_result(audit, "distribution").data.result
    from rich.console import Console
    from rich.table import Table

    # A regression model's attacks read predicted values, not class probabilities: the
    # report's names for them, and what the share does to the predictions.
    regression = getattr(result, "task", "classification") == "regression"
    if regression:
        from assay.privacy.distribution.regression import NAMES, shift_line
    console = Console()
    table = Table(title=f"Distribution inference: {prop} at {shares[0]:g} vs {shares[1]:g}"
                  + (f" (regression model of {result.target})" if regression else ""))
    for col in ("attack", "accuracy [95 % CI]", "n_leaked", "n_leaked / training rows"):
        table.add_column(col)
    for name, a in result.attacks.items():
        leak = a.n_leaked
        table.add_row(NAMES.get(name, name) if regression else name,
                      f"{a.accuracy.value:.3f} [{a.accuracy.ci_low:.3f}, "
                      f"{a.accuracy.ci_high:.3f}]",
                      "—" if leak is None else f"{leak.value:.1f} [{leak.ci_low:.1f}, "
                      f"{leak.ci_high:.1f}]",
                      "—" if leak is None else f"{leak.value / result.train_size:.3g}")
    console.print(table)
    if regression:
        console.print(shift_line(result), highlight=False)
    console.print(f"{2 * models} models of {result.train_size} rows; fit "
                  f"{result.seconds['fit']:.1f} s, attacks {result.seconds['attack']:.1f} s.",
                  highlight=False)
    if json_path is not None:
        from assay.report.result import write_text_atomic

        write_text_atomic(json_path, json.dumps(section_json(audit, "distribution"),
                                                indent=1, default=str))
        console.print(f"wrote {json_path}", highlight=False)
