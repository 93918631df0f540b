"""`assay release DATA --target COL [--predictions PRED.csv | --learner ... | --model F.skops]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from assay._validation import InvalidParameterError
from assay.cli import app
from assay.cli.options import DataHome, LearnerParam, TrainColumn


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
        "encoded table's rows (or --train-column).")] = None,
    train_column: TrainColumn = "in_train",
    min_leaf_rows: Annotated[int, typer.Option("--min-leaf-rows")] = 10,
    min_cell_rows: Annotated[int, typer.Option("--min-cell-rows")] = 10,
    min_residual_dof: Annotated[int, typer.Option("--min-residual-dof")] = 10,
    min_samples_leaf: Annotated[int, typer.Option("--min-samples-leaf")] = 5,
    json_path: Annotated[Path | None, typer.Option("--json")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    data_home: DataHome = None,
) -> int:
    """May the model leave the secure environment? Structural disclosure checks and a
    reject / review / release recommendation with every reason. Exit 0 release, 1 review,
    3 reject."""
    from assay.cli.options import check_json_path as _check_json_path
    from assay.cli.options import load_dataset as _load_dataset
    from assay.privacy.release.checks import ReleaseThresholds

    given = [x is not None for x in (predictions, learner, model)]
    if sum(given) != 1:
        raise InvalidParameterError("release needs exactly one of --predictions, --learner or "
                                    f"--model. Got {sum(given)}.")
    thresholds = ReleaseThresholds(min_leaf_rows, min_cell_rows, min_residual_dof,
                                   min_samples_leaf)
    _check_json_path(json_path)
    fitted = None
    if model is not None:
        from assay.learners.model_file import load_model_file

        # Refused (one line) before the table is read or anything is built from it.
        fitted = load_model_file(model, what="--model")
    spec = None
    if learner is not None:
        from assay.learners import get_learner, parse_learner_params

        spec = get_learner(learner, **parse_learner_params(learner_param or []))
    dataset = _load_dataset(data, target, [], data_home)
    if fitted is not None:
        from assay.learners.model_file import check_model_input

        check_model_input(fitted, dataset.X.shape[1], what="--model")
    from assay.privacy.release.checks import release_checks, release_for_learner

    if predictions is not None:
        from assay.engine.predictions import read_predictions

        own = read_predictions(predictions, dataset, train_column=train_column)
        report = release_checks(predictions=own, thresholds=thresholds)
    elif spec is not None:
        _, report = release_for_learner(spec, dataset.X, dataset.y, random_state=seed,
                                        thresholds=thresholds)
    else:
        report = release_checks(fitted, dataset.X, dataset.y, thresholds=thresholds)
    from rich.console import Console

    console = Console()
    console.print(f"Release recommendation for {report.model}: "
                  f"[bold]{report.recommendation.upper()}[/bold]")
    for c in report.checks:
        console.print(f"  [{c.status:7s}] {c.title}: {c.reason}", highlight=False, markup=False)
    if json_path is not None:
        json_path.write_text(json.dumps(report.to_dict(), indent=1, default=str))
        console.print(f"wrote {json_path}", highlight=False)
    return {"release": 0, "review": 1, "reject": 3}[report.recommendation]
