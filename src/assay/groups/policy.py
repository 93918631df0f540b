"""One flagging rule (`FlagRule`): a group is flagged when its difference from the
reference is significant *and* at least a stated minimum in the harmful direction; one
`GroupPolicy` that carries it with the support and the permutations to every section."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from assay._serial import Serial, meta
from assay._validation import (
    check_option,
    check_scalar,
)

DIRECTIONS = ("greater", "less", "both")

_DIRECTION_WORDS = {"greater": "above", "less": "below", "both": "away from"}


@dataclass(frozen=True)
class FlagRule(Serial):
    """When a group is flagged: the one rule of every pillar.

    A group is flagged when its difference from the reference is significant at `alpha`
    AND at least `min_difference` in the harmful direction ("significant is not
    important": a tiny gap in a huge group is significant, a large gap in a tiny group
    may be noise; neither alone is a finding).

    Parameters
    ----------
    alpha : float, default=0.05
        Significance level, in (0, 1); flagged when ``p_value < alpha``.
    min_difference : float, default=0.05
        Smallest difference that matters, >= 0, in the units of the figure.
    direction : {"greater", "less", "both"}, default="greater"
        Harmful direction: "greater" when higher is worse (attack success, error rate),
        "less" when lower is worse (accuracy, selection rate), "both" for either.

    Examples
    --------
    >>> import numpy as np
    >>> from assay.groups import FlagRule
    >>> rule = FlagRule(alpha=0.05, min_difference=0.1)
    >>> rule.describe()
    'p < 0.05 and at least 0.1 above the overall value'
    >>> # large and significant; large, not significant; significant, too small
    >>> rule.flags(np.array([0.2, 0.2, 0.05]), np.array([0.01, 0.2, 0.01]))
    array([ True, False, False])
    """

    alpha: float = 0.05
    min_difference: float = 0.05
    direction: str = field(default="greater", metadata=meta(schema={"enum": list(DIRECTIONS)}))

    __json_required__ = ("alpha", "min_difference", "direction")
    # Read from `to_dict` output (missing keys take their defaults); nothing else.
    __json_name__ = "flag rule"

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", check_scalar(
            self.alpha, "alpha", low=0.0, high=1.0, low_open=True, high_open=True))
        object.__setattr__(self, "min_difference", check_scalar(
            self.min_difference, "min_difference", low=0.0))
        check_option(self.direction, "direction", DIRECTIONS)

    def harmful(self, difference):
        """The difference signed so that positive is harmful (``|d|`` for "both")."""
        d = np.asarray(difference, dtype=float)
        return {"greater": d, "less": -d, "both": np.abs(d)}[self.direction]

    def flags(self, difference, p_value):
        """Whether a group (or each group, for arrays) is flagged.

        Parameters
        ----------
        difference : float or array-like
            Group figure minus the reference figure.
        p_value : float or array-like
            p-value of that difference (broadcast with `difference`).

        Returns
        -------
        bool or ndarray of bool
            ``p_value < alpha`` and the harmful part of `difference` is positive and at
            least `min_difference`. NaN anywhere gives False.
        """
        harm = self.harmful(difference)
        p = np.asarray(p_value, dtype=float)
        with np.errstate(invalid="ignore"):
            out = (p < self.alpha) & (harm > 0) & (harm >= self.min_difference)
        return bool(out) if out.ndim == 0 else out

    def describe(self, reference: str = "the overall value") -> str:
        """The rule in plain words, e.g. ``"p < 0.05 and at least 0.05 above the overall
        value"``."""
        return (f"p < {self.alpha:g} and at least {self.min_difference:g} "
                f"{_DIRECTION_WORDS[self.direction]} {reference}")



@dataclass(frozen=True)
class GroupPolicy:
    """How a section tests its groups: the audit's one policy with the section's own rule.

    The audit context builds one from ``[groups]`` (`assay.audit.config.GroupOptions`);
    a section asks it for its rule (`for_section`) instead of rebuilding a `FlagRule`
    and passing the support and the permutations one by one.

    Parameters
    ----------
    alpha : float, default=0.05
        Significance level of the group tests, in (0, 1).
    min_difference : float, default=0.05
        Smallest harmful difference that is flagged, in the units of the section's figure.
    direction : {"greater", "less", "both"}, default="greater"
        The harmful direction (see `FlagRule`).
    min_support : int, default=50
        Groups with fewer rows are listed, without figures or flags.
    n_permutations : int, default=200
        Permutations of the group tests (0: no test, nothing is flagged).

    Examples
    --------
    >>> from assay.groups import GroupPolicy
    >>> policy = GroupPolicy(min_support=30)
    >>> policy.for_section(0.02, "less").flag_rule
    FlagRule(alpha=0.05, min_difference=0.02, direction='less')
    >>> policy.test_options()["min_support"], policy.test_options()["n_permutations"]
    (30, 200)
    """

    alpha: float = 0.05
    min_difference: float = 0.05
    direction: str = "greater"
    min_support: int = 50
    n_permutations: int = 200

    def __post_init__(self) -> None:
        self.flag_rule  # noqa: B018 - validates alpha, min_difference and direction
        check_scalar(self.min_support, "min_support", kind=int, low=1)
        check_scalar(self.n_permutations, "n_permutations", kind=int, low=0)

    @property
    def flag_rule(self) -> FlagRule:
        """The `FlagRule` of this policy."""
        return FlagRule(alpha=self.alpha, min_difference=self.min_difference,
                        direction=self.direction)

    def for_section(self, min_difference: float, direction: str = "greater") -> GroupPolicy:
        """This policy with a section's own smallest difference and harmful direction."""
        return replace(self, min_difference=min_difference, direction=direction)

    def test_options(self) -> dict[str, Any]:
        """``flag_rule``, ``min_support`` and ``n_permutations`` as keywords of the group
        functions (`assay.privacy.membership.mia.run_mia`, `multiplicity_curve`, ...)."""
        return {"flag_rule": self.flag_rule, "min_support": self.min_support,
                "n_permutations": self.n_permutations}
