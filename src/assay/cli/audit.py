"""`assay audit`, `assay report`, `assay gate` and `assay demo`."""

from __future__ import annotations

import inspect
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from assay._validation import InvalidParameterError
from assay.cli import app, before_run, split_names
from assay.cli.options import HELP, SPARSE_VALUES

#: Demo table size, population and fair-boosting rounds: the full audit in about half a
#: minute on 2 cores. 12,000 rows give the planted fairness effect's groups the positives
#: a confirmed fix needs (`assay.fairness.verdict.VERDICT_MIN_COUNT`); 20 rounds because
#: the table's one-hot codes make each round's tree slow.
DEMO_ROWS = 12000
DEMO_MODELS = 16
DEMO_ROUNDS = 20
#: ``assay demo --task regression``: the same people with a premium to predict; 4,000 rows
#: (about 1,000 features with the Isle's rare levels) keep the audit near 15 s on 2 cores.
DEMO_REGRESSION_ROWS = 4000

_OUT_HELP = ("Output folder (result.json, report.html, fairness/ exports and the resumable "
             "population cache/); a run owns it: when it starts, an earlier run's result, "
             "report and exports there move into previous/ (replacing an older one).")

#: Exit status of `assay audit` / `assay demo` when a section failed while running, and of
#: `assay gate` on such a result (0: fine, 1: a gate threshold crossed, 2: bad input).
EXIT_SECTION_FAILED = 3

EXIT_CODES_HELP = (
    "Exit status: 0 every section ran; 2 bad input or option (one error line, nothing "
    f"trained or written); {EXIT_SECTION_FAILED} a section failed while running (its "
    "message is printed and kept in result.json); 1 an unexpected error (a bug).")


def _echo_outputs(out: Path, seconds: float) -> None:
    typer.echo(f"result: {out / 'result.json'}")
    typer.echo(f"report: {out / 'report.html'}")
    typer.echo(f"done in {seconds:.1f} s")


def _print_summary(result) -> int:
    """Print every section's findings and each failure; return the exit status."""
    for section in result.sections.values():
        for line in section.summary:
            typer.echo(f"  {line}")
    failed = result.failed_sections()
    for section in failed:
        typer.echo(f"error: the {section.name} section failed: {section.message}", err=True)
    return EXIT_SECTION_FAILED if failed else 0


def _flag_parameter(section, flag) -> str:
    """Python parameter name of a section's flag in the generated ``audit`` command."""
    return f"{section.name}__{flag.option}"


def _flag_values(section, given: dict[str, Any]) -> dict[str, Any]:
    """The section's options whose flags were given (list flags split on commas)."""
    out: dict[str, Any] = {}
    for flag in section.flags:
        value = given.get(_flag_parameter(section, flag))
        if value is None or value == []:
            continue
        if flag.kind == "list":
            value = [_number_or_text(v) for v in split_names(value)]
        out[flag.option] = value
    return out


def _number_or_text(text: str) -> Any:
    try:
        return float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        return text


