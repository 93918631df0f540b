"""`assay mia DATA`: train a population, attack it, report which groups leak more.

Light to import: numpy, pandas, rich tables and the privacy modules are imported inside
the command, after every option has been checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from assay._validation import (
    MAX_RESAMPLES,
    InvalidParameterError,
    check_encoding,
    check_option,
    check_scalar,
)
from assay.cli import app
from assay.cli.options import (
    HELP,
    Backend,
    CacheDir,
    DataHome,
    Encoding,
    LearnerParam,
    MaxCategories,
    MemoryBudget,
    MinFrequency,
    Permutations,
    Progress,
    Protected,
    Scheduler,
    Sparse,
    check_engine_flags,
    check_json_path,
    encoding_limits,
    given,
    load_dataset,
    run_one_section,
    section_json,
    section_result,
    unique_names,
)

_FPR_LABELS = {0.1: "TPR@10%", 0.01: "TPR@1%", 0.001: "TPR@0.1%"}
#: What the target is for (the data layer's `TASKS`, spelled out: checking imports nothing).
TASKS = ("classification", "regression")


def _ci(e) -> str:
    return f"{e.value:.3f} [{e.ci_low:.3f}, {e.ci_high:.3f}]"


def _flagged(attack) -> str:
    """Labels of the attack's flagged groups (largest AUC difference first), or "none"."""
    if not attack.flagged_groups:
        return "none"
    return ", ".join(g.label for g in attack.flagged_groups)


def _table(result, fprs):
    from rich.table import Table

    table = Table(title="Membership inference (mean over targets, 95 % CI)")
    table.add_column("attack")
    table.add_column("AUC")
    for a in fprs:
        table.add_column(_FPR_LABELS.get(a, f"TPR@{a:g}"))
    table.add_column("flagged groups")
    for name, attack in result.attacks.items():
        table.add_row(name, _ci(attack.auc),
                      *(_ci(attack.tpr_at_fpr[a]) if attack.estimable(a)
                        else f"not estimable ({attack.n_nonmembers:,} non-members)"
                        for a in fprs),
                      _flagged(attack))
    first = next(iter(result.attacks.values()), None)
    if first is not None and first.min_estimable_fpr is not None:
        table.caption = (f"TPR only at FPR ≥ {first.min_estimable_fpr:.3g}: at least 10 "
                         f"expected false positives among {first.n_nonmembers:,} non-members")
    return table


def _check_regression(learner: str, attacks: list[str], backend: str,
                      prior: float | None) -> None:
    """One-line errors, before the table is read, for what the privacy section cannot do
    on a regression model (`assay.audit.regression.regression_config`'s refusals, named
    by this command's flags)."""
    from assay.audit.regression import REGRESSION_LEARNERS
    from assay.privacy.membership.regression_audit import REGRESSION_ATTACKS

    # A scikit-learn estimator (sklearn:...) is judged by the audit's own check.
    if learner not in REGRESSION_LEARNERS and not learner.startswith("sklearn:"):
        raise InvalidParameterError(f"--learner must be a regression learner "
                                    f"({', '.join(REGRESSION_LEARNERS)}) with --task "
                                    f"regression. Got {learner!r}.")
    for name in attacks or [""]:
        check_option(name, "attacks (with --task regression)", REGRESSION_ATTACKS)
    if prior is not None:
        raise InvalidParameterError(f"--prior must be left out with --task regression: the "
                                    f"risk statement is not built for regression yet. "
                                    f"Got {prior:g}.")


def _regression_table(payload):
    """The attacks' figures on a regression model's residuals."""
    from rich.table import Table

    table = Table(title="Membership inference on a regression model's residuals (mean over "
                        "targets, 95 % CI)")
    table.add_column("attack")
    table.add_column("AUC")
    for a in payload.fprs:
        table.add_column(_FPR_LABELS.get(a, f"TPR@{a:g}"))
    for attack in payload.attacks:
        table.add_row(attack.name, _ci(attack.auc),
                      *(_ci(e) if (e := attack.tpr.get(a)) is not None
                        else f"not estimable ({attack.n_nonmembers:,} non-members)"
                        for a in payload.fprs))
    return table


