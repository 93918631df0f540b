"""The ``synthetic`` section of ``assay audit``: a synthetic release of the audited table.

Runs when a release is given (``[synthetic] release = "synth.csv"`` or
``--synthetic synth.csv``) with the rows its generator never saw (``holdout``). The
generator's training rows are ``training``, by default the audited table's file. Declared
through the ``assay.sections`` entry point; light to import (pandas and the attacks are
imported inside the functions).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay._validation import DataError, InvalidParameterError, check_scalar
from assay.section import Flag, Options
from assay.section.base import SectionBase

__all__ = ["SECTION", "SyntheticOptions", "SyntheticSection"]


@dataclass(frozen=True)
class SyntheticOptions(Options):
    """Options of the synthetic section (``[synthetic]`` in ``audit.toml``).

    Parameters
    ----------
    release : str, optional
        The synthetic table (.csv/.parquet); without it the section does not run.
    holdout : str, optional
        Rows of the same population the generator never saw (required with `release`).
    training : str, optional
        The generator's training rows (default: the audited table's file).
    secrets : tuple of str, default=()
        Columns whose inference is attacked (default: every column).
    n_attacks : int, default=500
    n_cols : int, default=3
    min_gap : float, default=0.05
        Smallest excess of a group's risk over the overall one that is flagged.
    generator : str, optional
        The release's generator when known (as ``assay synth --generator``): adds the
        shadow-generator attack and its gate figure ``synthetic.shadow_auc``.
    n_shadow : int, default=16
        Shadow tables of that attack (even).
    """

    release: str | None = None
    holdout: str | None = None
    training: str | None = None
    secrets: tuple[str, ...] = ()
    n_attacks: int = 500
    n_cols: int = 3
    min_gap: float = 0.05
    generator: str | None = None
    n_shadow: int = 16

    def __post_init__(self) -> None:
        check_scalar(self.n_attacks, "synthetic.n_attacks", kind=int, low=1)
        check_scalar(self.n_cols, "synthetic.n_cols", kind=int, low=1)
        check_scalar(self.min_gap, "synthetic.min_gap", low=0, high=1)
        check_scalar(self.n_shadow, "synthetic.n_shadow", kind=int, low=2)
        if self.n_shadow % 2:
            raise InvalidParameterError(f"synthetic.n_shadow must be even (complementary "
                                        f"pairs of shadow tables). Got {self.n_shadow}.")
        if self.generator is not None:
            from assay.synth.shadow import check_generator

            check_generator(self.generator, "synthetic.generator")
        if self.release is not None and self.holdout is None:
            raise InvalidParameterError(
                "synthetic.holdout must name the rows the generator never saw when a release "
                "is given (every risk is measured against them). Got none.")


def _paths(context: Any, options: SyntheticOptions) -> dict[str, Path]:
    training = options.training or context.config.data
    if options.release is None or options.holdout is None:  # `check` refused these
        raise ValueError("the synthetic section needs a release and a holdout")
    paths = {"synthetic.release": Path(options.release),
             "synthetic.holdout": Path(options.holdout),
             "synthetic.training": Path(training)}
    for name, path in paths.items():
        if not path.is_file():
            hint = (" (the audited table is not a file: give synthetic.training)"
                    if name == "synthetic.training" and options.training is None else "")
            raise DataError(f"{name} must be an existing .csv or .parquet file. Got "
                            f"{path}{hint}.")
    return paths


class SyntheticSection(SectionBase):
    """Privacy of a synthetic release: singling out, linkability, inference, membership."""

    name = "synthetic"
    title = "Privacy of the synthetic release"
    options_type = SyntheticOptions
    flags = (
        Flag("release", "A synthetic table generated from the audited one (runs the section).",
             name="--synthetic"),
        Flag("holdout", "Rows the synthetic table's generator never saw.",
             name="--synthetic-holdout"),
        Flag("training", "The generator's training rows (default: the audited table).",
             name="--synthetic-training"),
        Flag("generator", "The synthetic table's generator when known (marginals, "
             "dp-marginals:RISK, copula, mst:RISK): adds the shadow-generator attack.",
             name="--synthetic-generator"),
    )
    payload = "assay.synth.run:SynthPayload"
    schema_from = "assay.synth.section:payload_schema"
    pager = "assay.synth.page:synthetic_page"
    #: The risks read no target; on a regression table the utility is MAE and R².
    tasks = ("classification", "regression")

    def check(self, context: Any, options: SyntheticOptions) -> None:
        """The three files exist and hold the columns named, before any model is trained."""
        if options.release is None:
            return
        from assay.data.read import read_table
        from assay.synth.run import SynthOptions, check_columns

        paths = _paths(context, options)
        frames = [read_table(p, what=name) for name, p in
                  (("synthetic.training", paths["synthetic.training"]),
                   ("synthetic.release", paths["synthetic.release"]),
                   ("synthetic.holdout", paths["synthetic.holdout"]))]
        real, synth, holdout = frames
        check_columns(real, synth, holdout, SynthOptions(secrets=tuple(options.secrets),
                                                         n_cols=options.n_cols))
        if context.task == "regression":  # the downstream model needs the target's numbers
            from assay.synth.utility import target_numbers

            for name, frame in zip(("synthetic.training", "synthetic.release",
                                    "synthetic.holdout"), frames, strict=True):
                target_numbers(frame, str(context.dataset.target), name)

    def applies(self, context: Any, options: SyntheticOptions) -> bool:
        return options.release is not None

    def run(self, context: Any, options: SyntheticOptions):
        from assay.data.read import read_table
        from assay.report.result import Metric, SectionResult
        from assay.synth.run import SynthOptions, audit_release, summary_lines

        paths = _paths(context, options)
        real, synth, holdout = (read_table(paths[f"synthetic.{k}"], what=f"synthetic.{k}")
                                for k in ("training", "release", "holdout"))
        protected = tuple(p for p in context.config.protected if p in real.columns)
        payload = audit_release(real, synth, holdout, SynthOptions(
            secrets=tuple(options.secrets), protected=protected, n_attacks=options.n_attacks,
            n_cols=options.n_cols, min_gap=options.min_gap,
            min_support=context.group_policy.min_support, seed=context.config.seed,
            generator=options.generator, n_shadow=options.n_shadow, n_jobs=None))
        metrics = {}
        for key, label in (("singling_out", "singling-out risk"),
                           ("linkability", "linkability risk"),
                           ("inference", "inference risk (most exposed secret)")):
            e = payload.to_dict()[key]["risk"]
            metrics[key] = Metric(e["value"], e["ci_low"], e["ci_high"], label=label)
        ties = payload.linkability.with_ties
        if ties is not None:
            metrics["linkability_with_ties"] = Metric(
                ties.risk.value, ties.risk.ci_low, ties.risk.ci_high,
                label="linkability risk, every tied nearest row counted")
        auc = payload.membership.auc
        metrics["membership_auc"] = Metric(auc.value, auc.ci_low, auc.ci_high,
                                           label="membership attack AUC on the release")
        if payload.membership.shadow is not None:
            sh = payload.membership.shadow.auc
            metrics["shadow_auc"] = Metric(sh.value, sh.ci_low, sh.ci_high,
                                           label="shadow-generator attack AUC on the release")
        metrics["flagged_groups"] = Metric(float(len(payload.flagged_groups())),
                                           label="groups flagged")
        if context.task == "regression":
            payload = _with_utility(payload, real, synth, holdout, context)
            metrics.update(_utility_metrics(payload.utility))
        return SectionResult(name=self.name, title=self.title,
                             summary=summary_lines(payload), metrics=metrics, data=payload)


def _with_utility(payload: Any, real: Any, synth: Any, holdout: Any, context: Any) -> Any:
    """The payload of a regression table: the risks, and ridge regressions of the target
    trained on the release and on the real rows, tested on the holdout."""
    import dataclasses

    from assay.synth.run import RegressionSynthPayload, SynthPayload
    from assay.synth.utility import regression_downstream

    utility = regression_downstream(real, synth, holdout, str(context.dataset.target),
                                    seed=context.config.seed)
    risks = {f.name: getattr(payload, f.name) for f in dataclasses.fields(SynthPayload)}
    return RegressionSynthPayload(**risks, utility=utility)


def _utility_metrics(u: Any) -> dict[str, Any]:
    from assay.report.result import Metric

    out = {}
    for key, label in (("r2_synthetic", "R² of the model trained on the release"),
                       ("r2_real", "R² of the model trained on the real rows"),
                       ("r2_gap", "R² lost by training on the release"),
                       ("mae_synthetic", "MAE of the model trained on the release"),
                       ("mae_real", "MAE of the model trained on the real rows")):
        e = getattr(u, key)
        out[f"utility.{key}"] = Metric(e.value, e.ci_low, e.ci_high, label=label)
    return out


def payload_schema() -> dict[str, Any]:
    """The payload schema of a classification table's audit, or of a regression one's."""
    from assay.audit.regression import task_schema

    return task_schema("assay.synth:schema.json", "assay.synth:regression.schema.json")


SECTION = SyntheticSection()