# The flags every audit has (the runner's shared options); sections add their own.
_SHARED_FLAGS: list[tuple[str, Any, Any]] = [
    ("target", str | None, typer.Option(help="Label column.")),
    ("task", str | None, typer.Option(
        help="classification or regression (default: regression for a continuous numeric "
             "target, classes otherwise).")),
    ("decision_threshold", float | None, typer.Option(help=HELP["decision_threshold"])),
    ("protected", list[str] | None, typer.Option(help=HELP["protected"])),
    ("learner", str | None, typer.Option(help=HELP["learner"])),
    ("learner_param", list[str] | None, typer.Option(help=HELP["learner_param"])),
    ("models", int | None, typer.Option(
        help="Models in the population (even); with --predictions, reference models.")),
    ("config", Path | None, typer.Option(
        help="audit.toml with the same options; flags override it.")),
    ("out", str | None, typer.Option(help=_OUT_HELP)),
    ("backend", str | None, typer.Option(help=HELP["backend"])),
    ("scheduler", str | None, typer.Option(help=HELP["scheduler"])),
    ("seed", int | None, typer.Option(help="Seed of plan, models and tests.")),
    ("predictions", str | None, typer.Option(
        help="Predictions of a model you already trained (CSV/Parquet: proba_<class> or "
             "score columns, or a prediction column for a regression target; a 0/1 "
             "training-row column, optional row_id).")),
    ("train_column", str | None, typer.Option(
        help="Column of --predictions marking the training rows (default in_train).")),
    ("encoding", str | None, typer.Option(help=HELP["encoding"], show_default="utf-8")),
    ("max_categories", int | None, typer.Option(help=HELP["max_categories"])),
    ("min_frequency", float | None, typer.Option(help=HELP["min_frequency"])),
    ("memory_budget", float | None, typer.Option(help=HELP["memory_budget"])),
    ("sparse", str | None, typer.Option(help=HELP["sparse"])),
    ("min_support", int | None, typer.Option(
        help="Groups with fewer rows get no figures and no flags.")),
    ("permutations", int | None, typer.Option(
        help="Permutations of the group tests (0: no test).")),
    ("quiet", bool, typer.Option("--quiet", help="No progress bars.")),
]

_KINDS = {"str": str, "int": int, "float": float, "bool": bool, "list": list[str]}


def _audit_signature(sections) -> inspect.Signature:
    """The audit command's parameters: DATA, the shared flags, then each section's flags."""
    params = [inspect.Parameter("data", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                annotation=Annotated[str | None, typer.Argument(
                                    help="CSV/Parquet table, or a bundled table name "
                                         "(synthetic, adult, ...).")])]
    for name, kind, option in _SHARED_FLAGS:
        default = False if kind is bool else None
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=Annotated[kind, option]))
    for section in sections:
        for flag in section.flags:
            kind = _KINDS[flag.kind]
            params.append(inspect.Parameter(
                _flag_parameter(section, flag), inspect.Parameter.KEYWORD_ONLY, default=None,
                annotation=Annotated[kind | None, typer.Option(
                    flag.flag, help=f"[{section.name}] {flag.help}",
                    rich_help_panel=section.title)]))
    return inspect.Signature(params)


def _audit(**given: Any) -> int:
    """Train one population and run every audit section; write result.json and report.html.

    Every option, input and output path is checked before any model is trained.
    """
    from assay.audit import AuditConfig, begin_audit, load_config, run_audit
    from assay.learners import parse_learner_params
    from assay.section import registered_sections

    config = given.pop("config")
    quiet = given.pop("quiet")
    # The earlier run in --out is set aside first: a run that fails on any bad option
    # or input leaves no result there for a gate to pass on.
    if given.get("out") is not None:
        begin_audit(given["out"], "--out")
    options: dict[str, Any] = load_config(config) if config is not None else {}
    if given.get("out") is None:
        out = options.get("out", AuditConfig.out)
        if isinstance(out, str) and out:  # any other value is reported by from_mapping
            begin_audit(out, "out")
    source = str(config) if config is not None else "the command line"
    for key, flag in (("min_support", "min_support"), ("n_permutations", "permutations")):
        value = given.pop(flag)
        if value is not None:
            options["groups"] = {**(options.get("groups") or {}), key: value}
    params = given.pop("learner_param")
    if params:
        options["learner_params"] = parse_learner_params(params)
    protected = split_names(given.pop("protected"))
    if protected:
        options["protected"] = protected
    for section in registered_sections():
        values = _flag_values(section, given)
        table = options.get(section.name) or {}
        if values and isinstance(table, dict):  # a non-table is reported by from_mapping
            options[section.name] = {**table, **values}
    sparse = given.pop("sparse")
    if sparse is not None:  # the config's own check words any other value
        options["sparse"] = SPARSE_VALUES.get(sparse.lower(), sparse)
    if given.get("scheduler") is not None:
        options["scheduler_address"] = given["scheduler"]
    for key in ("data", "target", "task", "decision_threshold", "learner", "models", "out",
                "backend", "seed", "predictions", "train_column", "encoding", "max_categories",
                "min_frequency", "memory_budget"):
        if given.get(key) is not None:
            if key == "learner" and isinstance(options.get("learner"), dict):
                options["learner"] = {**options["learner"], "name": given[key]}
            else:
                options[key] = given[key]
    cfg = AuditConfig.from_mapping(options, source)
    started = time.perf_counter()
    result = run_audit(cfg, progress=not quiet)
    code = _print_summary(result)
    _echo_outputs(Path(cfg.out), time.perf_counter() - started)
    return code


