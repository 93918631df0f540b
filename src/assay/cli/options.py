"""Flags several commands share, declared once: one name, type and help everywhere.

Use an alias as a parameter's annotation; the default stays in each command's signature
(``learner: Learner = "logreg"``). `HELP` words the same flags for commands that build
their options themselves (``assay audit``, whose flags default to audit.toml's values).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Annotated

import typer

from assay._validation import (
    DataError,
    InvalidParameterError,
    check_option,
    check_output_file,
    check_output_folder,
    check_scalar,
)

HELP = {
    "protected": "Protected column(s); repeat or comma-separate.",
    "learner": "logreg, mlp or sklearn:module.Class (scikit-learn, or a package listed in "
               "ASSAY_LEARNER_PACKAGES); for --task regression ridge, mlp-regressor or a "
               "sklearn: regressor.",
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
    "task": "auto (regression for a continuous numeric target, classes otherwise, as assay "
            "audit), classification or regression.",
    "decision_threshold": "Regression target: the decision is prediction > this (fairness "
                          "gaps of the decision, multiplicity's ambiguity).",
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
Task = Annotated[str, typer.Option("--task", help=HELP["task"])]
DecisionThreshold = Annotated[float | None, typer.Option(
    "--decision-threshold", help=HELP["decision_threshold"])]

#: --task's words: "auto" is `AuditConfig.task` None (detected from the target).
COMMAND_TASKS = ("auto", "classification", "regression")


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


def print_summary(console, section) -> None:
    """A section's summary lines, as ``assay audit`` prints them (what a one-section
    command shows of a regression model's payload, whole in its ``--json``)."""
    for line in section.summary:
        console.print(line, highlight=False, markup=False)


def section_json(result, name: str) -> dict:
    """What a one-section command's ``--json`` writes: result.json's ``data`` and
    ``population`` summaries (the latter only where the section used the population),
    and the section's payload under its name (exactly what result.json holds under
    ``sections.<name>.data``)."""
    frame = {"data": result.data, "population": result.population}
    return {**{k: v for k, v in frame.items() if v}, name: result.sections[name].to_dict()["data"]}


@contextmanager
def named_by_flags(flags: Mapping[str, str]) -> Iterator[None]:
    """An option refused inside the block named by the command's flag instead: `flags`
    maps the name the check uses (``"distribution.train_size"``) to the flag
    (``"--train-size"``); other errors pass unchanged."""
    try:
        yield
    except InvalidParameterError as error:
        key, sep, rest = str(error).partition(" ")
        if sep and key in flags:
            raise InvalidParameterError(f"{flags[key]} {rest}") from None
        raise


def run_one_section(config, name: str, dataset, cache_dir: Path | None, progress: bool,
                    flags: Mapping[str, str] | None = None, out: Path | None = None, *,
                    task: str = "classification", decision_threshold: float | None = None,
                    option_flags: Mapping[str, str | None] | None = None):
    """`assay.audit.run_section` for a command: its Dask scheduler reached (or a local
    cluster started) under the command's own flag name, ``--scheduler``; an option the
    section's checks refuse is named by the command's flag (`flags`, as `named_by_flags`);
    `out`: the folder the section's exports go into (``assay train-dp --out``).

    `task` (``--task``; "auto" is `AuditConfig.task` None) and `decision_threshold` enter
    the config as ``assay audit`` takes them. On a regression target an option the section
    refuses there (its ``regression_refused``, read now) that the command set itself
    (`option_flags`: option → the command's parameter, None where the command always sets
    it) falls back to the section's default unless the user gave the flag: a flag given is
    refused in ``assay audit``'s words."""
    import dataclasses

    from assay.audit import run_section
    from assay.engine.cluster import shared_cluster

    config = dataclasses.replace(config, task=None if task == "auto" else task,
                                 decision_threshold=decision_threshold)
    if dataset.task == "regression" and option_flags:
        config = _regression_defaults(config, name, option_flags)
    with named_by_flags(flags or {}), shared_cluster(
            config.backend, config.scheduler_address, "--scheduler") as address:
        config = dataclasses.replace(config, scheduler_address=address)
        return run_section(config, name, dataset=dataset, cache_dir=cache_dir,
                           progress=progress, out=out)


def given_flags(params) -> set[str]:
    """Which of the running command's parameters the user gave (rather than left at
    their defaults); none outside a command."""
    # typer's own (vendored) click, whose context the command runs in.
    from typer._click.core import ParameterSource
    from typer._click.globals import get_current_context

    context = get_current_context(silent=True)
    if context is None:
        return set()
    defaults = (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP, None)
    return {p for p in params if context.get_parameter_source(p) not in defaults}


