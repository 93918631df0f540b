"""`assay train-dp DATA --risk ...`: DP-SGD at the noise that meets an attack-risk target.

Light to import: numpy, torch, dp_accounting and the privacy modules are imported inside
the command, after every option has been checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from assay._validation import check_option, check_scalar
from assay.audit.outputs import RunLayout, begin_run
from assay.cli import app
from assay.cli.options import DataHome, check_json_path, load_dataset

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
        "--target", help="Label column (required for a file).")] = None,
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
        "--json", help="Write the figures as JSON to this file.")] = None,
    audit: Annotated[bool, typer.Option(
        "--audit", help="Also train a DP population at the same settings, attack it "
        "(LiRA, RMIA), check the ROC against the guarantee, and run a one-run audit.")] = False,
    models: Annotated[int, typer.Option(
        "--models", help="Models of the audit population (even, at least 6).")] = 16,
    canaries: Annotated[int, typer.Option(
        "--canaries", help="Canaries of the one-run audit (0: none).")] = 500,
    seed: Annotated[int, typer.Option("--seed", help="Seed of split, models and audit.")] = 0,
    data_home: DataHome = None,
) -> None:
    """Calibrate DP-SGD noise to a risk target for the real sample rate and steps, train,
    report accuracy and the guarantee, export the model (no pickle)."""
    from assay._validation import InvalidParameterError

    # Every option is checked before anything is loaded, calibrated or trained; the
    # outputs first, so that even a run failing on an option leaves no earlier model.
    check_json_path(json_path)
    begin_run(out, "--out", OUT_LAYOUT)
    check_option(learner, "--learner", _LEARNERS)
    check_scalar(max_grad_norm, "--max-grad-norm", low=0, low_open=True)
    check_scalar(epochs, "--epochs", low=0, low_open=True, high=10_000)
    check_scalar(batch_size, "--batch-size", kind=int, low=1)
    check_scalar(test_size, "--test-size", low=0, high=1, low_open=True, high_open=True)
    check_scalar(delta, "--delta", low=0, high=1, low_open=True, high_open=True)
    check_scalar(seed, "--seed", kind=int, low=0)
    if lr is not None:
        check_scalar(lr, "--lr", low=0, low_open=True)
    if audit:
        check_scalar(models, "--models", kind=int, low=6)
        if models % 2:
            raise InvalidParameterError(f"--models must be an even integer in [6, inf) "
                                        f"(complementary pairs). Got {models}.")
        check_scalar(canaries, "--canaries", kind=int, low=0)
        if 0 < canaries < 10:
            raise InvalidParameterError(f"--canaries must be 0 or at least 10. Got {canaries}.")

    from assay.privacy.training.train import parse_risk, split_rows

    goal = parse_risk(risk, delta)
    dataset = load_dataset(data, target, [], data_home)
    if audit:
        from assay.engine import check_population_size

        check_population_size(models, dataset.n_rows, dataset.n_classes,
                              name="--models", spill=False)
    n_train = int(split_rows(dataset.n_rows, test_size, seed).sum())
    if batch_size > n_train:
        raise InvalidParameterError(
            f"--batch-size must be at most the {n_train} training rows of the "
            f"{dataset.n_rows}-row table. Got {batch_size}.")

    from rich.console import Console

    from assay.privacy.training.train import train_dp as fit

    console = Console(highlight=False)
    params = {} if lr is None else {"lr": lr}
    result = fit(dataset, goal, learner=learner, epochs=epochs, batch_size=batch_size,
                 max_grad_norm=max_grad_norm, test_size=test_size, seed=seed, delta=delta,
                 learner_params=params)
    weights, meta = result.model.save(out)
    payload = {"data": dataset.name, "target": goal.params(), "risk": risk,
               "noise_multiplier": result.noise_multiplier, "sample_rate": result.sample_rate,
               "steps": result.steps, "accuracy": result.accuracy,
               "train_accuracy": result.train_accuracy, "guarantee": result.guarantee,
               "achieved": float(result.calibration.achieved), "n_train": result.n_train,
               "n_test": result.n_test, "learner": result.settings["learner"],
               "epochs": epochs, "batch_size": batch_size, "max_grad_norm": max_grad_norm,
               "export": {"format": "npz weights + JSON config (no pickle)",
                          "weights": str(weights), "config": str(meta)}}
    console.print(f"{dataset.name}: σ = {result.noise_multiplier:.4g} meets "
                  f"{goal.describe()} at q = {result.sample_rate:.4g}, T = {result.steps} "
                  f"(achieved {result.calibration.achieved:.4g}); test accuracy "
                  f"{result.accuracy:.4f}; model in {out}", highlight=False)
    if audit:
        from assay.privacy.training.run import audit_training

        report = audit_training(dataset, result, models=models, canaries=canaries, seed=seed,
                                delta=delta)
        payload["empirical"] = report
        check = report["check"]
        console.print(f"audit ({models} DP models, {report['attack'].upper()}): "
                      + ", ".join((f"TPR at FPR {f} = {e['value']:.4f} "
                                   f"[{e['ci_low']:.4f}, {e['ci_high']:.4f}]"
                                   if e["estimable"] else f"TPR at FPR {f} {e['reason']}")
                                  + f" (bound {result.guarantee['tpr_at_fpr'][f]:.4f})"
                                  for f, e in report["tpr_at_fpr"].items())
                      + ("; the ROC stays under the guarantee" if check["passed"] else
                         f"; the ROC EXCEEDS the guarantee at FPR {check['violations']}"),
                      highlight=False)
        if report.get("one_run"):
            one = report["one_run"]
            console.print(f"one-run audit ({one['n_canaries']} canaries): ε ≥ "
                          f"{one['epsilon_lower']:.3g} (guarantee: ε ≤ "
                          f"{result.guarantee['epsilon']:.3g} at δ = {delta:g})",
                          highlight=False)
    if json_path is not None:
        json_path.write_text(json.dumps(payload, indent=1, default=float))
