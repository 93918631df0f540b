"""Write each section's payload JSON Schema from its payload type (`assay._serial`).

The schema files stay checked in (a section reads its file at registration, importing no
work); this script regenerates them from the dataclasses, and ``--check`` (run by the
test suite) fails when a checked-in file differs from what the types give.

Usage::

    python scripts/schemas.py          # rewrite the files
    python scripts/schemas.py --check  # exit 1, naming the stale files, when one differs
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: (payload type, schema file, $id, title) of every generated schema.
TARGETS = (
    ("assay.report.result:AuditResult", "src/assay/report/schema.json", "assay-result-v2",
     "assay audit result"),
    ("assay.fairness.run:FairnessPayload", "src/assay/fairness/schema.json",
     "assay-section-fairness", "payload of the fairness section"),
    ("assay.multiplicity.run:MultiplicityPayload", "src/assay/multiplicity/schema.json",
     "assay-section-multiplicity", "payload of the multiplicity section"),
    ("assay.fairness.regression_audit:RegressionFairnessPayload",
     "src/assay/fairness/regression.schema.json", "assay-section-fairness-regression",
     "payload of the fairness section on a regression model"),
    ("assay.privacy.membership.regression_audit:RegressionPrivacyPayload",
     "src/assay/privacy/membership/regression.schema.json",
     "assay-section-privacy-regression", "payload of the privacy section on a regression model"),
    ("assay.multiplicity.regression_audit:RegressionMultiplicityPayload",
     "src/assay/multiplicity/regression.schema.json", "assay-section-multiplicity-regression",
     "payload of the multiplicity section on a regression model"),
    ("assay.synth.run:SynthPayload", "src/assay/synth/schema.json", "assay-synth",
     "result of the synthetic-release audit (assay synth)"),
    ("assay.synth.run:RegressionSynthPayload", "src/assay/synth/regression.schema.json",
     "assay-synth-regression", "payload of the synthetic section on a regression table"),
    ("assay.synth.dp:SynthDPResult", "src/assay/synth/dp.schema.json", "assay-synth-dp",
     "result of a DP synthetic release calibrated to a risk target (assay synth-dp)"),
    ("assay.privacy.membership.run:PrivacyPayload", "src/assay/privacy/membership/schema.json",
     "assay-section-privacy", "payload of the privacy section"),
    ("assay.privacy.attribute.section:AttributePayload",
     "src/assay/privacy/attribute/schema.json", "assay-section-attribute",
     "assay attribute-inference payload"),
    ("assay.privacy.attribute.regression:RegressionAttributePayload",
     "src/assay/privacy/attribute/regression.schema.json",
     "assay-section-attribute-regression",
     "payload of the attribute section on a regression model"),
    ("assay.privacy.distribution.section:DistributionPayload",
     "src/assay/privacy/distribution/schema.json", "assay-section-distribution",
     "assay distribution-inference payload"),
    ("assay.privacy.distribution.regression:RegressionDistributionPayload",
     "src/assay/privacy/distribution/regression.schema.json",
     "assay-section-distribution-regression",
     "payload of the distribution section on a regression model"),
    ("assay.privacy.release.section:ReleasePayload", "src/assay/privacy/release/schema.json",
     "assay-section-release", "assay release-check payload"),
    ("assay.privacy.training.run:DPPayload", "src/assay/privacy/training/schema.json",
     "assay-section-dp", "payload of the dp section"),
    ("assay.privacy.training.deploy:DeployPayload",
     "src/assay/privacy/training/deploy.schema.json", "assay-section-dp-deploy",
     "payload of the dp section with deploy (the deployed model)"),
    ("assay.privacy.training.regression:DPRegressionPayload",
     "src/assay/privacy/training/regression.schema.json", "assay-section-dp-regression",
     "payload of the dp section on a regression target (DP linear regression)"),
)


def render(spec: str, schema_id: str, title: str) -> str:
    """The schema file's text for payload type `spec` (``"module:Class"``)."""
    from assay._serial import json_schema

    module, _, name = spec.partition(":")
    cls = getattr(importlib.import_module(module), name)
    return json.dumps(json_schema(cls, title=title, schema_id=schema_id), indent=2,
                      ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a checked-in schema differs from its type's")
    args = parser.parse_args(argv)
    stale = []
    for spec, path, schema_id, title in TARGETS:
        text = render(spec, schema_id, title)
        file = ROOT / path
        if file.exists() and file.read_text("utf-8") == text:
            continue
        if args.check:
            stale.append(path)
        else:
            file.write_text(text, "utf-8")
            print(f"wrote {path}")
    if stale:
        print("schemas differ from their payload types (run python scripts/schemas.py): "
              + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
