"""`assay synth REAL SYNTH --holdout HOLDOUT`: what a synthetic release reveals about its rows.

Light to import: pandas and the attacks are imported inside the command, after every
option and path has been checked.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from assay._validation import (
    InvalidParameterError,
    check_output_folder,
    check_scalar,
)
from assay.cli import app, split_names
from assay.cli._synthetic import check_table, fmt, risk_table, shadow_progress
from assay.cli.options import Progress, Protected, check_json_path


def _link_columns(text: str | None) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """``a,b|c,d`` into the attacker's two parts."""
    if text is None:
        return None
    parts = [tuple(split_names([p])) for p in str(text).split("|")]
    if len(parts) != 2 or not all(parts):
        raise InvalidParameterError(f"--link-columns must be two comma-separated lists split "
                                    f"by '|', e.g. age,sex|zip,job. Got {text!r}.")
    overlap = set(parts[0]) & set(parts[1])
    if overlap:
        raise InvalidParameterError(f"--link-columns must split the columns in two parts "
                                    f"without overlap. Got {', '.join(sorted(overlap))} in both.")
    return parts[0], parts[1]


@app.command("synth")
def synth(
    real: Annotated[Path, typer.Argument(
        metavar="REAL", help="The generator's training rows (.csv/.parquet).")],
    synthetic: Annotated[Path, typer.Argument(
        metavar="SYNTH", help="The synthetic release (.csv/.parquet).")],
    holdout: Annotated[Path | None, typer.Option(
        "--holdout", help="Rows of the same population the generator never saw (the control).")
    ] = None,
    secret: Annotated[list[str] | None, typer.Option(
        "--secret", help="Column(s) whose inference is attacked (default: every column).")
    ] = None,
    protected: Protected = None,
    attacks: Annotated[int, typer.Option(
        "--attacks", help="Attacks of each kind on each side (anonymeter's 500).")] = 500,
    n_cols: Annotated[int, typer.Option(
        "--n-cols", help="Columns per multivariate singling-out predicate.")] = 3,
    link_columns: Annotated[str | None, typer.Option(
        "--link-columns", help="The linkability attacker's two parts, e.g. age,sex|zip,job "
        "(default: the columns' two halves).")] = None,
    neighbors: Annotated[int, typer.Option(
        "--neighbors", help="Nearest synthetic rows the two parts may share (linkability).")
    ] = 1,
    min_support: Annotated[int, typer.Option(
        "--min-support", help="Targets a group needs for figures.")] = 30,
    min_gap: Annotated[float, typer.Option(
        "--min-gap", help="Smallest excess of a group's risk over the overall that is flagged.")
    ] = 0.05,
    json_path: Annotated[Path | None, typer.Option(
        "--json", help="Write the full result as JSON to this file.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Folder for synth.json (the same result) and report.html.")] = None,
    encoding: Annotated[str, typer.Option("--encoding", help="Text encoding of CSV files.")
    ] = "utf-8",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the attacks' draws.")] = 0,
    generator: Annotated[str | None, typer.Option(
        "--generator", help="The release's generator, when known: marginals, "
        "dp-marginals:RISK (synth-dp's at --risk RISK), copula (the copulas package's "
        "Gaussian copula) or mst:RISK (synth-dp --generator mst's); the last two need pip "
        "install 'assay[synth]'. Adds the shadow-generator membership attack.")] = None,
    shadow_tables: Annotated[int, typer.Option(
        "--shadow-tables", help="Shadow tables the --generator is refitted on, even "
        "(complementary pairs: each target is in half of them).")] = 16,
    jobs: Annotated[int | None, typer.Option(
        "--jobs", help="Shadow fits at once (default: one per core).")] = None,
    progress: Progress = True,
) -> None:
    """Privacy of a synthetic release: singling out, linkability, inference, membership.

    Each attack on the training rows is compared with the same attack on rows the
    generator never saw (the control), overall and per protected group."""
    started = time.perf_counter()
    # Every option and path is checked before any table is read.
    if holdout is None:
        raise InvalidParameterError("--holdout must name rows the generator never saw (the "
                                    "control every risk is measured against). Got none.")
    for path, name in ((real, "REAL"), (synthetic, "SYNTH"), (holdout, "--holdout")):
        check_table(path, name)
    check_scalar(attacks, "--attacks", kind=int, low=1)
    check_scalar(n_cols, "--n-cols", kind=int, low=1)
    check_scalar(neighbors, "--neighbors", kind=int, low=1)
    check_scalar(min_support, "--min-support", kind=int, low=1)
    check_scalar(min_gap, "--min-gap", low=0, high=1)
    check_scalar(seed, "--seed", kind=int, low=0)
    check_scalar(shadow_tables, "--shadow-tables", kind=int, low=2)
    if shadow_tables % 2:
        raise InvalidParameterError(f"--shadow-tables must be even (complementary pairs). "
                                    f"Got {shadow_tables}.")
    if jobs is not None:
        check_scalar(jobs, "--jobs", kind=int, low=1)
    check_json_path(json_path)
    if out is not None:
        check_output_folder(out, "--out")
    parts = _link_columns(link_columns)
    if generator is not None:
        from assay.synth.shadow import check_generator

        check_generator(generator)

    from rich.console import Console

    from assay.data.read import read_table
    from assay.report.result import json_clean
    from assay.synth.run import SynthOptions, audit_release, check_columns

    options = SynthOptions(secrets=tuple(split_names(secret)),
                           protected=tuple(split_names(protected)), n_attacks=attacks,
                           n_cols=n_cols, link_columns=parts, n_neighbors=neighbors,
                           min_support=min_support, min_gap=min_gap, seed=seed,
                           generator=generator, n_shadow=shadow_tables, n_jobs=jobs)
    frames = [read_table(p, encoding=encoding, what=w)
              for p, w in ((real, "REAL"), (synthetic, "SYNTH"), (holdout, "HOLDOUT"))]
    real_rows, synth_rows, holdout_rows = frames
    # Named columns exist before any attack runs.
    check_columns(real_rows, synth_rows, holdout_rows, options)
    console = Console()
    with shadow_progress(progress and generator is not None, generator) as on_fit:
        payload = audit_release(real_rows, synth_rows, holdout_rows, options,
                                on_shadow_fit=on_fit)
    console.print(f"{real.name}: {payload.n_real} training rows, {synthetic.name}: "
                  f"{payload.n_synth} synthetic rows, {holdout.name}: {payload.n_holdout} "
                  f"holdout rows, {len(payload.columns)} columns", highlight=False)
    console.print(risk_table(payload))
    m = payload.membership
    tpr = ", ".join(f"TPR at {a:g} FPR {fmt(e)}" for a, e in m.tpr_at_fpr.items())
    console.print(f"Membership ({m.attack}): AUC {fmt(m.auc)}; {tpr}.", highlight=False,
                  markup=False)
    if m.shadow is not None:
        s = m.shadow
        tpr = ", ".join(f"TPR at {a:g} FPR {fmt(e)}" for a, e in s.tpr_at_fpr.items())
        console.print(f"Membership ({s.attack}; generator {s.generator}): AUC {fmt(s.auc)}; "
                      f"{tpr}.", highlight=False, markup=False)
    console.print(f"Distance to closest synthetic record (median): training rows "
                  f"{m.dcr.median_real:.3g}, holdout rows {m.dcr.median_holdout:.3g}; exact "
                  f"copies of {100 * m.dcr.exact_real:.1f} % of training rows. Note: {m.dcr.note}.",
                  highlight=False, markup=False)
    flagged = payload.flagged_groups()
    console.print("Flagged groups: " + ("; ".join(flagged) if flagged else "none"),
                  highlight=False, markup=False)
    text = json.dumps(json_clean(payload.to_dict()), indent=1, allow_nan=False)
    targets = ([json_path] if json_path is not None else []) + (
        [Path(out) / "synth.json"] if out is not None else [])
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        console.print(f"wrote {target}", highlight=False)
    if out is not None:
        from assay.report.result import write_text_atomic
        from assay.synth.report import ReleaseView, render_releases
        from assay.synth.run import summary_lines

        page = render_releases(
            [ReleaseView("release", synthetic.name, payload, lines=summary_lines(payload))],
            title=f"assay synth: {synthetic.name}",
            heading=f"What the synthetic release {synthetic.name} reveals about its rows",
            meta=f"{payload.n_real} training rows ({real.name}), {payload.n_synth} synthetic "
                 f"rows, {payload.n_holdout} holdout rows the generator never saw "
                 f"({holdout.name}, the control) · {len(payload.columns)} columns",
            seconds=time.perf_counter() - started)
        report = write_text_atomic(Path(out) / "report.html", page)
        console.print(f"wrote {report}", highlight=False)
