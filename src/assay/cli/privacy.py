"""`assay risk ...` and `assay calibrate ...`: f-DP risks of a mechanism, and noise calibration.

The privacy modules (dp_accounting, scipy, numpy) are imported inside the commands, so
registering them costs nothing at start-up.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from assay._validation import InvalidParameterError, check_distinct, check_scalar
from assay.cli import app

if TYPE_CHECKING:
    from assay.privacy.theory.accounting import TradeOff

risk_app = typer.Typer(help="Attack risks implied by a DP mechanism (f-DP view).",
                       no_args_is_help=True)
calibrate_app = typer.Typer(help="Smallest noise that meets an attack-risk target.",
                            no_args_is_help=True)
app.add_typer(risk_app, name="risk")
app.add_typer(calibrate_app, name="calibrate")

_DEFAULT_FPRS = (0.001, 0.01, 0.1)
# accounting.DEFAULT_DISCRETIZATION, spelled out so that --help needs no import
# (tests/privacy/test_cli_privacy.py checks they agree).
_DEFAULT_DISCRETIZATION = 1e-4

# Shared options (typer reads the Annotated metadata).
FprOpt = Annotated[list[str] | None, typer.Option(
    "--fpr", help="Attacker FPR(s) for TPR bounds; repeat or comma-separate.")]
DeltaOpt = Annotated[float | None, typer.Option(
    "--delta", help="δ at which to report ε (and for an epsilon target).")]
PopulationOpt = Annotated[int | None, typer.Option(
    "--population", help="Candidates for re-identification (baseline 1/n).")]
PriorOpt = Annotated[list[str] | None, typer.Option(
    "--prior", help="Attribute prior: probabilities (repeat/comma) or just the largest.")]
BaselineOpt = Annotated[float | None, typer.Option(
    "--baseline", help="Baseline success of a reconstruction attack.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON to stdout.")]
DiscOpt = Annotated[float, typer.Option(
    "--discretization", help="PLD loss-lattice step (coarser: faster, more pessimistic).")]


def _numbers(values: list[str] | None, name: str) -> list[float]:
    """Parse repeated and/or comma-separated numbers."""
    out: list[float] = []
    for chunk in values or []:
        for part in str(chunk).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                out.append(float(part))
            except ValueError:
                raise InvalidParameterError(f"{name} must be numbers. Got {part!r}.") from None
    return out


def _prior(values: list[str] | None):
    probs = _numbers(values, "prior")
    if not probs:
        return None
    return probs[0] if len(probs) == 1 else probs


def _report(curve: TradeOff, inputs: dict, fprs: list[float] | None,
            delta: float | None, population: int | None, prior, baseline: float | None) -> dict:
    from assay.privacy.theory import risk as risk_measures
    fprs = fprs if fprs else list(_DEFAULT_FPRS)
    # FPR 0 or 1 bounds nothing (TPR 1 at FPR 1 for any mechanism); a repeat adds nothing.
    for f in check_distinct(fprs, "fpr"):
        check_scalar(f, "fpr", low=0, high=1, low_open=True, high_open=True)
    out = dict(inputs)
    out["advantage"] = risk_measures.advantage(curve)
    out["tpr_at_fpr"] = {f"{f:g}": float(curve.tpr(f)) for f in fprs}
    if delta is not None:
        out["delta"] = check_scalar(delta, "delta", low=0, high=1, low_open=True, high_open=True)
        out["epsilon"] = risk_measures.epsilon_at_delta(curve, delta)
    if population is not None:
        out["population"] = population
        out["reidentification"] = risk_measures.reidentification_risk(curve, population)
    if prior is not None:
        out["prior"] = prior
        out["attribute_inference"] = risk_measures.attribute_inference_risk(curve, prior)
    if baseline is not None:
        out["baseline"] = baseline
        out["reconstruction"] = risk_measures.reconstruction_risk(curve, baseline)
    return out


def _emit(result: dict, as_json: bool, title: str) -> None:
    if as_json:
        from assay.report.result import json_clean  # no NaN in JSON: an unevaluated bound is null

        typer.echo(json.dumps(json_clean(result), indent=2, default=_jsonable, allow_nan=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=True)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key, value in result.items():
        if isinstance(value, dict):
            for sub, v in value.items():
                table.add_row(f"{key} {sub}", _fmt(v))
        else:
            table.add_row(key, _fmt(value))
    Console().print(table)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


@risk_app.command("dpsgd")
def risk_dpsgd(
    sample_rate: Annotated[float, typer.Option("--sample-rate", help="Poisson rate q.")],
    steps: Annotated[int, typer.Option("--steps", help="Number of steps T.")],
    noise_multiplier: Annotated[float, typer.Option("--noise-multiplier", help="σ.")],
    fpr: FprOpt = None, delta: DeltaOpt = None, population: PopulationOpt = None,
    prior: PriorOpt = None, baseline: BaselineOpt = None,
    discretization: DiscOpt = _DEFAULT_DISCRETIZATION, json_: JsonOpt = False,
) -> None:
    """Risks of DP-SGD with Poisson subsampling (PLD accounting, pessimistic)."""
    from assay.privacy.theory import accounting
    curve = accounting.dpsgd(sample_rate, steps, noise_multiplier, discretization=discretization)
    inputs = {"mechanism": "dpsgd", "sample_rate": sample_rate, "steps": steps,
              "noise_multiplier": noise_multiplier, "discretization": discretization}
    out = _report(curve, inputs, _numbers(fpr, "fpr"), delta, population, _prior(prior), baseline)
    _emit(out, json_, "DP-SGD attack-risk bounds")


@risk_app.command("gaussian")
def risk_gaussian(
    mu: Annotated[float, typer.Option("--mu", help="μ of μ-GDP.")],
    fpr: FprOpt = None, delta: DeltaOpt = None, population: PopulationOpt = None,
    prior: PriorOpt = None, baseline: BaselineOpt = None, json_: JsonOpt = False,
) -> None:
    """Risks of a μ-GDP mechanism (closed form)."""
    from assay.privacy.theory import accounting
    curve = accounting.gaussian_dp(mu)
    out = _report(curve, {"mechanism": "gaussian", "mu": mu}, _numbers(fpr, "fpr"), delta,
                  population, _prior(prior), baseline)
    _emit(out, json_, "μ-GDP attack-risk bounds")


@risk_app.command("rdp")
def risk_rdp(
    orders: Annotated[list[str], typer.Option("--orders", help="Rényi orders (> 1).")],
    rdp: Annotated[list[str], typer.Option("--rdp", help="RDP ε at each order.")],
    fpr: FprOpt = None, delta: DeltaOpt = None, population: PopulationOpt = None,
    prior: PriorOpt = None, baseline: BaselineOpt = None, json_: JsonOpt = False,
) -> None:
    """Risks implied by an RDP profile (optimal RDP → f-DP conversion)."""
    from assay.privacy.theory import accounting
    o, e = check_distinct(_numbers(orders, "orders"), "orders"), _numbers(rdp, "rdp")
    curve = accounting.rdp_profile(o, e)
    out = _report(curve, {"mechanism": "rdp", "orders": o, "rdp": e}, _numbers(fpr, "fpr"),
                  delta, population, _prior(prior), baseline)
    _emit(out, json_, "RDP attack-risk bounds")


@calibrate_app.command("dpsgd")
def calibrate_dpsgd(
    sample_rate: Annotated[float, typer.Option("--sample-rate", help="Poisson rate q.")],
    steps: Annotated[int, typer.Option("--steps", help="Number of steps T.")],
    target: Annotated[str, typer.Option(
        "--target", help="advantage=A | tpr@fpr=TPR@FPR | epsilon=E (with --delta) | "
        "reidentification=S (--population) | attribute-inference=S (--prior) | "
        "reconstruction=S (--baseline)")],
    delta: DeltaOpt = None, population: PopulationOpt = None, prior: PriorOpt = None,
    baseline: BaselineOpt = None, fpr: FprOpt = None,
    discretization: Annotated[float | None, typer.Option(
        "--discretization", help="PLD lattice step of the final check (default: chosen so "
        "that the noise is within 0.1 % of the smallest safe one).")] = None,
    json_: JsonOpt = False,
) -> None:
    """Smallest DP-SGD noise multiplier meeting a risk target (always on the safe side)."""
    from assay.privacy.theory import accounting, calibrate

    goal = calibrate.parse_target(target, delta=delta, population=population,
                                  prior=_prior(prior), baseline=baseline)
    # Validate the mechanism before the (longer) search.
    accounting._check_dpsgd(sample_rate, steps, 1.0)
    result = calibrate.calibrate_dpsgd(goal, sample_rate=sample_rate, steps=steps,
                                       discretization=discretization)
    lattice = result.discretization or discretization or 1e-3  # the lattice of the final check
    curve = accounting.PLDTradeOff(
        accounting.dpsgd_pld(sample_rate, steps, result.value, lattice), lattice)
    out = result.to_dict()
    out.pop("target")
    out = {"target": target, **out}
    report = _report(curve, {}, _numbers(fpr, "fpr"), delta, population, _prior(prior), baseline)
    out.update(report)
    _emit(out, json_, f"DP-SGD calibrated to {goal.describe()}")