def _regression_lines(payload, n_permutations: int, min_support: int) -> list[str]:
    """Under the table: the groups flagged against the strongest attack, and the rule."""
    from assay.privacy.membership.regression_audit import flagged

    if not payload.groups:
        return ["No protected columns: no group figures."]
    found = flagged(payload)
    how = (f"max-T permutation test over each attribute's groups, {n_permutations} "
           f"permutations" if n_permutations else "no permutation test (--permutations 0): "
           "nothing can be flagged")
    return [f"Groups more exposed to {payload.strongest}: "
            f"{', '.join(g.label for g in found) if found else 'none'}.",
            f"A group is flagged when "
            f"{payload.flag_rule.describe('the overall exposure (AUC units)')} ({how}; "
            f"groups of at least {min_support} rows; a row's exposure: the share of the "
            f"other side it outscores, mean over targets)."]


def _rule_line(result, n_permutations: int, min_support: int, has_groups: bool) -> str:
    """The flag rule in words, under the table."""
    if not has_groups:
        return "No protected columns: no group figures."
    rule = result.flag_rule.describe("the attack's overall AUC")
    how = (f"max-T permutation test over each attribute's groups, {n_permutations} "
           f"permutations" if n_permutations else "no permutation test (--permutations 0): "
           "nothing can be flagged")
    return (f"A group is flagged when {rule} ({how}; groups of at least {min_support} rows; "
            f"group AUC among the group's own rows).")


@app.command("mia")
def mia(
    data: Annotated[str, typer.Argument(
        help="A .csv/.parquet file, or a public table name (adult, location30, synthetic, ...).")],
    target: Annotated[str | None, typer.Option(
        "--target", help="Label column (required for a file).")] = None,
    protected: Protected = None,
    learner: Annotated[str | None, typer.Option(
        "--learner", help=HELP["learner"] + " Default: logreg; ridge with --task "
        "regression.")] = None,
    learner_param: LearnerParam = None,
    models: Annotated[int, typer.Option(
        "--models", help="Population size K (even; K-2 references per target).")] = 16,
    attacks: Annotated[str, typer.Option(
        "--attacks", help="Comma-separated: loss, lira, lira_offline, rmia, rmia_offline."
    )] = "loss,lira,rmia",
    backend: Backend = "batched",
    scheduler: Scheduler = None,
    json_path: Annotated[Path | None, typer.Option(
        "--json", help=HELP["section_json"].format(name="privacy"))] = None,
    cache_dir: CacheDir = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the plan and the tests.")] = 0,
    data_home: DataHome = None,
    min_support: Annotated[int, typer.Option(
        "--min-support", help="Groups with fewer rows get no figures.")] = 50,
    permutations: Permutations = 200,
    progress: Progress = True,
    encoding: Encoding = "utf-8",
    max_categories: MaxCategories = None,
    min_frequency: MinFrequency = None,
    memory_budget: MemoryBudget = None,
    sparse: Sparse = None,
    prior: Annotated[float | None, typer.Option(
        "--prior", help="Share of members among an attacker's candidates for the risk "
        "statement (default: this audit's own share).")] = None,
    task: Annotated[str, typer.Option(
        "--task", help="classification, or regression (a numeric target; ridge or "
        "mlp-regressor models, attacks loss, lira, lira_offline, rmia on residuals, as "
        "assay audit --task regression).")] = "classification",
) -> None:
    """Train K models on random halves of DATA, attack each in turn, flag the groups that
    leak more: the privacy section of assay audit, run alone."""
    # Every option is checked before anything is loaded or trained.
    check_scalar(models, "--models", kind=int, low=2)
    if models % 2:
        raise InvalidParameterError(f"--models must be an even integer in [2, inf) "
                                    f"(complementary pairs). Got {models}.")
    check_scalar(permutations, "--permutations", kind=int, low=0, high=MAX_RESAMPLES)
    check_scalar(min_support, "--min-support", kind=int, low=1)
    if prior is not None:  # the risk statement's, checked before any model is trained
        check_scalar(prior, "--prior", low=0.0, high=1.0, low_open=True, high_open=True)
    backend = check_engine_flags(backend, scheduler, cache_dir)
    check_encoding(encoding, "--encoding")
    check_json_path(json_path)
    limits = encoding_limits(max_categories, min_frequency, memory_budget, sparse)
    check_option(task, "--task", TASKS)
    regression = task == "regression"
    if learner is None:
        learner = "ridge" if regression else "logreg"

    from assay.learners import get_learner, parse_learner_params

    names = unique_names([attacks])
    if regression:
        _check_regression(learner, names, backend, prior)
    else:
        from assay.privacy.membership.attacks import ATTACKS

        for name in names or [""]:
            check_option(name, "attacks", ATTACKS)
    if models < 6 and any(n.startswith("lira") for n in names):
        raise InvalidParameterError(f"--models must be at least 6 for LiRA (2 references "
                                    f"per side after leaving out the target's pair). "
                                    f"Got {models}.")
    params = parse_learner_params(learner_param or [])
    get_learner(learner, **params)  # every learner parameter checked before the table is read

    from assay.audit import AuditConfig, GroupOptions
    from assay.engine import check_population_size
    from assay.privacy.membership.section import PrivacyOptions

    dataset = load_dataset(data, target, unique_names(protected), data_home, encoding,
                           task=task if regression else None, **limits)
    check_population_size(models, dataset.n_rows, dataset.n_classes or 2, memory_budget,
                          name="--models")
    # A one-section audit: the privacy section of `assay audit`, with its defaults.
    config = AuditConfig(
        data=data, target=dataset.target, protected=tuple(dataset.protected), learner=learner,
        learner_params=params, models=models, backend=backend, scheduler_address=scheduler,
        seed=seed, encoding=encoding,
        task=task if regression else None, **given(limits),
        groups=GroupOptions(min_support=min_support, n_permutations=permutations),
        sections={"privacy": PrivacyOptions(attacks=tuple(names), prior=prior)})
    result = run_one_section(config, "privacy", dataset, cache_dir, progress)
    _print_mia(result, json_path, permutations, min_support)


