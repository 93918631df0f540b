"""The group layer: every pillar disaggregates its figures through this one module.

Privacy, fairness and multiplicity all report per protected group and per intersection of
protected attributes. This module holds what they share, so that each figure is labelled,
supported and flagged the same way everywhere:

- **One label format** (`group_label`): ``"sex=Female & race=Black"``, unambiguous even
  when a value contains the separator (see `group_label` for the quoting rule).
- **One index of groups** (`GroupIndex`, `Grouping`): integer group codes per row for every
  single attribute and every intersection, built from integer codes (never row-wise
  string joins). Only observed combinations appear; groups are sorted by their values.
- **One minimum-support rule** (`Grouping.supported`): groups with fewer rows are kept and
  marked, never silently dropped.
- **One flagging rule** (`FlagRule`): a group is flagged when its difference from the
  reference is significant *and* at least a stated minimum in the harmful direction.
- **One gap test** (`permutation_test`): standardised group-mean differences of any
  per-row statistic, max-T adjusted within each grouping, every grouping and column from
  one shared set of permutations and one matrix product.
- **Rates per group** (`GroupFrame`): fairlearn-style selection rate, TPR, FPR, ... per
  group and intersection, each with a Wilson interval, from one bincount per grouping.

The layer is a package of one job per module: `labels`, `index`, `policy` (the flag
rule), `permutation` (the gap test) and `table` (rates per group); every name is
imported from here.
"""

from __future__ import annotations

from assay.groups.index import GroupIndex, Grouping, as_group_index
from assay.groups.labels import LABEL_SEP, group_label, parse_group_label
from assay.groups.permutation import FULL_PERMUTATION_ROWS, GroupTest, permutation_test
from assay.groups.policy import FlagRule, GroupPolicy
from assay.groups.table import RATE_METRICS, GroupFrame

__all__ = [
    "LABEL_SEP",
    "RATE_METRICS",
    "group_label",
    "parse_group_label",
    "Grouping",
    "GroupIndex",
    "as_group_index",
    "FlagRule",
    "GroupPolicy",
    "GroupTest",
    "permutation_test",
    "FULL_PERMUTATION_ROWS",
    "GroupFrame",
]
