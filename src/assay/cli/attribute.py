"""`assay attribute DATA --target COL --sensitive COL`: attribute inference against imputation.

Light to import: numpy and the privacy modules are imported inside the command, after
every option has been checked.
"""

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
)


@app.command("attribute")
def attribute(
    data: Annotated[str, typer.Argument(help="A .csv/.parquet file, or a public table name.")],
    sensitive: Annotated[str, typer.Option("--sensitive", help="Column to infer.")],
    target: Annotated[str | None, typer.Option("--target", help="Label column.")] = None,
    protected: Annotated[list[str] | None, typer.Option(
        "--protected", help="Protected column(s) for the group figures.")] = None,
    positive: Annotated[str | None, typer.Option(
        "--positive", help="Value of the sensitive column TPR/PPV are about.")] = None,
    learner: Learner = "logreg",
    learner_param: LearnerParam = None,
    models: Annotated[int, typer.Option("--models", help="Models trained (even).")] = 8,
    attacks: Annotated[str, typer.Option(
        "--attacks", help="Comma-separated: loss, confidence, model.")] = "loss,confidence,model",
    predictions: Annotated[Path | None, typer.Option(
        "--predictions", help="Predictions file of your own model (model attack only).")] = None,
    json_path: Annotated[Path | None, typer.Option(
        "--json", help=HELP["section_json"].format(name="attribute"))] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    data_home: DataHome = None,
    backend: Backend = "batched",
    scheduler: Scheduler = None,
    cache_dir: CacheDir = None,
    memory_budget: MemoryBudget = None,
    task: Task = "auto",
) -> None:
    """Can the model reveal a sensitive attribute beyond what imputation from the other
    columns already gives? Reports the model's own contribution with its interval: the
    attribute section of assay audit, run alone."""
    check_scalar(models, "--models", kind=int, low=4)  # also the audit's population size
    if models % 2:
        raise InvalidParameterError(f"--models must be an even integer in [4, inf). Got {models}.")
    check_json_path(json_path)
    backend = check_engine_flags(backend, scheduler, cache_dir)
    limits = encoding_limits(None, None, memory_budget)
    check_task(task, None)
    from assay.learners import get_learner, parse_learner_params
    from assay.privacy.attribute.inference import (
        ATTRIBUTE_ATTACKS,
        check_sensitive,
    )

    names = list(dict.fromkeys(split_names([attacks])))
    if not names or any(n not in ATTRIBUTE_ATTACKS for n in names):
        raise InvalidParameterError(f"--attacks must be among {', '.join(ATTRIBUTE_ATTACKS)}. "
                                    f"Got {attacks!r}.")
    params = parse_learner_params(learner_param or [])
    get_learner(learner, **params)  # every learner parameter checked before the table is read
    prot = list(dict.fromkeys(split_names(protected)))
    dataset = load_dataset(data, target, prot, data_home, task=task, section="attribute",
                           **limits)
    from assay.audit import AuditConfig
    from assay.engine import check_population_size
    from assay.privacy.attribute.section import AttributeOptions

    check_population_size(models, dataset.n_rows, dataset.n_classes or 2, memory_budget,
                          name="--models")
    check_sensitive(dataset, sensitive, positive)
    # A one-section audit: the attribute section of `assay audit`, with its defaults; its
    # population (and the models on altered copies) fit on the audit's engine.
    config = AuditConfig(
        data=data, target=dataset.target, protected=tuple(dataset.protected), learner=learner,
        learner_params=params, models=models, backend=backend, scheduler_address=scheduler,
        seed=seed, predictions=None if predictions is None else str(predictions),
        **given(limits), sections={"attribute": AttributeOptions(
            sensitive=sensitive, positive=positive, attacks=tuple(names), models=models)})
    # On a regression target --models is the population's size alone (the attacks read
    # it; no models on altered rows), and --attacks is refused as by assay audit.
    audit = run_one_section(config, "attribute", dataset, cache_dir, progress=False,
                            task=task, option_flags={"attacks": "attacks", "models": None})
    from rich.console import Console
    from rich.table import Table

    console = Console()
    section = section_result(audit, "attribute")
    if dataset.task == "regression":
        print_summary(console, section)
        _write_json(console, audit, json_path)
        return
    result = section.data.result
    table = Table(title=f"Attribute inference of {sensitive} (accuracy, 95 % CI)")
    for col in ("attack", "members", "non-members", "MCC (members)", "model's contribution"):
        table.add_column(col)

    def ci(e):
        return f"{e.value:.3f} [{e.ci_low:.3f}, {e.ci_high:.3f}]"

    for name, a in result.attacks.items():
        table.add_row(name + (" (baseline)" if name == "imputation" else ""),
                      ci(a.members.accuracy), ci(a.nonmembers.accuracy),
                      f"{a.members.mcc:.3f}",
                      "" if a.contribution is None else
                      f"{a.contribution.value:+.3f} [{a.contribution.ci_low:+.3f}, "
                      f"{a.contribution.ci_high:+.3f}]")
    console.print(table)
    console.print(f"always guessing the most common value: {result.majority_accuracy:.3f} "
                  "of members", highlight=False)
    c = None if result.best is None else result.best.contribution
    if c is None or result.strongest is None:
        console.print(f"Strongest: none; {result.strongest_reason}.", highlight=False)
    else:
        cmp = result.comparison[result.strongest]
        verdict = ("the model leaks it beyond imputation" if c.ci_low > 0 else
                   "no leak beyond imputation detected")
        console.print(f"Strongest: {result.strongest} (accuracy on members, lower 95 % bound "
                      f"{cmp['lower_bound']:.3f} > {cmp['reference']:.3f}, "
                      f"{cmp['reference_name']}); contribution {c.value:+.3f} "
                      f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}]: {verdict}.", highlight=False)
    for name, why in result.not_run.items():
        console.print(f"not run: {name}: {why}", highlight=False)
    flagged = result.flagged_groups
    if flagged:
        console.print("groups leaking more: " + ", ".join(g.label for g in flagged),
                      highlight=False)
    _write_json(console, audit, json_path)


def _write_json(console, audit, json_path: Path | None) -> None:
    if json_path is not None:
        from assay.report.result import write_text_atomic

        write_text_atomic(json_path, json.dumps(section_json(audit, "attribute"), indent=1,
                                                default=str))
        console.print(f"wrote {json_path}", highlight=False)