def _regression_defaults(config, name: str, option_flags: Mapping[str, str | None]):
    """`config` with section `name`'s options that a regression model refuses back at the
    section's defaults where the user did not give the command's flag (`run_one_section`)."""
    import dataclasses

    from assay.section import get_section

    options = config.options(name)
    refused = getattr(get_section(name), "regression_refused", {})
    chosen = given_flags([p for p in option_flags.values() if p is not None])
    fields = {f.name: f for f in dataclasses.fields(options)}
    reset = {}
    for option, param in option_flags.items():
        if option in refused and param not in chosen:
            f = fields[option]
            reset[option] = (f.default if f.default_factory is dataclasses.MISSING
                             else f.default_factory())
    options = dataclasses.replace(options, **reset)
    return dataclasses.replace(config, sections={**config.sections, name: options})


# --------------------------------------------------------------------------- shared checks


def unique_names(values: list[str] | None) -> list[str]:
    """Repeated and/or comma-separated names, in order, without duplicates."""
    from assay.cli import split_names

    return list(dict.fromkeys(split_names(values)))


def given(options: dict) -> dict:
    """The options that were given (None: leave the default)."""
    return {k: v for k, v in options.items() if v is not None}


def check_task(task: str, decision_threshold: float | None) -> str:
    """--task and --decision-threshold, checked before anything is loaded (a threshold on
    a class target is refused once the target is read, in ``assay audit``'s words)."""
    check_option(task, "--task", COMMAND_TASKS)
    if decision_threshold is not None:
        check_scalar(decision_threshold, "--decision-threshold")
    return task


def check_section_task(dataset, name: str) -> None:
    """A regression target refused in one line for a section that does not audit
    regression models (its ``tasks``, read now; the reason is ``assay audit``'s skip
    reason)."""
    from assay.audit.regression import skip_reason, supports
    from assay.section import get_section

    section = get_section(name)
    if dataset.task == "regression" and not supports(section, "regression"):
        raise InvalidParameterError(
            f"target must be classes for the {name} section ({skip_reason(section)}). "
            f"Got {dataset.target!r}, a regression target.")


def check_engine_flags(backend: str, scheduler: str | None, cache_dir: Path | None) -> str:
    """--backend, --scheduler and --cache-dir, checked before anything is loaded; the
    backend's name as the engine spells it."""
    from assay.engine.backends import check_backend_name
    from assay.engine.cluster import check_scheduler

    backend = check_backend_name(backend, "--backend")
    check_scheduler(backend, scheduler, "--scheduler", "--backend")
    if cache_dir is not None:
        check_output_folder(cache_dir, "--cache-dir")
    return backend


def check_json_path(path: Path | None, flag: str = "--json") -> None:
    """An output file must be writable where asked: an existing folder, not a folder
    itself."""
    if path is not None:
        check_output_file(path, flag)


def population_folder(cache_dir: Path | None, memory_budget: float | None):
    """Where a population over --memory-budget is written: --cache-dir, or a temporary
    folder removed when the command ends (a context manager yielding the folder or None)."""
    import tempfile

    if cache_dir is None and memory_budget is not None:
        return tempfile.TemporaryDirectory(prefix="assay-population-")
    return nullcontext(cache_dir)


def encoding_limits(max_categories, min_frequency, memory_budget, sparse=None) -> dict:
    """--max-categories, --min-frequency, --memory-budget and --sparse, checked by the
    dataset's own check, its errors named as flags."""
    from assay.data.encode import ENCODING_OPTIONS, check_encoding_options

    if sparse is not None:
        sparse = SPARSE_VALUES[check_option(sparse.lower(), "--sparse", tuple(SPARSE_VALUES))]
    with named_by_flags({key: "--" + key.replace("_", "-") for key in ENCODING_OPTIONS}):
        values = check_encoding_options(max_categories, min_frequency, memory_budget, sparse)
    return dict(zip(ENCODING_OPTIONS, values, strict=True))


def load_dataset(data: str, target: str | None, protected: list[str],
                 data_home: Path | None, encoding: str = "utf-8", task: str | None = None,
                 section: str | None = None, **limits):
    """A file path (csv/parquet) or the name of a public table; `limits` are the
    one-hot caps and memory budget of `Dataset.from_frame` (None: its default), `task`
    its task (None: classification; "auto": detected). A regression target is refused
    for a `section` that does not audit regression models (`check_section_task`)."""
    dataset = _read_dataset(data, target, protected, data_home, encoding, task, **limits)
    if section is not None:
        check_section_task(dataset, section)
    return dataset


def _read_dataset(data: str, target: str | None, protected: list[str],
                  data_home: Path | None, encoding: str, task: str | None, **limits):
    from assay.data import PUBLIC_TABLES, Dataset, load

    limits = {**limits, "task": task}

    path = Path(data)
    if path.is_file():
        if not target:
            raise InvalidParameterError(f"--target must name the label column of {data}. "
                                        "Got nothing.")
        return Dataset.from_path(path, target, protected, encoding=encoding,
                                 **given(limits))
    tables = sorted([*PUBLIC_TABLES, "synthetic"])
    if data not in tables:
        raise DataError(f"DATA must be an existing .csv/.parquet file or one of "
                        f"{', '.join(tables)}. Got {data!r}.")
    overrides: dict = given(limits)
    if target:
        overrides["target"] = target
    if protected:
        overrides["protected"] = protected
    return load(data, data_home=data_home, **overrides)
