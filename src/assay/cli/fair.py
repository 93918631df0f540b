"""`assay fair DATA`: measure a model's fairness, build the accuracy / fairness front, pick one.

Light to import: numpy, pandas, scikit-learn and the fairness modules are imported
inside the command, after every option has been checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from assay._validation import (
    DataError,
    InvalidParameterError,
    check_option,
    check_scalar,
)
from assay.audit.outputs import RunLayout, begin_run
from assay.cli import app, split_names
from assay.cli.options import (
    HELP,
    DataHome,
    DecisionThreshold,
    Protected,
    Task,
    TrainColumn,
    check_json_path,
    check_task,
    load_dataset,
    print_summary,
    run_one_section,
    section_json,
    section_result,
    unique_names,
)

#: Spelled out so that checking them imports nothing (tests check they agree).
CONSTRAINTS = ("dp", "eo", "eodds")
METHODS = ("thresholds", "score_transformer", "fair_boost", "reductions")


#: What `--export` writes; an earlier run's are moved into previous/ when a run starts.
EXPORT_LAYOUT = RunLayout(files=("model.skops", "model_card.md"))


def _table(front, constraint: str):
    from rich.table import Table

    from assay.report.result import format_figure

    table = Table(title=f"Accuracy / fairness front ({front.rows['test']} held-out rows "
                        "scored and chosen on, 95 % CI)")
    # The units of the report and the verdict: scores as 0.834, gaps in points.
    for col in ("#", "candidate", "accuracy", "balanced acc.", f"{constraint} gap (points)",
                "status"):
        table.add_column(col)
    for c in front.candidates:
        if not (c.on_front or c.index in (front.preferred, front.baseline) or c.rejected):
            continue
        status = ("chosen (confirmed fix)" if c.index == front.chosen else
                  "best candidate (not confirmed)" if c.index == front.preferred
                  and c.index != front.baseline else "baseline"
                  if c.index == front.baseline else "rejected: " + c.rejected
                  if c.rejected else "front")
        table.add_row(str(c.index), c.name, format_figure(c.accuracy, "score"),
                      format_figure(c.balanced_accuracy, "score"),
                      format_figure(c.gaps[constraint], "gap").replace(" points", ""), status)
    return table


#: The fairness options this command sets, and the flag of each (None: set by the command
#: itself); on a regression target those the section refuses keep its defaults unless
#: given, and one given is refused as by assay audit (`run_one_section`).
_OPTION_FLAGS = {"constraint": "constraint", "prefer": "prefer", "methods": "methods",
                     "n_rounds": "rounds", "export": None, "confirm_by": "confirm_by",
                     "n_jobs": "n_jobs", "test_size": "test_size", "baseline": None}


def _check_regression(predictions_out: Path | None) -> None:
    """What this command writes only of a classifier's front, refused in one line."""
    if predictions_out is not None:
        raise InvalidParameterError(
            f"--predictions-out must be left out for a regression target: it writes the "
            f"classifier front's chosen model. Got {predictions_out}.")


def _write_json(console, audit, json_path: Path | None) -> None:
    if json_path is not None:
        from assay.report.result import json_clean, write_text_atomic

        write_text_atomic(json_path, json.dumps(json_clean(section_json(audit, "fairness")),
                                                indent=1))
        console.print(f"wrote {json_path}", highlight=False)


