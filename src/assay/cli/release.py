"""`assay release DATA --target COL [--predictions PRED.csv | --learner ... | --model F.skops]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from assay._validation import InvalidParameterError
from assay.cli import app
from assay.cli.options import (
    HELP,
    DataHome,
    LearnerParam,
    Task,
    TrainColumn,
    check_json_path,
    check_task,
    load_dataset,
    run_one_section,
    section_json,
    section_result,
)


@app.command("release")
def release(
    data: Annotated[str, typer.Argument(help="A .csv/.parquet file, or a public table name.")],
    target: Annotated[str | None, typer.Option("--target", help="Label column.")] = None,
    predictions: Annotated[Path | None, typer.Option(
        "--predictions", help="Predictions file of your model (only class disclosure runs)."
    )] = None,
    learner: Annotated[str | None, typer.Option(
        "--learner", help="Fit this learner once on all rows and check it.")] = None,
    learner_param: LearnerParam = None,
    model: Annotated[Path | None, typer.Option(
        "--model", help="A scikit-learn model saved with skops (.skops), fitted on the "
        "encoded table's rows (or --train-column): a classifier, or a regressor for a "
        "regression target.")] = None,
    train_column: TrainColumn = "in_train",
    min_leaf_rows: Annotated[int, typer.Option("--min-leaf-rows")] = 10,
    min_cell_rows: Annotated[int, typer.Option("--min-cell-rows")] = 10,
    min_residual_dof: Annotated[int, typer.Option("--min-residual-dof")] = 10,
    min_samples_leaf: Annotated[int, typer.Option("--min-samples-leaf")] = 5,
    json_path: Annotated[Path | None, typer.Option(
        "--json", help=HELP["section_json"].format(name="release"))] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    data_home: DataHome = None,
    task: Task = "auto",
) -> int:
    """May the model leave the secure environment? Structural disclosure checks and a
    reject / review / release recommendation with every reason: the release section of
    assay audit, run alone. Exit 0 release, 1 review, 3 reject."""
    from assay.privacy.release.section import ReleaseOptions

    given_models = [x is not None for x in (predictions, learner, model)]
    if sum(given_models) != 1:
        raise InvalidParameterError("release needs exactly one of --predictions, --learner or "
                                    f"--model. Got {sum(given_models)}.")
    options = ReleaseOptions(enabled=True, model=None if model is None else str(model),
                             fit_on="all", min_leaf_rows=min_leaf_rows,
                             min_cell_rows=min_cell_rows, min_residual_dof=min_residual_dof,
                             min_samples_leaf=min_samples_leaf)
    check_json_path(json_path)
    check_task(task, None)
    if model is not None:
        from assay.learners.model_file import load_model_file

        # Refused (one line) before the table is read or anything is built from it.
        load_model_file(model, what="--model")
    if predictions is not None and not predictions.is_file():
        raise InvalidParameterError(f"--predictions must be an existing file. Got "
                                    f"{predictions}.")
    params = {}
    if learner is not None:
        from assay.learners import get_learner, parse_learner_params

        params = parse_learner_params(learner_param or [])
        get_learner(learner, **params)
    dataset = load_dataset(data, target, [], data_home, task=task, section="release")
    from assay.audit import AuditConfig

    # A one-section audit: the release section of `assay audit` on the model named, with
    # no population (the learner is fitted once on every row, as the model to release).
    config = AuditConfig(
        data=data, target=dataset.target, protected=tuple(dataset.protected),
        learner=learner or "logreg", learner_params=params, seed=seed,
        predictions=None if predictions is None else str(predictions),
        train_column=train_column, sections={"release": options})
    audit = run_one_section(config, "release", dataset, None, progress=False,
                            flags={"release.model": "--model"}, task=task,
                            option_flags={"min_cell_rows": "min_cell_rows"})
    report = section_result(audit, "release").data.report
    from rich.console import Console

    console = Console()
    console.print(f"Release recommendation for {report.model}: "
                  f"[bold]{report.recommendation.upper()}[/bold]")
    for c in report.checks:
        console.print(f"  [{c.status:7s}] {c.title}: {c.reason}", highlight=False, markup=False)
    if json_path is not None:
        from assay.report.result import write_text_atomic

        write_text_atomic(json_path, json.dumps(section_json(audit, "release"), indent=1,
                                                default=str))
        console.print(f"wrote {json_path}", highlight=False)
    return {"release": 0, "review": 1, "reject": 3}[report.recommendation]
