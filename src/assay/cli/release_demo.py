"""`assay demo --release`: the synthetic-release audit on the bundled table, no data needed.

The bundled loan table (`assay.data.synthetic`) is split into the generator's training rows
and a holdout; two releases are made from the training rows and audited like any release
(`assay synth`): a leaky one, every training row copied with a nudge that no
distance-to-closest-record check sees as a copy, and a DP one from assay's noisy marginals
at a risk target (`assay synth-dp`). One report puts both side by side with a verdict
each. Light to import: pandas and the attacks are imported inside the functions.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from assay.audit.outputs import RunLayout

__all__ = ["RELEASE_LIMITS", "ReleaseVerdict", "run_release_demo"]

#: 2,000 training rows and 2,000 holdout rows: the membership AUC's 95 % interval is about
#: ±0.02 wide, and the whole demo takes seconds on 2 cores.
RELEASE_DEMO_ROWS = 4000
#: The table without ``code``, ``branch`` and ``agent``: the Isle's rare levels there are
#: per-record identifiers, which a release drops (and a DP generator would read its
#: categorical domain, those identifiers included, from the private rows).
RELEASE_DEMO_COLUMNS = ("age", "income", "tenure", "debt_ratio", "credit_score", "region",
                        "sex", "approved")
#: Public bounds of the numeric columns (the generator's documented ranges, never read
#: from the rows; incomes above 300 are clipped into the top bin).
RELEASE_DEMO_BOUNDS = {"age": (18.0, 90.0), "income": (0.0, 300.0), "tenure": (0.0, 40.0),
                       "debt_ratio": (0.0, 1.0), "credit_score": (-4.0, 4.0),
                       "approved": (0.0, 1.0)}
#: The DP release's risk target (`assay synth-dp --risk`).
RELEASE_DEMO_RISK = "tpr@fpr=0.05@0.01"
#: Attacks of each kind: twice anonymeter's 500 keeps the risks' intervals narrow enough
#: for the verdict to be about the release, not about the sample.
RELEASE_DEMO_ATTACKS = 1000
#: A release passes when the upper end of every figure's 95 % interval stays at its limit
#: (the conservative end, as `assay gate` compares by default).
RELEASE_LIMITS = {"singling_out": 0.2, "linkability": 0.2, "linkability_with_ties": 0.2,
                  "inference": 0.2, "membership_auc": 0.6}
#: The figures' names in the verdict's lines.
FIGURE_LABELS = {"singling_out": "singling-out risk", "linkability": "linkability risk",
                 "linkability_with_ties": "linkability risk, every tied row counted",
                 "inference": "inference risk (most exposed column)",
                 "membership_auc": "membership attack AUC"}
#: The credit score's nudge on the leaky copies: 0.001 to 0.01 (the column's spread is 1).
LEAK_NUDGE = (0.001, 0.01)

RELEASE_DEMO_LAYOUT = RunLayout(files=("report.html", "release-demo.json", "training.csv",
                                       "holdout.csv", "leaky.csv", "dp.csv"))


@dataclass
class ReleaseVerdict:
    """One release of the demo: how it was made, its audit, utility and verdict."""

    name: str
    description: str
    audit: Any  # SynthPayload
    utility: dict[str, Any]
    passed: bool
    reasons: list[str]
    calibration: dict[str, Any] | None = None
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "verdict": "pass" if self.passed else "fail", "reasons": self.reasons,
                "limits": dict(RELEASE_LIMITS), "figures": self.figures,
                "calibration": self.calibration, "utility": self.utility,
                "audit": self.audit.to_dict()}


def split_rows(seed: int = 0):
    """The bundled table's columns of `RELEASE_DEMO_COLUMNS`, split in two random halves:
    the generator's training rows and the holdout it never sees."""
    import numpy as np
    import pandas as pd

    from assay.data.synthetic import make_synthetic

    table = cast(pd.DataFrame, make_synthetic(n_rows=RELEASE_DEMO_ROWS, random_state=seed))
    table = table[list(RELEASE_DEMO_COLUMNS)]
    order = np.random.default_rng(seed).permutation(len(table))
    half = len(table) // 2
    return (table.iloc[order[:half]].reset_index(drop=True),
            table.iloc[order[half:]].reset_index(drop=True))


def leaky_release(training, seed: int = 0):
    """Every training row, its credit score nudged up or down by `LEAK_NUDGE`: no row is an
    exact copy, so a distance-to-closest-record check counts no copies."""
    import numpy as np

    rng = np.random.default_rng(seed + 1)
    n = len(training)
    release = training.copy()
    nudge = rng.choice([-1.0, 1.0], n) * rng.uniform(*LEAK_NUDGE, n)
    release["credit_score"] = (release["credit_score"] + nudge).round(4)
    return release


def verdict_figures(payload) -> dict[str, Any]:
    """The verdict's figures of an audit (`SynthPayload`), each ``{value, ci_low, ci_high}``."""
    data = payload.to_dict()
    out = {key: data[key]["risk"] for key in ("singling_out", "linkability", "inference")}
    out["linkability_with_ties"] = data["linkability"]["with_ties"]["risk"]
    out["membership_auc"] = data["membership"]["auc"]
    return out