@before_run
def _install_audit_command() -> None:
    """(Re)build ``assay audit`` with the flags of every registered section."""
    from assay.section import registered_sections

    def audit(**given: Any) -> int:
        return _audit(**given)

    audit.__doc__ = f"{(_audit.__doc__ or '').rstrip()}\n\n    {EXIT_CODES_HELP}\n"
    signature = _audit_signature(registered_sections())
    audit.__signature__ = signature  # type: ignore[attr-defined]
    audit.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
    app.registered_commands[:] = [c for c in app.registered_commands if c.name != "audit"]
    app.command("audit")(audit)


@app.command("report")
def report(
    result_path: Annotated[Path, typer.Argument(metavar="RESULT", help="result.json")],
    out: Annotated[Path | None, typer.Option(
        help="HTML file (default: report.html beside the result).")] = None,
) -> None:
    """Re-render the HTML report of a result.json."""
    from assay._validation import check_output_file
    from assay.report.html import write_report
    from assay.report.result import AuditResult

    target = out or result_path.with_name("report.html")
    check_output_file(target, "--out", make_folder=True)
    result = AuditResult.from_json(result_path)
    path = write_report(result, target)
    typer.echo(f"report: {path}")


# --------------------------------------------------------------------------- gate


@dataclass(frozen=True)
class Threshold:
    """One gate condition: ``metric`` must stay at most (``max``) or at least a ``limit``."""

    metric: str
    limit: float
    kind: str  # "max" or "min"
    text: str


_NUMBER = r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"
# tpr@fpr=LIMIT@FPR (the calibration syntax), or NAME=LIMIT with NAME such as auc, tpr@0.001.
_TPR_AT_FPR = re.compile(rf"^\s*(?:(?P<scope>[\w.]+)\.)?tpr@fpr\s*=\s*(?P<limit>{_NUMBER})"
                         rf"\s*@\s*(?P<fpr>{_NUMBER})\s*$")
_PLAIN = re.compile(rf"^\s*(?P<name>[\w.@-]+)\s*=\s*(?P<limit>{_NUMBER})\s*$")


def parse_threshold(text: str, kind: str) -> Threshold:
    """Parse ``tpr@fpr=0.05@0.001`` or ``auc=0.6`` (optionally ``lira.auc=0.6``).

    Raises
    ------
    InvalidParameterError
        The expression has neither form, or its limit is not a finite number (1e999).
    """
    match = _TPR_AT_FPR.match(text) or _PLAIN.match(text)
    if match is None or match.re is _PLAIN and match["name"].endswith("tpr@fpr"):
        raise InvalidParameterError(
            f"--{kind} must look like METRIC=LIMIT (auc=0.6, advantage=0.1, lira.auc=0.6, "
            f"privacy.flagged_groups=0) or tpr@fpr=LIMIT@FPR (tpr@fpr=0.05@0.001). "
            f"Got {text!r}.")
    limit = float(match["limit"])
    if not math.isfinite(limit):  # 1e999 reads as inf: a limit nothing crosses
        raise InvalidParameterError(f"--{kind} limit must be a finite number. Got {text!r}.")
    if match.re is _TPR_AT_FPR:
        fpr = float(match["fpr"])
        if not 0 < fpr < 1:
            raise InvalidParameterError(f"--{kind} FPR must be in (0, 1). Got {text!r}.")
        scope = f"{match['scope']}." if match["scope"] else ""
        return Threshold(f"{scope}tpr@{fpr:g}", limit, kind, text.strip())
    return Threshold(match["name"], limit, kind, text.strip())


