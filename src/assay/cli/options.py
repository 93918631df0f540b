"""Flags several commands share, declared once: one name, type and help everywhere.

Use an alias as a parameter's annotation; the default stays in each command's signature
(``learner: Learner = "logreg"``). `HELP` words the same flags for commands that build
their options themselves (``assay audit``, whose flags default to audit.toml's values).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

HELP = {
    "protected": "Protected column(s); repeat or comma-separate.",
    "learner": "logreg, mlp or sklearn:module.Class (scikit-learn, or a package listed in "
               "ASSAY_LEARNER_PACKAGES).",
    "learner_param": "Learner hyper-parameter KEY=VALUE (a TOML value, e.g. C=0.5 or "
                     "hidden=[64,32]); repeatable.",
    "backend": "batched, joblib or dask (dask: fitting and attacks on a Dask cluster).",
    "scheduler": "Address of a running Dask scheduler (with --backend dask; default: a "
                 "local cluster).",
    "encoding": "Text encoding of a CSV table (e.g. latin-1, cp1252).",
    "max_categories": "One-hot columns per categorical column at most; rarer levels share "
                      "an '(infrequent)' column.",
    "min_frequency": "Levels with fewer rows (or a smaller share, if < 1) are infrequent.",
    "memory_budget": "GiB the encoded features may take (default 2; over it, one error line "
                     "naming a --max-categories that fits); also the population's "
                     "probabilities, written to disk over it (default: no limit).",
    "sparse": "One-hot as a sparse CSR matrix: auto (default: sparse when the dense matrix "
              "would exceed --memory-budget), true or false.",
    "permutations": "Permutations of the group test (0: no test).",
    "train_column": "0/1 column of the predictions file marking training rows.",
    "data_home": "Folder of the public tables (default: ASSAY_DATA_HOME).",
    "cache_dir": "Cache of fitted models (an interrupted run resumes).",
    "progress": "Show progress bars.",
    "section_json": "Write JSON to this file: the data and population summaries of assay "
                    "audit's result.json, and the {name} section's payload under "
                    "'{name}' (as result.json holds it under sections.{name}.data).",
}

#: --sparse's words and the layouts they ask for (`Dataset.from_frame`'s ``sparse``).
SPARSE_VALUES = {"auto": "auto", "true": True, "false": False}

Protected = Annotated[list[str] | None, typer.Option("--protected", help=HELP["protected"])]
Learner = Annotated[str, typer.Option("--learner", help=HELP["learner"])]
LearnerParam = Annotated[list[str] | None, typer.Option(
    "--learner-param", help=HELP["learner_param"])]
Backend = Annotated[str, typer.Option("--backend", help=HELP["backend"])]
Scheduler = Annotated[str | None, typer.Option("--scheduler", help=HELP["scheduler"])]
Encoding = Annotated[str, typer.Option("--encoding", help=HELP["encoding"])]
MaxCategories = Annotated[int | None, typer.Option(
    "--max-categories", help=HELP["max_categories"])]
MinFrequency = Annotated[float | None, typer.Option(
    "--min-frequency", help=HELP["min_frequency"])]
MemoryBudget = Annotated[float | None, typer.Option(
    "--memory-budget", help=HELP["memory_budget"])]
Sparse = Annotated[str | None, typer.Option("--sparse", help=HELP["sparse"])]
Permutations = Annotated[int, typer.Option("--permutations", help=HELP["permutations"])]
TrainColumn = Annotated[str, typer.Option("--train-column", help=HELP["train_column"])]
DataHome = Annotated[Path | None, typer.Option("--data-home", help=HELP["data_home"])]
CacheDir = Annotated[Path | None, typer.Option("--cache-dir", help=HELP["cache_dir"])]
Progress = Annotated[bool, typer.Option("--progress/--no-progress", help=HELP["progress"])]


#: Exit status of a one-section command whose section failed after training (as
#: `assay audit`'s EXIT_SECTION_FAILED).
EXIT_SECTION_FAILED = 3


def section_result(result, name: str):
    """Section `name` of a one-section audit (`assay.audit.run_section`); a section that
    failed while running prints its message on one line and exits 3, as ``assay audit``."""
    section = result.sections[name]
    if section.status != "ok":
        typer.echo(f"error: the {name} section failed: {section.message}", err=True)
        raise typer.Exit(EXIT_SECTION_FAILED)
    return section


def section_json(result, name: str) -> dict:
    """What a one-section command's ``--json`` writes: result.json's ``data`` and
    ``population`` summaries (the latter only where the section used the population),
    and the section's payload under its name (exactly what result.json holds under
    ``sections.<name>.data``)."""
    frame = {"data": result.data, "population": result.population}
    return {**{k: v for k, v in frame.items() if v}, name: result.sections[name].to_dict()["data"]}


def run_one_section(config, name: str, dataset, cache_dir: Path | None, progress: bool):
    """`assay.audit.run_section` for a command: its Dask scheduler reached (or a local
    cluster started) under the command's own flag name, ``--scheduler``."""
    import dataclasses

    from assay.audit import run_section
    from assay.engine.cluster import shared_cluster

    with shared_cluster(config.backend, config.scheduler_address, "--scheduler") as address:
        config = dataclasses.replace(config, scheduler_address=address)
        return run_section(config, name, dataset=dataset, cache_dir=cache_dir,
                           progress=progress)
