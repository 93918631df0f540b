"""`assay multiplicity DATA`: the Rashomon set of a learner on a table, and what it reverses.

Light to import: numpy, pandas and the multiplicity modules are imported inside the
command, after every option has been checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from assay._validation import (
    MAX_RESAMPLES,
    InvalidParameterError,
    check_distinct,
    check_option,
    check_scalar,
)
from assay.cli import app, split_names
from assay.cli.options import (
    HELP,
    Backend,
    CacheDir,
    DataHome,
    DecisionThreshold,
    Learner,
    LearnerParam,
    MemoryBudget,
    Permutations,
    Progress,
    Protected,
    Scheduler,
    Task,
    check_engine_flags,
    check_json_path,
    check_task,
    encoding_limits,
    given,
    load_dataset,
    print_summary,
    run_one_section,
    section_json,
    section_result,
    unique_names,
)


def _parse_grid(items: list[str] | None) -> dict[str, list]:
    """``--grid C=0.1,1,10`` items into ``{"C": [0.1, 1, 10]}`` (values as TOML literals)."""
    from assay.learners import parse_learner_params

    grid: dict[str, list] = {}
    for item in items or []:
        key, sep, text = str(item).partition("=")
        if not sep or not text.strip():
            raise InvalidParameterError(f"--grid must be KEY=V1,V2,... Got {item!r}.")
        values = [parse_learner_params([f"{key.strip()}={v.strip()}"])[key.strip()]
                  for v in text.split(",") if v.strip()]
        if key.strip() in grid:
            raise InvalidParameterError(f"--grid {key.strip()} must be given once. Got it twice.")
        grid[key.strip()] = check_distinct(values, f"--grid {key.strip()}")
    return grid


def _epsilons(values: list[str] | None) -> tuple[float, ...]:
    from assay.multiplicity.rashomon import check_epsilons

    texts = split_names(values)
    numbers = []
    for text in texts:
        try:
            numbers.append(float(text))
        except ValueError:
            raise InvalidParameterError(f"--epsilon must be numbers > 0. Got {text!r}.") \
                from None
    check_distinct(numbers, "--epsilon")  # a repeated ε would be one row twice
    return check_epsilons(numbers or (0.005, 0.01, 0.02, 0.05), "--epsilon")


def _ci(e) -> str:
    if e is None:
        return "not measurable"
    return f"{100 * e.value:.2f} % [{100 * e.ci_low:.2f}, {100 * e.ci_high:.2f}]"


def _table(payload):
    from rich.table import Table

    table = Table(title=f"ε-Rashomon sets (held-out {payload.loss}, {payload.tolerance} ε; "
                        "95 % bootstrap over models)")
    for column in ("ε", "models", "ambiguity", "discrepancy", "mean capacity", "churn",
                   "flagged groups"):
        table.add_column(column)
    from assay.multiplicity.run import flagged_groups

    for f in payload.epsilons:
        flagged = ", ".join(g.label for g in flagged_groups(f)) or "none"
        capacity = "not measurable" if f.mean_capacity is None else (
            f"{f.mean_capacity.value:.4f} [{f.mean_capacity.ci_low:.4f}, "
            f"{f.mean_capacity.ci_high:.4f}]")
        table.add_row(f"{f.epsilon:g}", str(f.n_models), _ci(f.ambiguity), _ci(f.discrepancy),
                      capacity, _ci(f.churn),
                      flagged if f.ambiguity is not None else _short_reason(f, payload))
    return table


def _short_reason(f, payload) -> str:
    """The table's cell for a set too small for figures (the full reason is in the JSON)."""
    if f.reason is None:
        return f.note
    where = ("no ε gives two" if payload.min_measurable_epsilon is None
             else f"two models from ε = {payload.min_measurable_epsilon:.3g}")
    return f"{f.n_models} model: {where}"


