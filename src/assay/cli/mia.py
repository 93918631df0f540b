"""`assay mia DATA`: train a population, attack it, report who leaks most."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from assay._validation import DataError, InvalidParameterError, check_option, check_scalar
from assay.cli import app

_FPR_LABELS = {0.1: "TPR@10%", 0.01: "TPR@1%", 0.001: "TPR@0.1%"}


def _names(values: list[str] | None) -> list[str]:
    """Repeated and/or comma-separated names, in order, without duplicates."""
    out = [part.strip() for chunk in values or [] for part in str(chunk).split(",")]
    return list(dict.fromkeys(p for p in out if p))


def _load_dataset(data: str, target: str | None, protected: list[str],
                  data_home: Path | None):
    """A file path (csv/parquet) or the name of a public table."""
    from assay.data import PUBLIC_TABLES, Dataset, load

    path = Path(data)
    if path.is_file():
        if not target:
            raise InvalidParameterError(f"--target must name the label column of {data}. "
                                        "Got nothing.")
        return Dataset.from_path(path, target, protected)
    names = sorted([*PUBLIC_TABLES, "synthetic"])
    if data not in names:
        raise DataError(f"DATA must be an existing .csv/.parquet file or one of "
                        f"{', '.join(names)}. Got {data!r}.")
    overrides: dict = {}
    if target:
        overrides["target"] = target
    if protected:
        overrides["protected"] = protected
    return load(data, data_home=data_home, **overrides)


def _ci(e) -> str:
    return f"{e.value:.3f} [{e.ci_low:.3f}, {e.ci_high:.3f}]"


def _most_vulnerable(attack) -> str:
    """Attribute whose group gap is most significant (then largest), with its worst group."""
    candidates = [(v.gaps["auc"].p_value, -v.gaps["auc"].gap, key, v)
                  for key, v in attack.groups.items() if "auc" in v.gaps]
    if not candidates:
        return "-"
    p, _, key, v = min(candidates, key=lambda c: c[:2])
    gap = v.gaps["auc"]
    return f"{key}: {gap.max_group} (AUC {gap.max_value:.3f}, gap {gap.gap:.3f}, p={p:.2g})"


def _table(result, fprs) -> Table:
    table = Table(title="Membership inference (mean over targets, 95 % CI)")
    table.add_column("attack")
    table.add_column("AUC")
    for a in fprs:
        table.add_column(_FPR_LABELS.get(a, f"TPR@{a:g}"))
    table.add_column("most vulnerable group")
    for name, attack in result.attacks.items():
        table.add_row(name, _ci(attack.auc), *(_ci(attack.tpr_at_fpr[a]) for a in fprs),
                      _most_vulnerable(attack))
    return table


@app.command("mia")
def mia(
    data: Annotated[str, typer.Argument(
        help="A .csv/.parquet file, or a public table name (adult, location30, synthetic, ...).")],
    target: Annotated[Optional[str], typer.Option(
        "--target", help="Label column (required for a file).")] = None,
    protected: Annotated[Optional[list[str]], typer.Option(
        "--protected", help="Protected column(s); repeat or comma-separate.")] = None,
    learner: Annotated[str, typer.Option(
        "--learner", help="logreg, mlp or sklearn:module.Class.")] = "logreg",
    models: Annotated[int, typer.Option(
        "--models", help="Population size K (even; K-2 references per target).")] = 16,
    attacks: Annotated[str, typer.Option(
        "--attacks", help="Comma-separated: loss, lira, lira_offline, rmia, rmia_offline."
    )] = "loss,lira,rmia",
    backend: Annotated[str, typer.Option(
        "--backend", help="batched, joblib or dask.")] = "batched",
    json_path: Annotated[Optional[Path], typer.Option(
        "--json", help="Write the full result as JSON to this file.")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option(
        "--cache-dir", help="Cache of fitted models (an interrupted run resumes).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the plan and the tests.")] = 0,
    data_home: Annotated[Optional[Path], typer.Option(
        "--data-home", help="Folder of the public tables (default: ASSAY_DATA_HOME).")] = None,
    min_support: Annotated[int, typer.Option(
        "--min-support", help="Groups with fewer rows get no figures.")] = 50,
    permutations: Annotated[int, typer.Option(
        "--permutations", help="Permutations of the group-gap test.")] = 200,
    progress: Annotated[bool, typer.Option(
        "--progress/--no-progress", help="Show progress bars.")] = True,
) -> None:
    """Train K models on random halves of DATA, attack each in turn, report who leaks most."""
    from assay.learners import get_learner
    from assay.population import PopulationPlan, fit_population
    from assay.privacy.attacks import ATTACKS, DEFAULT_FPRS, run_mia

    console = Console()
    check_scalar(models, "--models", kind=int, low=2)
    names = _names([attacks])
    for name in names or [""]:
        check_option(name, "attacks", ATTACKS)
    if models < 6 and any(n.startswith("lira") for n in names):
        raise InvalidParameterError(f"--models must be at least 6 for LiRA (2 references "
                                    f"per side after leaving out the target's pair). "
                                    f"Got {models}.")
    dataset = _load_dataset(data, target, _names(protected), data_home)
    spec = get_learner(learner)
    plan = PopulationPlan.balanced(dataset.n_rows, models, random_state=seed)
    population = fit_population(dataset.X, dataset.y, spec, plan, n_classes=dataset.n_classes,
                                backend=backend, cache_dir=cache_dir,
                                data_fingerprint=dataset.fingerprint, progress=progress)
    groups = dataset.groups if dataset.groups.shape[1] else None
    status = console.status("attacking every model in turn") if progress else nullcontext()
    with status:
        result = run_mia(population, attacks=names, groups=groups, row_ids=dataset.row_ids,
                         random_state=seed, min_support=min_support,
                         n_permutations=permutations)
    acc_in = float(population.accuracy(members=True).mean())
    acc_out = float(population.accuracy(members=False).mean())
    console.print(f"{dataset.name}: {dataset.n_rows} rows, {models} x {spec.name} "
                  f"(train acc {acc_in:.3f}, test acc {acc_out:.3f})", highlight=False)
    console.print(_table(result, DEFAULT_FPRS))
    if json_path is not None:
        payload = {"dataset": {"name": dataset.name, "n_rows": int(dataset.n_rows),
                               "target": dataset.target, "protected": list(dataset.protected),
                               "fingerprint": dataset.fingerprint},
                   "learner": {"name": spec.name, "config": spec.get_config()},
                   "accuracy": {"members": acc_in, "nonmembers": acc_out},
                   **result.to_dict()}
        json_path.write_text(json.dumps(payload, indent=1, default=str))
        console.print(f"wrote {json_path}", highlight=False)