def _print_mia(result, json_path: Path | None, n_permutations: int, min_support: int) -> None:
    """The privacy section's table, flag rule and risk statement; its payload as JSON."""
    from rich.console import Console

    console = Console()
    section = section_result(result, "privacy")
    payload = section.data
    population, data = result.population, result.data
    if getattr(payload, "task", None) == "regression":
        console.print(f"{data['name']}: {data['n_rows']} rows, target {data['target']} "
                      f"(regression), {population['n_models']} x "
                      f"{population['learner'].get('name', '')} (train MSE "
                      f"{population['train_mse']:.4g}, test MSE "
                      f"{population['test_mse']:.4g})", highlight=False)
        console.print(_regression_table(payload))
        for line in _regression_lines(payload, n_permutations, min_support):
            console.print(line, highlight=False)
    else:
        _print_classification(console, payload, population, data, n_permutations,
                              min_support)
    if json_path is not None:
        from assay.report.result import write_text_atomic

        write_text_atomic(json_path, json.dumps(section_json(result, "privacy"), indent=1,
                                                default=str))
        console.print(f"wrote {json_path}", highlight=False)


def _print_classification(console, payload, population, data, n_permutations: int,
                          min_support: int) -> None:
    console.print(f"{data['name']}: {data['n_rows']} rows, {population['n_models']} x "
                  f"{population['learner'].get('name', '')} (train acc "
                  f"{population['train_accuracy']:.3f}, test acc "
                  f"{population['test_accuracy']:.3f})", highlight=False)
    fprs = tuple(sorted(next(iter(payload.mia.attacks.values())).tpr_at_fpr, reverse=True))
    console.print(_table(payload.mia, fprs))
    console.print(_rule_line(payload, n_permutations, min_support, bool(data["protected"])),
                  highlight=False)
    if payload.mia.risk is not None:
        console.print(payload.mia.risk.sentence(), highlight=False)