def check_threshold(result, threshold: Threshold, use: str) -> tuple[bool, str]:
    """Whether ``result`` passes ``threshold``, and a one-line reason.

    With ``use="upper"`` (default, conservative) a ``max`` condition compares the upper
    end of the 95 % interval and a ``min`` condition the lower end; ``use="estimate"``
    compares the point estimate. A figure without an interval is compared as is.
    """
    name, metric = result.metric(threshold.metric)
    if use == "upper":
        bound = metric.ci_high if threshold.kind == "max" else metric.ci_low
        which = "upper 95 % bound" if threshold.kind == "max" else "lower 95 % bound"
    else:
        bound, which = None, "estimate"
    if bound is None:
        bound, which = metric.value, "estimate"
    if bound is None or not math.isfinite(bound):
        return False, f"{name}: no value to compare (the figure is missing)"
    ok = bound <= threshold.limit if threshold.kind == "max" else bound >= threshold.limit
    relation = ("≤" if ok else ">") if threshold.kind == "max" else ("≥" if ok else "<")
    return ok, (f"{name} ({metric.label}): {which} {bound:.4g} {relation} "
                f"{threshold.kind} {threshold.limit:g}")


@app.command("gate")
def gate(
    result_path: Annotated[Path, typer.Argument(metavar="RESULT", help="result.json")],
    max_: Annotated[list[str] | None, typer.Option(
        "--max", help="METRIC=LIMIT that must not be exceeded, e.g. tpr@fpr=0.05@0.001 or "
        "privacy.flagged_groups=0 (a finite LIMIT).")] = None,
    min_: Annotated[list[str] | None, typer.Option(
        "--min", help="METRIC=LIMIT that must be reached.")] = None,
    use: Annotated[str, typer.Option(
        help="Compare the CI's conservative end (upper) or the point estimate.")] = "upper",
) -> int:
    """Exit 1 when a result crosses a threshold (for CI pipelines), 0 otherwise.

    A result with a failed section passes no gate (exit 3, the section named); bad
    input exits 2. By default the conservative end of each 95 % interval is compared (the
    upper bound for --max, the lower bound for --min); --use estimate compares point
    estimates.

    Metrics are named SECTION.FIGURE (privacy.flagged_groups,
    fairness.eo_gap, privacy.lira.auc). A name without its section is
    accepted only when exactly one section of the result holds it; a name
    that several hold (flagged_groups) is an error listing the full names.
    The privacy section's auc, advantage and tpr@FPR are the worst over its
    attacks (lira.auc picks one). Limits must be finite numbers.
    """
    from assay._validation import check_option
    from assay.report.result import AuditResult

    check_option(use, "--use", ("upper", "estimate"))
    thresholds = [parse_threshold(t, "max") for t in max_ or []]
    thresholds += [parse_threshold(t, "min") for t in min_ or []]
    if not thresholds:
        raise InvalidParameterError("gate needs at least one --max or --min. Got none.")
    result = AuditResult.from_json(result_path)
    failed_sections = result.failed_sections()
    for section in failed_sections:
        typer.echo(f"FAIL the {section.name} section failed, so this result cannot pass a "
                   f"gate: {section.message}")
    if failed_sections:
        return EXIT_SECTION_FAILED
    outcomes = [check_threshold(result, t, use) for t in thresholds]
    failed = [reason for ok, reason in outcomes if not ok]
    for reason in failed:
        typer.echo(f"FAIL {reason}")
    if failed:
        return 1
    typer.echo(f"OK: {len(outcomes)} threshold(s) hold ({use}): "
               + "; ".join(reason for _, reason in outcomes))
    return 0


# --------------------------------------------------------------------------- demo


