"""`assay train-dp DATA --risk ...`: DP-SGD at the noise that meets an attack-risk target.

The DP section of ``assay audit`` with ``deploy = true`` (and ``deploy_audit`` for
``--audit``), run alone: one model trained on a seeded split and exported into --out.
Light to import: numpy, torch, dp_accounting and the privacy modules are imported inside
the command.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer

from assay._validation import check_option, check_scalar
from assay.audit.outputs import RunLayout, begin_run
from assay.cli import app
from assay.cli.options import (
    HELP,
    DataHome,
    check_json_path,
    load_dataset,
    named_by_flags,
    run_one_section,
    section_json,
    section_result,
)

_LEARNERS = ("logreg", "mlp")

#: What `--out` holds; an earlier run's files are moved into previous/ when a run starts.
OUT_LAYOUT = RunLayout(files=("model.npz", "model.json"))


@app.command("train-dp")
def train_dp(
    data: Annotated[str, typer.Argument(
        help="A .csv/.parquet file, or a public table name (adult, synthetic, ...).")],
    risk: Annotated[str, typer.Option(
        "--risk", help="Attack-risk target: tpr@fpr=TPR@FPR (e.g. tpr@fpr=0.05@0.01), "
        "advantage=A, or epsilon=E (at --delta).")],
    target: Annotated[str | None, typer.Option(
        "--target", help="Label column (required for a file); a continuous one trains DP "
        "linear regression (needs --target-bounds).")] = None,
    target_bounds: Annotated[str | None, typer.Option(
        "--target-bounds", help="Public bounds LO:HI of a continuous target (e.g. 0:20000): "
        "values are clipped into them; never read off the data, which would leak it.")] = None,
    epochs: Annotated[float, typer.Option("--epochs", help="Expected passes over the "
                                          "training rows (steps = ceil(epochs / q)).")] = 5.0,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", help="Expected batch size B (sample rate q = B / training rows).")] = 256,
    max_grad_norm: Annotated[float, typer.Option(
        "--max-grad-norm", help="Per-example gradient clipping norm C.")] = 1.0,
    learner: Annotated[str, typer.Option(
        "--learner", help="logreg or mlp (trained with DP-SGD).")] = "logreg",
    lr: Annotated[float | None, typer.Option("--lr", help="SGD learning rate.")] = None,
    test_size: Annotated[float, typer.Option(
        "--test-size", help="Share of rows held out for the accuracy.")] = 0.2,
    delta: Annotated[float, typer.Option(
        "--delta", help="δ of the ε reported beside the guarantee.")] = 1e-5,
    out: Annotated[Path, typer.Option(
        "--out", help="Folder for the exported model (model.npz + model.json); when a run "
        "starts, an earlier run's model there moves into previous/.")] = Path("dp-model"),
    json_path: Annotated[Path | None, typer.Option(
        "--json", help=HELP["section_json"].format(name="dp"))] = None,
    audit: Annotated[bool, typer.Option(
        "--audit", help="Also train a DP population at the same settings, attack it "
        "(LiRA, RMIA), check the ROC against the guarantee, and run a one-run audit.")] = False,
    models: Annotated[int, typer.Option(
        "--models", help="Models of the audit population (even, at least 6).")] = 16,
    canaries: Annotated[int | None, typer.Option(
        "--canaries", help="Canaries of the one-run audit (0: none; default 500, at most "
        "the table's rows).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of split, models and audit.")] = 0,
    data_home: DataHome = None,
) -> None:
    """Calibrate DP-SGD noise to a risk target for the real sample rate and steps,
    train, report accuracy and the guarantee, export the model (no pickle): the DP
    section of assay audit with deploy = true, run alone."""
    from assay.privacy.training.section import DPOptions

    # Outputs first, so that even a run failing on an option leaves no earlier model;
    # then every option is checked before anything is loaded, calibrated or trained.
    check_json_path(json_path)
    begin_run(out, "--out", OUT_LAYOUT)
    check_option(learner, "--learner", _LEARNERS)
    # --models and --canaries are the audit's: checked only with --audit, as before.
    defaults = DPOptions()
    with named_by_flags(_FLAGS):
        options = DPOptions(
            enabled=True, deploy=True, deploy_audit=audit, risk_target=risk, delta=delta,
            epochs=epochs, batch_size=batch_size, max_grad_norm=max_grad_norm, lr=lr,
            learner=learner, test_size=test_size, models=models if audit else defaults.models,
            canaries=canaries if audit else defaults.canaries, target_bounds=target_bounds)
    check_scalar(seed, "--seed", kind=int, low=0)
    # "auto": a continuous target is a regression (DP linear regression), classes as before.
    dataset = load_dataset(data, target, [], data_home, task="auto")
    from assay.audit import AuditConfig

    # A one-section audit: the DP section's deployed model, trained on its own split
    # (no population); its export goes into --out, the run's output folder.
    config = AuditConfig(data=data, target=dataset.target, protected=tuple(dataset.protected),
                         learner=learner, seed=seed, sections={"dp": options})
    result = run_one_section(config, "dp", dataset, None, progress=False, flags=_FLAGS,
                             out=out)
    payload = section_result(result, "dp").data
    from rich.console import Console

    console = Console(highlight=False)
    if getattr(payload, "task", None) == "regression":
        _print_regression(console, dataset.name, payload, out)
        _write_json(json_path, result)
        return
    console.print(f"{dataset.name}: σ = {payload.noise_multiplier:.4g} meets "
                  f"{payload.target_description} at q = {payload.sample_rate:.4g}, "
                  f"T = {payload.steps} (achieved {payload.achieved:.4g}); test accuracy "
                  f"{payload.accuracy:.4f}; model in {out}", highlight=False)
    report = payload.empirical
    if report is not None:
        check, bound = report["check"], payload.guarantee["tpr_at_fpr"]
        console.print(f"audit ({report['models']} DP models, {report['attack'].upper()}): "
                      + ", ".join((f"TPR at FPR {f} = {e['value']:.4f} "
                                   f"[{e['ci_low']:.4f}, {e['ci_high']:.4f}]"
                                   if e["estimable"] else f"TPR at FPR {f} {e['reason']}")
                                  + f" (bound {bound[f]:.4f})"
                                  for f, e in report["tpr_at_fpr"].items())
                      + ("; the ROC stays under the guarantee" if check["passed"] else
                         f"; the ROC EXCEEDS the guarantee at FPR {check['violations']}"),
                      highlight=False)
        if report.get("one_run"):
            one = report["one_run"]
            console.print(f"one-run audit ({one['n_canaries']} canaries): ε ≥ "
                          f"{one['epsilon_lower']:.3g} (guarantee: ε ≤ "
                          f"{payload.guarantee['epsilon']:.3g} at δ = {delta:g})",
                          highlight=False)
    _write_json(json_path, result)


def _write_json(json_path: Path | None, result) -> None:
    if json_path is not None:
        from assay.report.result import write_text_atomic

        write_text_atomic(json_path, json.dumps(section_json(result, "dp"), indent=1,
                                                default=float))


def _print_regression(console, name: str, payload, out: Path) -> None:
    """The DP linear regression's figures, and with --audit the attacks against the bound."""
    console.print(f"{name}: σ = {payload.noise_multiplier:.4g} meets "
                  f"{payload.target_description} at q = {payload.sample_rate:.4g}, "
                  f"T = {payload.steps} (achieved {payload.achieved:.4g}); held-out RMSE "
                  f"{payload.rmse:,.4g} (R² {payload.r2:.3f}); model in {out}", highlight=False)
    audit = payload.audit
    if audit is None:
        return
    top, bound = audit.attack(audit.strongest), payload.guarantee["tpr_at_fpr"]
    console.print(f"audit ({audit.models} DP models, {top.name.upper()} on residuals): "
                  + ", ".join((f"TPR at FPR {f:g} = {e.value:.4f} [{e.ci_low:.4f}, "
                               f"{e.ci_high:.4f}]" if math.isfinite(e.value) else
                               f"TPR at FPR {f:g} not estimable with {audit.n_nonmembers} "
                               f"non-members") + f" (bound {bound[f'{f:g}']:.4f})"
                              for f, e in top.tpr_at_fpr.items())
                  + ("; every ROC stays under the guarantee" if not audit.violations else
                     f"; a ROC EXCEEDS the guarantee at FPR {audit.violations}"),
                  highlight=False)
    one = audit.one_run
    if one is not None:
        console.print(f"one-run audit ({one.n_canaries} canaries): ε ≥ {one.epsilon_lower:.3g}"
                      f" (guarantee: ε ≤ {one.epsilon_accounted:.3g} at δ = {one.delta:g})"
                      + ("" if one.passed else ": EXCEEDED, the training is broken"),
                      highlight=False)


#: The DP section's options, named by this command's flags in its one-line errors.
_FLAGS = {"dp.risk_target": "--risk", "dp.delta": "--delta", "dp.epochs": "--epochs",
          "dp.batch_size": "--batch-size", "dp.max_grad_norm": "--max-grad-norm",
          "dp.lr": "--lr", "dp.learner": "--learner", "dp.test_size": "--test-size",
          "dp.models": "--models", "dp.canaries": "--canaries",
          "dp.target_bounds": "--target-bounds"}