@app.command("multiplicity")
def multiplicity(
    data: Annotated[str, typer.Argument(
        help="A .csv/.parquet file, or a public table name (adult, compas, synthetic, ...).")],
    target: Annotated[str | None, typer.Option(
        "--target", help="Label column (required for a file).")] = None,
    protected: Protected = None,
    models: Annotated[int, typer.Option(
        "--models", help="Candidate models of the Rashomon set.")] = 32,
    epsilon: Annotated[list[str] | None, typer.Option(
        "--epsilon", help="Loss tolerance(s) ε > 0; repeat or comma-separate.")] = None,
    headline: Annotated[float, typer.Option(
        "--headline", help="ε of the per-person figures and the group flags.")] = 0.01,
    tolerance: Annotated[str, typer.Option(
        "--tolerance", help="relative (ε = 0.01: within 1 % of the best loss) or absolute."
    )] = "relative",
    loss: Annotated[str, typer.Option("--loss", help="log_loss or error.")] = "log_loss",
    learner: Learner = "logreg",
    learner_param: LearnerParam = None,
    grid: Annotated[list[str] | None, typer.Option(
        "--grid", help="Hyper-parameter values of the candidates, KEY=V1,V2 (repeatable).")
    ] = None,
    holdout: Annotated[float, typer.Option(
        "--holdout", help="Share of rows no candidate trains on (without --predictions).")
    ] = 0.3,
    subsample: Annotated[float, typer.Option(
        "--subsample", help="Share of the training rows each candidate trains on.")] = 0.8,
    predictions: Annotated[Path | None, typer.Option(
        "--predictions", help="Predictions of your model (proba_<class> or score, in_train): "
        "the decisions audited; its unseen rows are held out.")] = None,
    train_column: Annotated[str, typer.Option(
        "--train-column", help="0/1 column of the predictions file marking training rows.")
    ] = "in_train",
    compare: Annotated[Path | None, typer.Option(
        "--compare", help="Predictions of another version of your model: churn against it.")
    ] = None,
    bootstrap: Annotated[int, typer.Option(
        "--bootstrap", help="Resamples of the set's models behind the intervals.")] = 100,
    min_gap: Annotated[float, typer.Option(
        "--min-gap", help="Smallest group ambiguity excess over the overall that is flagged.")
    ] = 0.05,
    min_support: Annotated[int, typer.Option(
        "--min-support", help="Groups with fewer held-out rows get no figures.")] = 50,
    permutations: Permutations = 200,
    backend: Backend = "batched",
    scheduler: Scheduler = None,
    memory_budget: MemoryBudget = None,
    json_path: Annotated[Path | None, typer.Option(
        "--json", help=HELP["section_json"].format(name="multiplicity"))] = None,
    cache_dir: CacheDir = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of plans, models and tests.")] = 0,
    data_home: DataHome = None,
    progress: Progress = True,
    task: Task = "auto",
    decision_threshold: DecisionThreshold = None,
) -> None:
    """Train a Rashomon set of equally good models and report which decisions they reverse,
    per person and per protected group: the multiplicity section of assay audit, run
    alone."""
    # Every option is checked before anything is loaded or trained.
    check_scalar(models, "--models", kind=int, low=2)
    epsilons = _epsilons(epsilon)
    check_scalar(headline, "--headline", low=0, low_open=True)
    check_option(tolerance, "--tolerance", ("relative", "absolute"))
    check_option(loss, "--loss", ("log_loss", "error"))
    check_scalar(holdout, "--holdout", low=0, high=1, low_open=True, high_open=True)
    check_scalar(subsample, "--subsample", low=0, high=1, low_open=True)
    check_scalar(bootstrap, "--bootstrap", kind=int, low=0, high=MAX_RESAMPLES)
    check_scalar(min_gap, "--min-gap", low=0, high=1)
    check_scalar(min_support, "--min-support", kind=int, low=1)
    check_scalar(permutations, "--permutations", kind=int, low=0, high=MAX_RESAMPLES)
    backend = check_engine_flags(backend, scheduler, cache_dir)
    limits = encoding_limits(None, None, memory_budget)
    check_json_path(json_path)
    check_task(task, decision_threshold)
    if compare is not None and predictions is None:
        raise InvalidParameterError("--compare needs --predictions (the version to compare "
                                    "with). Got --compare alone.")
    for path, flag in ((predictions, "--predictions"), (compare, "--compare")):
        if path is not None and not path.is_file():
            raise InvalidParameterError(f"{flag} must be an existing file. Got {path}.")
    grid_values = _parse_grid(grid)

    from assay.learners import get_learner, parse_learner_params
    from assay.multiplicity.rashomon import grid_points

    params = parse_learner_params(learner_param or [])
    spec = get_learner(learner, **params)
    points = grid_points(grid_values)
    if models < len(points):
        raise InvalidParameterError(f"--models must be at least the {len(points)} grid points. "
                                    f"Got {models}.")
    for point in points:
        get_learner(spec, **point)

    from assay.audit import AuditConfig, GroupOptions
    from assay.engine import check_population_size
    from assay.multiplicity.section import MultiplicityOptions

    dataset = load_dataset(data, target, unique_names(protected), data_home, task=task,
                           section="multiplicity", **limits)
    check_population_size(models, dataset.n_rows, dataset.n_classes or 2, name="--models",
                          spill=False)
    # A one-section audit: the multiplicity section of `assay audit`. Without --predictions
    # no model is audited: the candidates hold out --holdout of the rows (the section's
    # `holdout`); with it, the model's unseen rows. The candidates fit on the audit's
    # engine (backend, --scheduler's cluster, cache, --memory-budget).
    options = MultiplicityOptions(
        epsilons=epsilons, headline_epsilon=headline, tolerance=tolerance, loss=loss,
        models=models, grid=grid_values, subsample=subsample, n_bootstrap=bootstrap,
        min_gap=min_gap, holdout=None if predictions is not None else holdout,
        compare=None if compare is None else str(compare))
    config = AuditConfig(
        data=data, target=dataset.target, protected=tuple(dataset.protected), learner=learner,
        learner_params=params, models=models, backend=backend, scheduler_address=scheduler,
        seed=seed, predictions=None if predictions is None else str(predictions),
        train_column=train_column, **given(limits),
        groups=GroupOptions(min_support=min_support, n_permutations=permutations),
        sections={"multiplicity": options})
    # A regression model is ranked by squared error and measured as the model under
    # audit (no --holdout): --loss and --holdout are refused as by assay audit.
    audit = run_one_section(config, "multiplicity", dataset, cache_dir, progress, task=task,
                            decision_threshold=decision_threshold,
                            option_flags={"loss": "loss", "holdout": "holdout"})
    section = section_result(audit, "multiplicity")
    payload = section.data
    from rich.console import Console

    from assay.multiplicity.run import summary_lines

    console = Console()
    if dataset.task == "regression":
        print_summary(console, section)
        _write_json(console, audit, json_path)
        return
    console.print(f"{dataset.name}: {dataset.n_rows} rows, {payload.n_candidates} x {spec.name} "
                  f"candidates, {payload.n_heldout} held-out rows "
                  f"(best held-out {loss} {payload.best_loss:.4f})", highlight=False)
    console.print(_table(payload))
    for line in summary_lines(payload):
        console.print(line, highlight=False, markup=False)
    if payload.churn is not None and compare is not None:
        c = payload.churn
        console.print(f"Churn against {compare.name}: {c.n_flipped} of {c.n_rows} decisions "
                      f"flip ({_ci(c.churn)}).", highlight=False, markup=False)
    _write_json(console, audit, json_path)


def _write_json(console, audit, json_path: Path | None) -> None:
    if json_path is not None:
        from assay.report.result import write_text_atomic

        write_text_atomic(json_path, json.dumps(section_json(audit, "multiplicity"), indent=1,
                                                default=str))
        console.print(f"wrote {json_path}", highlight=False)