@app.command("demo")
def demo(
    out: Annotated[str | None, typer.Option(
        help=_OUT_HELP + " Default: assay-demo (assay-demo-release with --release: the "
        "release demo's tables, release-demo.json and report.html).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
    task: Annotated[str | None, typer.Option(
        help="classification (default): predict 'approved' (a loan decision); regression: "
             "predict 'premium' (a number) and run the regression audit.")] = None,
    release: Annotated[bool, typer.Option(
        "--release", help="Audit two synthetic releases of the table instead: noisy copies "
        "of the training rows and a DP one at a risk target; one report, a verdict each "
        "(no --task).")] = False,
) -> int:
    """The full audit on the bundled synthetic table with planted effects.

    With --release: the table split into a generator's training rows and a holdout, two
    releases made (noisy copies, DP marginals) and each audited with a verdict."""
    from assay._validation import check_option
    from assay.audit import AuditConfig, run_audit
    from assay.audit.config import TASKS
    from assay.data.synthetic import SYNTHETIC_REGRESSION_TARGET
    from assay.fairness.section import FairnessOptions

    if task is not None:
        check_option(task, "--task", TASKS)
    if release:
        if task is not None:
            raise InvalidParameterError(f"--release audits synthetic releases, not a model: "
                                        f"give it without --task. Got --task {task}.")
        # Its own folder: its report.html must not stand beside a model audit's result.json.
        return _release_demo(Path(out or "assay-demo-release"))
    task = task or "classification"
    out = out or "assay-demo"
    if task == "regression":  # the premium: larger errors for women, memorised Isle records
        rows = DEMO_REGRESSION_ROWS
        cfg = AuditConfig(data="synthetic", target=SYNTHETIC_REGRESSION_TARGET,
                          task="regression", n_rows=rows, models=DEMO_MODELS, out=out)
    else:
        rows = DEMO_ROWS
        cfg = AuditConfig(data="synthetic", n_rows=rows, models=DEMO_MODELS, out=out,
                          sections={"fairness": FairnessOptions(n_rounds=DEMO_ROUNDS)})
    what = f"the {cfg.target} target of " if task == "regression" else ""
    typer.echo(f"auditing {what}the synthetic table ({rows} rows, {DEMO_MODELS} models)")
    started = time.perf_counter()
    result = run_audit(cfg, progress=not quiet)
    code = _print_summary(result)
    _echo_outputs(Path(out), time.perf_counter() - started)
    typer.echo(f"open it: file://{(Path(out) / 'report.html').resolve()}")
    return code


def _release_demo(out: Path) -> int:
    """`assay demo --release`: both releases audited, a verdict each."""
    from assay.cli.release_demo import (
        RELEASE_DEMO_RISK,
        RELEASE_DEMO_ROWS,
        run_release_demo,
    )

    typer.echo(f"auditing two synthetic releases of the synthetic table ({RELEASE_DEMO_ROWS} "
               f"rows: half the generator's training rows, half its holdout): noisy copies, "
               f"and DP marginals at {RELEASE_DEMO_RISK}")
    verdicts, seconds = run_release_demo(out)
    for v in verdicts:
        f = v.figures
        typer.echo(f"{v.name} release: {'PASS' if v.passed else 'FAIL'} (membership AUC "
                   f"{f['membership_auc']['value']:.3f} [{f['membership_auc']['ci_low']:.3f}, "
                   f"{f['membership_auc']['ci_high']:.3f}]; risks: singling out "
                   f"{f['singling_out']['value']:.2f}, linkability "
                   f"{f['linkability']['value']:.2f}, inference {f['inference']['value']:.2f}; "
                   f"exact copies {100 * v.audit.membership.dcr.exact_real:.1f} %)")
    typer.echo(f"tables: {out}/training.csv, holdout.csv, leaky.csv, dp.csv (rerun one: assay "
               f"synth {out}/training.csv {out}/leaky.csv --holdout {out}/holdout.csv)")
    typer.echo(f"result: {out / 'release-demo.json'}")
    typer.echo(f"report: {out / 'report.html'}")
    typer.echo(f"done in {seconds:.1f} s")
    typer.echo(f"open it: file://{(out / 'report.html').resolve()}")
    return 0
