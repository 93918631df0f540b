"""`assay synth-dp REAL --holdout H --risk tpr@fpr=0.05@0.01 --out synth.csv`.

A DP marginal release at the smallest noise whose f-DP curve meets the risk target
(assay's noisy marginals, or smartnoise-synth's MST with --generator mst), audited like
any release (`assay synth`) with its utility beside it. Light to import: pandas and the
generator are imported inside the command, after every option and path has been checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from assay._validation import InvalidParameterError, check_output_file, check_scalar
from assay.cli import app, split_names
from assay.cli._synthetic import check_table, fmt, risk_table
from assay.cli.options import Protected, check_json_path


def parse_bounds(values: list[str] | None) -> dict[str, tuple[float, float]]:
    """``age=18:90,amount=0:20000`` (repeated and/or comma-separated) into bounds."""
    out: dict[str, tuple[float, float]] = {}
    for item in split_names(values):
        name, eq, rest = item.partition("=")
        lo, colon, hi = rest.partition(":")
        try:
            if not (eq and colon and name.strip()):
                raise ValueError
            out[name.strip()] = (float(lo), float(hi))
        except ValueError:
            raise InvalidParameterError(f"--bounds must look like COLUMN=LOW:HIGH, e.g. "
                                        f"age=18:90. Got {item!r}.") from None
    return out


@app.command("synth-dp")
def synth_dp(
    real: Annotated[Path, typer.Argument(
        metavar="REAL", help="The private rows to release (.csv/.parquet).")],
    holdout: Annotated[Path | None, typer.Option(
        "--holdout", help="Rows of the same population kept out of the release (the audit's "
        "control and the downstream model's test set).")] = None,
    risk: Annotated[str | None, typer.Option(
        "--risk", help="Risk target the release must meet, e.g. tpr@fpr=0.05@0.01 or "
        "advantage=0.1.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Where to write the synthetic table (.csv or .parquet).")] = None,
    bounds: Annotated[list[str] | None, typer.Option(
        "--bounds", help="Public bounds of every numeric column, e.g. age=18:90 (bin edges are "
        "never read from REAL).")] = None,
    bins: Annotated[int, typer.Option(
        "--bins", help="Equal-width bins per numeric column.")] = 10,
    target: Annotated[str | None, typer.Option(
        "--target", help="Column the downstream model predicts and, with the first protected "
        "column, the anchor every column is measured with (default: the last column).")
    ] = None,
    rows: Annotated[int | None, typer.Option(
        "--rows", help="Rows to generate (default: the noisy row count).")] = None,
    secret: Annotated[list[str] | None, typer.Option(
        "--secret", help="Column(s) whose inference the audit attacks (default: every column).")
    ] = None,
    protected: Protected = None,
    attacks: Annotated[int, typer.Option(
        "--attacks", help="Attacks of each kind on each side in the audit.")] = 500,
    json_path: Annotated[Path | None, typer.Option(
        "--json", help="Write the calibration, utility and audit as JSON to this file.")] = None,
    report: Annotated[Path | None, typer.Option(
        "--report", help="Write the release's page (calibration, audit, utility) to this "
        ".html file.")] = None,
    encoding: Annotated[str, typer.Option("--encoding", help="Text encoding of CSV files.")
    ] = "utf-8",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the noise, sampling and attacks.")
    ] = 0,
    generator: Annotated[str, typer.Option(
        "--generator", help="marginals (assay's noisy marginals) or mst (smartnoise-synth's "
        "MST at the budget assay calibrates; needs pip install 'assay[synth]').")
    ] = "marginals",
) -> None:
    """Generate a DP synthetic table at a risk target, then audit it.

    Noisy 1-way marginals and every column's marginal with the anchor (the first
    protected column and --target), Gaussian noise, the least whose f-DP curve meets --risk."""
    from assay.privacy.theory.calibrate import parse_target

    # Every option and path is checked before any table is read.
    if risk is None:
        raise InvalidParameterError("--risk must give the risk target the release must meet, "
                                    "e.g. tpr@fpr=0.05@0.01. Got none.")
    goal = parse_target(risk)
    if holdout is None:
        raise InvalidParameterError("--holdout must name rows kept out of the release (the "
                                    "audit's control). Got none.")
    if out is None:
        raise InvalidParameterError("--out must name the synthetic table to write (.csv or "
                                    ".parquet). Got none.")
    for path, name in ((real, "REAL"), (holdout, "--holdout")):
        check_table(path, name)
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise InvalidParameterError(f"--out must be a .csv or .parquet file. Got {out}.")
    check_output_file(out, "--out")
    check_json_path(json_path)
    if report is not None:
        if report.suffix.lower() not in (".html", ".htm"):
            raise InvalidParameterError(f"--report must be an .html file. Got {report}.")
        check_output_file(report, "--report")
    check_scalar(bins, "--bins", kind=int, low=1, high=10_000)
    check_scalar(attacks, "--attacks", kind=int, low=1)
    check_scalar(seed, "--seed", kind=int, low=0)
    if rows is not None:
        check_scalar(rows, "--rows", kind=int, low=2)
    box = parse_bounds(bounds)
    from assay.synth.dp import check_dp_generator

    check_dp_generator(generator)

    from rich.console import Console

    from assay.data.read import read_table
    from assay.report.result import json_clean
    from assay.synth.dp import check_domain
    from assay.synth.dp import synth_dp as run
    from assay.synth.run import SynthOptions, check_columns

    options = SynthOptions(secrets=tuple(split_names(secret)),
                           protected=tuple(split_names(protected)), n_attacks=attacks,
                           seed=seed)
    frame = read_table(real, encoding=encoding, what="REAL")
    control = read_table(holdout, encoding=encoding, what="HOLDOUT")
    check_columns(frame, frame, control, options)  # named columns exist before any work
    check_domain(frame, box, bins)
    label = str(frame.columns[-1]) if target is None else target
    if label not in set(map(str, frame.columns)):
        raise InvalidParameterError(f"--target must name a column of REAL. Got {label}.")
    console = Console()
    synth, result = run(frame, control, goal, bounds=box, bins=bins, label=label,
                        options=options, n_rows=rows, generator=generator)
    if out.suffix.lower() == ".parquet":
        synth.to_parquet(out, index=False)
    else:
        synth.to_csv(out, index=False)
    if result.mst is not None:
        c = result.mst
        budget = (f"Target {goal.describe()}: MST at ρ = {c.rho:.4g} (smartnoise handed "
                  f"ε = {c.epsilon:.4g}, δ = {c.delta:g}): Gaussian measurements μ = "
                  f"{c.gaussian_mu:.4g}, {c.n_selections} tree choices at ε = "
                  f"{c.selection_epsilon:.3g} each; together ε = {result.epsilon:.3g} at "
                  f"δ = 1e-5 by assay's accounting (risk: {result.achieved:.4g})")
    else:
        budget = (f"Target {goal.describe()}: {len(result.marginals)} noisy marginals, "
                  f"noise σ = {result.sigma:.4g} per count, so the release is μ-GDP with "
                  f"μ = {result.mu:.4g}, ε = {result.epsilon:.3g} at δ = 1e-5 (risk at that "
                  f"μ: {result.achieved:.4g})")
    console.print(budget + ".", highlight=False, markup=False)
    console.print(f"wrote {out} ({result.n_synth} rows from {result.n_real})", highlight=False)
    u = result.utility
    a = u["association"]
    console.print(f"Utility: marginal total variation mean {u['tvd_mean']:.3f}, worst "
                  f"{u['tvd_max']:.3f}; pairwise association differs by {a['mean_abs_diff']:.3f} "
                  f"on average, {a['max_abs_diff']:.3f} at worst ({' × '.join(a['worst_pair'])}).",
                  highlight=False, markup=False)
    d = u["downstream"]
    if d is not None and d.get("task") == "regression":  # a continuous target
        console.print(f"Downstream ({d['model']}, predicting {d['target']}, tested on the "
                      f"holdout): R² trained on the release {d['r2_synthetic']['value']:.3f}, "
                      f"on the real rows {d['r2_real']['value']:.3f}; MAE "
                      f"{d['mae_synthetic']['value']:.4g} and {d['mae_real']['value']:.4g} "
                      f"(the real mean: {d['mae_mean_baseline']:.4g}).",
                      highlight=False, markup=False)
    elif d is not None:
        console.print(f"Downstream ({d['model']}, predicting {d['target']}, tested on the "
                      f"holdout): trained on the release {d['accuracy_synthetic']:.3f}, on the "
                      f"real rows {d['accuracy_real']:.3f}, majority class "
                      f"{d['majority_baseline']:.3f}.", highlight=False, markup=False)
    console.print(risk_table(result.audit))
    m = result.audit.membership
    console.print(f"Membership ({m.attack}): AUC {fmt(m.auc)}.", highlight=False, markup=False)
    if json_path is not None:
        json_path.write_text(json.dumps(json_clean(result.to_dict()), indent=1, allow_nan=False))
        console.print(f"wrote {json_path}", highlight=False)
    if report is not None:
        from assay.report.result import write_text_atomic
        from assay.synth.report import ReleaseView, render_releases
        from assay.synth.run import summary_lines

        page = render_releases(
            [ReleaseView("release", out.name, result.audit, budget,
                         lines=summary_lines(result.audit), utility=result.utility)],
            title=f"assay synth-dp: {out.name}",
            heading=f"A DP release of {real.name} at {goal.describe()}, audited",
            meta=f"{result.n_real} private rows ({real.name}) released as {result.n_synth} "
                 f"synthetic rows ({out.name}, {result.generator}); {result.audit.n_holdout} "
                 f"holdout rows kept out ({holdout.name}, the audit's control)",
            seconds=float(sum(result.seconds.values())))
        console.print(f"wrote {write_text_atomic(report, page)}", highlight=False)