@app.command("fair")
def fair(
    data: Annotated[str, typer.Argument(
        help="A .csv/.parquet file, or a public table name (adult, compas, synthetic, ...).")],
    target: Annotated[str | None, typer.Option(
        "--target", help="Label column (binary; required for a file).")] = None,
    protected: Protected = None,
    constraint: Annotated[str, typer.Option(
        "--constraint", help="dp (demographic parity), eo (equal opportunity) or eodds "
        "(equalized odds).")] = "eo",
    prefer: Annotated[str | None, typer.Option(
        "--prefer", help="How the model is chosen, e.g. 'eo<=0.05, then balanced_accuracy' "
        "(default: balanced_accuracy >= best - 0.01, then the smallest gap; values may be "
        "numbers or offsets from 'baseline' or 'best').")] = None,
    methods: Annotated[list[str] | None, typer.Option(
        "--methods", help="thresholds, score_transformer, fair_boost, reductions "
        "(comma-separated; default all but reductions).")] = None,
    predictions: Annotated[Path | None, typer.Option(
        "--predictions", help="Predictions file of a model you trained (row_id, proba_<class> "
        "or score, in_train): measured and post-processed, never refitted.")] = None,
    train_column: TrainColumn = "in_train",
    json_path: Annotated[Path | None, typer.Option(
        "--json", help=HELP["section_json"].format(name="fairness"))] = None,
    predictions_out: Annotated[Path | None, typer.Option(
        "--predictions-out", help="CSV of the held-out rows: protected columns, y_true, "
        "y_pred and score of the chosen model (of the unmitigated model when no fix is "
        "found; the model column says which).")] = None,
    export: Annotated[Path | None, typer.Option(
        "--export", help="Folder for the chosen model (model.skops) and its model card, "
        "written only when a fix is confirmed; when a run starts, an earlier run's two "
        "files there move into previous/.")] = None,
    max_cost: Annotated[float, typer.Option(
        "--max-cost", help="Balanced accuracy a fix may give up against the unmitigated "
        "model on the confirmation rows.")] = 0.02,
    min_reduction: Annotated[float, typer.Option(
        "--min-reduction", help="Gap reduction a fix must show: the paired 95 % interval "
        "of (its gap - the unmitigated model's) on the confirmation rows must lie below "
        "minus this.")] = 0.0,
    confirm_by: Annotated[str, typer.Option(
        "--confirm-by", help="How the choice is confirmed: 'split' (half of the held-out "
        "rows, which take no part in choosing), 'crossfit' (5 folds x 3 repeats of every "
        "held-out row, each confirmed by a choice made without it) or 'auto' (crossfit "
        "where the split's confirmation rows lack group support).")] = "auto",
    test_size: Annotated[float, typer.Option(
        "--test-size", help="Held-out share of the rows (without --predictions).")] = 0.3,
    rounds: Annotated[int, typer.Option("--rounds", help="Fair-boosting rounds.")] = 60,
    min_support: Annotated[int, typer.Option(
        "--min-support", help="Rows a group needs to enter a gap.")] = 50,
    min_count: Annotated[int, typer.Option(
        "--min-count", help="Rows of a rate's denominator (positives for TPR) a group "
        "needs to enter a gap (100: its rate known to about +/-10 points, so the largest "
        "gap is not set by the noisiest group).")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the splits and models.")] = 0,
    n_jobs: Annotated[int, typer.Option(
        "--n-jobs", help="Threads of the native libraries (1 is safest on a shared "
        "machine).")] = 1,
    data_home: DataHome = None,
    task: Task = "auto",
    decision_threshold: DecisionThreshold = None,
) -> None:
    """Measure who is treated worse, fit fair models, and choose one from the held-out
    accuracy / fairness front: the fairness section of assay audit, run alone."""
    # Outputs first: the earlier export is set aside even if this run fails on an option.
    check_json_path(json_path)
    check_json_path(predictions_out, "--predictions-out")
    if export is not None:
        begin_run(export, "--export", EXPORT_LAYOUT)
    check_option(constraint, "--constraint", CONSTRAINTS)
    chosen_methods = list(dict.fromkeys(split_names(methods))) or \
        ["thresholds", "score_transformer", "fair_boost"]
    for m in chosen_methods:
        check_option(m, "--methods", METHODS)
    check_scalar(test_size, "--test-size", low=0.05, high=0.9)
    check_scalar(rounds, "--rounds", kind=int, low=1, high=2000)
    check_scalar(min_support, "--min-support", kind=int, low=1)
    check_scalar(min_count, "--min-count", kind=int, low=1)
    check_scalar(seed, "--seed", kind=int, low=0)
    check_scalar(n_jobs, "--n-jobs", kind=int, low=1)
    check_scalar(max_cost, "--max-cost", low=0.0, high=1.0)
    check_scalar(min_reduction, "--min-reduction", low=0.0, high=1.0)
    from assay.fairness.crossfit import CONFIRM_BY

    check_option(confirm_by, "--confirm-by", CONFIRM_BY)
    check_task(task, decision_threshold)
    if predictions is not None and not predictions.is_file():
        raise InvalidParameterError(f"--predictions must be an existing file. Got "
                                    f"{predictions}.")

    from assay.fairness.pareto import parse_preference

    if prefer is not None:
        parse_preference(prefer)
    from assay.fairness.section import FairnessOptions

    # The fairness section's options; its exports are written here (--export), not
    # under an audit's out folder.
    options = FairnessOptions(
        constraint=constraint, prefer=prefer, methods=tuple(chosen_methods),
        fix_min_count=min_count, n_rounds=rounds, export=False, max_cost=max_cost,
        min_reduction=min_reduction, confirm_by=confirm_by, test_size=test_size,
        n_jobs=n_jobs, baseline="target" if predictions is not None else "gradient_boosting")

    from rich.console import Console

    console = Console()
    dataset = load_dataset(data, target, unique_names(protected), data_home, task=task,
                           section="fairness")
    regression = dataset.task == "regression"
    if regression:
        _check_regression(predictions_out)
    elif dataset.n_classes != 2:
        raise DataError(f"target must be binary for fairness gaps. Got {dataset.n_classes} "
                        f"classes in {dataset.target!r}.")
    if dataset.groups.shape[1] == 0:
        raise InvalidParameterError("--protected must name at least one protected column. "
                                    "Got none.")
    if predictions is not None:
        dropped = [m for m in chosen_methods if m in ("fair_boost", "reductions")]
        if dropped and methods:
            console.print(f"note: {', '.join(dropped)} train new models; with --predictions "
                          "they are fitted on the model's training rows.", highlight=False)
    from assay.audit import AuditConfig, GroupOptions

    # A one-section audit: the fairness section of `assay audit`. Without --predictions
    # the unmitigated model is gradient boosting on a split of the table (the section's
    # baseline "gradient_boosting"); with it, the model of the file.
    config = AuditConfig(
        data=data, target=dataset.target, protected=tuple(dataset.protected), seed=seed,
        predictions=None if predictions is None else str(predictions),
        train_column=train_column, groups=GroupOptions(min_support=min_support),
        sections={"fairness": options})
    with console.status("building the front"):
        audit = run_one_section(
            config, "fairness", dataset, None, progress=False,
            flags={"fairness.methods": "--methods"}, task=task,
            decision_threshold=decision_threshold, option_flags=_OPTION_FLAGS)
    section = section_result(audit, "fairness")
    payload = section.data
    if regression:  # the regression front's figures are in the summary and the JSON
        print_summary(console, section)
        _write_json(console, audit, json_path)
        if export is not None and (payload.front is None or not payload.front.fixed):
            console.print(f"nothing written to {export}: no fix found, so no model is "
                          "exported as the fix.", highlight=False)
        elif export is not None:
            from assay.fairness.regression_audit import write_fix

            paths = write_fix(payload, export)
            console.print(f"wrote {paths['card']} and {paths['model']}", highlight=False)
        return
    if payload.front is None:  # the table's features cannot be densified
        raise DataError(payload.no_front or "no mitigation front was built.")
    front = payload.front
    import numpy as np

    y = dataset.y.astype(np.int64)
    console.print(f"{dataset.name}: {dataset.n_rows} rows, protected "
                  f"{', '.join(dataset.protected)}; front built in {front.seconds:.1f} s",
                  highlight=False)
    console.print(_table(front, constraint))
    console.print(f"On the {front.rows['test']} held-out rows: {front.note}.", highlight=False)
    if front.confirmation_text():
        console.print(front.confirmation_text(), highlight=False)
    console.print(front.verdict_text(), highlight=False)
    chosen = front.chosen_candidate
    _write_json(console, audit, json_path)
    if predictions_out is not None:
        import pandas as pd

        rows, y_pred, score = front.held_out_predictions()
        frame = dataset.groups.iloc[rows].reset_index(drop=True).copy()
        # Which model's decisions these are: the fix, or the unmitigated model without one.
        frame["model"] = (chosen or front.baseline_candidate).name
        frame.insert(0, "row_id", dataset.row_ids[rows])
        frame["y_true"] = y[rows]
        frame["y_pred"] = y_pred.astype(np.int64)
        frame["score"] = score if score is not None else pd.Series(y_pred, dtype=float)
        frame.to_csv(predictions_out, index=False)
        console.print(f"wrote {predictions_out}", highlight=False)
    if export is not None and chosen is None:
        console.print(f"nothing written to {export}: no fix found, so no model is "
                      "exported as the fix.", highlight=False)
    elif export is not None and chosen is not None:
        from assay.fairness.export import export_model, model_card
        from assay.fairness.run import _inputs

        export.mkdir(parents=True, exist_ok=True)
        info = None
        if chosen.model is not None:
            info = export_model(chosen.model, export / "model.skops",
                                n_features=dataset.n_features)
        info_dataset = {"name": dataset.name, "fingerprint": dataset.fingerprint,
                        "target": dataset.target, "protected": list(dataset.protected)}
        (export / "model_card.md").write_text(
            model_card(chosen, front, dataset=info_dataset, export=info,
                       inputs=_inputs(chosen)), encoding="utf-8")
        console.print(f"wrote {export / 'model_card.md'}"
                      + (f" and {export / 'model.skops'}" if info else ""), highlight=False)