def verdict(values: dict[str, Any]) -> tuple[bool, list[str]]:
    """Pass when every figure's upper 95 % bound is at most its `RELEASE_LIMITS` limit."""
    reasons, passed = [], True
    for key, limit in RELEASE_LIMITS.items():
        high = values[key]["ci_high"]
        if high is None or high != high:  # an unmeasurable figure passes nothing
            passed = False
            reasons.append(f"{FIGURE_LABELS[key]}: not measurable, so no pass")
            continue
        ok = high <= limit
        passed = passed and ok
        reasons.append(f"{FIGURE_LABELS[key]}: upper 95 % bound {high:.3f} "
                       f"{'≤' if ok else '>'} {limit:g}")
    return passed, reasons


def run_release_demo(out: Path, seed: int = 0) -> tuple[list[ReleaseVerdict], float]:
    """Split, release twice, audit both; write the tables, the JSON and the report.

    Returns
    -------
    (list of ReleaseVerdict, float)
        The leaky release's verdict, then the DP release's; and the seconds taken.
    """
    from assay.audit.outputs import begin_run
    from assay.data.synthetic import SYNTHETIC_PROTECTED, SYNTHETIC_TARGET
    from assay.privacy.theory.calibrate import parse_target
    from assay.report.result import json_clean, write_text_atomic
    from assay.synth.dp import REPORT_DELTA, check_domain, synth_dp, utility
    from assay.synth.run import SynthOptions, audit_release

    started = time.perf_counter()
    folder = begin_run(out, "--out", RELEASE_DEMO_LAYOUT)
    training, holdout = split_rows(seed)
    options = SynthOptions(protected=SYNTHETIC_PROTECTED, n_attacks=RELEASE_DEMO_ATTACKS,
                           seed=seed)
    leaky = leaky_release(training, seed)
    domain = check_domain(training, RELEASE_DEMO_BOUNDS)
    leaky_audit = audit_release(training, leaky, holdout, options)
    leaky_utility = utility(training, leaky, holdout, domain, SYNTHETIC_TARGET, seed)
    target = parse_target(RELEASE_DEMO_RISK)
    dp, result = synth_dp(training, holdout, target, bounds=RELEASE_DEMO_BOUNDS,
                          label=SYNTHETIC_TARGET, options=options)
    calibration = {"target": result.target, "sigma": result.sigma, "mu": result.mu,
                   "epsilon": result.epsilon, "delta": REPORT_DELTA, "achieved": result.achieved,
                   "n_marginals": len(result.marginals), "anchor": result.anchor}
    verdicts = []
    for name, description, payload, util, calib in (
            ("leaky", f"every training row copied, its credit score nudged by "
                      f"{LEAK_NUDGE[0]:g} to {LEAK_NUDGE[1]:g}", leaky_audit, leaky_utility,
             None),
            ("dp", f"assay's DP noisy marginals at {target.describe()} (assay synth-dp)",
             result.audit, result.utility, calibration)):
        values = verdict_figures(payload)
        passed, reasons = verdict(values)
        verdicts.append(ReleaseVerdict(name, description, payload, util, passed, reasons,
                                       calib, values))
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in (("training", training), ("holdout", holdout), ("leaky", leaky),
                        ("dp", dp)):
        frame.to_csv(folder / f"{name}.csv", index=False)
    seconds = time.perf_counter() - started
    record = {"demo": "release", "rows": RELEASE_DEMO_ROWS, "seed": seed,
              "columns": list(RELEASE_DEMO_COLUMNS),
              "bounds": {k: list(v) for k, v in RELEASE_DEMO_BOUNDS.items()},
              "risk_target": RELEASE_DEMO_RISK, "n_attacks": RELEASE_DEMO_ATTACKS,
              "seconds": round(seconds, 3),
              "releases": {v.name: v.to_dict() for v in verdicts}}
    write_text_atomic(folder / "release-demo.json",
                      json.dumps(json_clean(record), indent=1, allow_nan=False))
    write_text_atomic(folder / "report.html", render_report(verdicts, seconds))
    return verdicts, seconds


_TITLES = {"leaky": "Leaky release (noisy copies)", "dp": "DP release (noisy marginals)"}


def render_report(verdicts: list[ReleaseVerdict], seconds: float) -> str:
    """Both releases on one self-contained page (`assay.synth.report`)."""
    from assay.synth.report import ReleaseView, render_releases

    first = verdicts[0].audit
    limits = ", ".join(f"{FIGURE_LABELS[k]} ≤ {v}" for k, v in RELEASE_LIMITS.items())
    return render_releases(
        [ReleaseView(v.name, _TITLES[v.name], v.audit, v.description,
                     "pass" if v.passed else "fail", v.reasons, v.calibration, v.utility)
         for v in verdicts],
        title="assay demo: two synthetic releases audited",
        heading=f"Two synthetic releases of the same {first.n_real} rows, audited",
        meta=f"the bundled loan table: {first.n_real} training rows for the generator, "
             f"{first.n_holdout} holdout rows it never saw (the control) · columns "
             f"{', '.join(first.columns)} · a release passes when the upper end of each "
             f"95 % interval stays at its limit: {limits}",
        seconds=seconds)
