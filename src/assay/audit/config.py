"""The options of one audit: the shared ones (`AuditConfig`, ``[groups]``) and ``audit.toml``.

Each section keeps its own options (`assay.section.Options`); `AuditConfig` holds what
every section shares and the sections' tables, validated before any work.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from assay._validation import (
    MAX_RESAMPLES,
    InvalidParameterError,
    check_encoding,
    check_option,
    check_scalar,
)
from assay.section import Options, registered_sections

if TYPE_CHECKING:
    from assay.groups import GroupPolicy

# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class GroupOptions(Options):
    """How every section breaks its figures down by group (`assay.groups`).

    Parameters
    ----------
    min_support : int, default=50
        Groups with fewer rows are listed, without figures or flags.
    alpha : float, default=0.05
        Significance level of the group tests (family-wise within an attribute).
    n_permutations : int, default=200
        Permutations of the group tests (0: no test, nothing is flagged).
    max_intersection : int or None, default=None
        Largest number of protected attributes intersected (None: all).
    """

    min_support: int = 50
    alpha: float = 0.05
    n_permutations: int = 200
    max_intersection: int | None = None

    def __post_init__(self) -> None:
        check_scalar(self.min_support, "groups.min_support", kind=int, low=1)
        check_scalar(self.alpha, "groups.alpha", low=0, high=1, low_open=True, high_open=True)
        check_scalar(self.n_permutations, "groups.n_permutations", kind=int, low=0,
                     high=MAX_RESAMPLES)
        if self.max_intersection is not None:
            check_scalar(self.max_intersection, "groups.max_intersection", kind=int, low=1)

    @property
    def policy(self) -> GroupPolicy:
        """The audit's one `GroupPolicy` (significance level, support, permutations); each
        section adds its own smallest difference and direction (`GroupPolicy.for_section`)."""
        from assay.groups import GroupPolicy

        return GroupPolicy(alpha=self.alpha, min_support=self.min_support,
                           n_permutations=self.n_permutations)


_SHARED_KEYS = ("data", "target", "protected", "learner", "learner_params", "models", "out",
                "backend", "scheduler_address", "seed", "n_rows", "predictions",
                "train_column", "encoding", "max_categories", "min_frequency", "memory_budget",
                "sparse", "task", "decision_threshold")
#: What a target may be audited as (`AuditConfig.task`; None: detected from the target).
TASKS = ("classification", "regression")


@dataclass(frozen=True)
class AuditConfig:
    """Everything an audit is run with (written verbatim into the result).

    Parameters
    ----------
    data : str
        Path of a CSV/Parquet table, or the name of a bundled table (``"synthetic"``,
        ``"adult"``, ...).
    target : str or None
        Label column (optional for a bundled table).
    protected : tuple of str
        Protected columns (default for a bundled table: its own).
    learner : str, default="logreg"
        Learner spec (`assay.learners.get_learner`).
    learner_params : dict
        Hyper-parameters of the learner (``[learner]`` table, ``--learner-param``).
    models : int, default=16
        Models in the population (even). Without ``predictions`` every row is a member of
        half of them; with it, they are the reference models of the attack.
    out : str, default="assay-out"
        Output folder: ``result.json``, ``report.html`` and the population cache.
    backend : {"batched", "joblib", "dask"}, default="batched"
        "dask": the population is fitted and the attacks are scored on a Dask cluster
        (`assay.engine.backends`; "local" is read as "batched").
    scheduler_address : str or None
        Address of a running Dask scheduler (backend "dask" only); None: one local
        cluster for the whole audit.
    seed : int, default=0
        Seed of the membership plan, the models and the tests.
    n_rows : int or None
        Rows of the synthetic table (bundled ``"synthetic"`` only).
    predictions : str or None
        Predictions file of a model you already trained (`assay.engine.predictions`).
    train_column : str, default="in_train"
        Its 0/1 column marking the rows the model was trained on.
    encoding : str, default="utf-8"
        Text encoding of a CSV table (``"latin-1"``, ``"cp1252"``, ...).
    max_categories : int >= 1 or None
        One-hot columns per categorical column at most; rarer levels share one
        ``(infrequent)`` column (as scikit-learn's ``OneHotEncoder``). None: no cap.
    min_frequency : int >= 1 or float in (0, 1), or None
        Levels seen in fewer fit rows (or a smaller share of them) are infrequent.
    memory_budget : float > 0 or None
        GiB the encoded feature matrix may take (None: the dataset default, 2); a table
        over it is a one-line `DataError` naming a ``max_categories`` that fits.
    sparse : bool, "auto" or None
        Store the one-hot features as a sparse CSR matrix (True), dense (False), or
        sparse when the dense matrix would exceed the budget ("auto", the default).
    task : {"classification", "regression"} or None
        What the model under audit predicts; None (the default): classes, unless the
        target is continuous (numeric with non-integral values or more than 100
        distinct ones), which is then audited as a regression model (a data note and
        one line say so). An integer target with few values stays classes unless
        ``task = "regression"``.
    decision_threshold : float or None
        Regression targets only: the decision the prediction feeds is ``prediction >
        threshold`` (a premium referred, credit refused). Fairness then adds the
        decision's rate gaps by group, multiplicity its ambiguity and discrepancy.
    groups : GroupOptions
    sections : dict of str to Options
        Each registered section's options (defaults where its table is absent).
    """

    data: str
    target: str | None = None
    protected: tuple[str, ...] = ()
    learner: str = "logreg"
    learner_params: Mapping[str, Any] = field(default_factory=dict)
    models: int = 16
    out: str = "assay-out"
    backend: str = "batched"
    scheduler_address: str | None = None
    seed: int = 0
    n_rows: int | None = None
    predictions: str | None = None
    train_column: str = "in_train"
    encoding: str = "utf-8"
    max_categories: int | None = None
    min_frequency: float | None = None
    memory_budget: float | None = None
    sparse: bool | str | None = None
    task: str | None = None
    decision_threshold: float | None = None
    groups: GroupOptions = field(default_factory=GroupOptions)
    sections: Mapping[str, Options] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.data, str) or not self.data:
            raise InvalidParameterError(f"data must be a path or a table name. Got {self.data!r}.")
        if self.target is not None and not isinstance(self.target, str):
            raise InvalidParameterError(f"target must be a column name. Got {self.target!r}.")
        protected = (self.protected,) if isinstance(self.protected, str) else self.protected
        if not all(isinstance(p, str) for p in protected):
            raise InvalidParameterError(
                f"protected must be column names. Got {list(protected)!r}.")
        object.__setattr__(self, "protected", tuple(protected))
        if not isinstance(self.learner, str) or not self.learner:
            raise InvalidParameterError(
                f"learner must be a learner name. Got {self.learner!r}.")
        if not isinstance(self.learner_params, Mapping):
            raise InvalidParameterError(
                f"learner_params must be a table. Got {self.learner_params!r}.")
        object.__setattr__(self, "learner_params", dict(self.learner_params))
        models = check_scalar(self.models, "models", kind=int, low=4)
        if models % 2:
            raise InvalidParameterError(
                f"models must be an even integer in [4, inf). Got {models}.")
        from assay.engine.backends import check_backend_name

        object.__setattr__(self, "backend", check_backend_name(self.backend))
        from assay.engine.cluster import check_scheduler

        check_scheduler(self.backend, self.scheduler_address)
        check_scalar(self.seed, "seed", kind=int, low=0)
        if self.n_rows is not None:
            check_scalar(self.n_rows, "n_rows", kind=int, low=10)
        if not isinstance(self.out, str) or not self.out:
            raise InvalidParameterError(f"out must be a folder path. Got {self.out!r}.")
        if self.predictions is not None and not isinstance(self.predictions, str):
            raise InvalidParameterError(
                f"predictions must be a file path. Got {self.predictions!r}.")
        if not isinstance(self.train_column, str) or not self.train_column:
            raise InvalidParameterError(
                f"train_column must be a column name. Got {self.train_column!r}.")
        if self.task is not None:
            check_option(self.task, "task (--task)", TASKS)
        if self.decision_threshold is not None:
            object.__setattr__(self, "decision_threshold", float(check_scalar(
                self.decision_threshold, "decision_threshold (--decision-threshold)")))
        object.__setattr__(self, "encoding", check_encoding(self.encoding))
        self._check_encoding_limits()
        if not isinstance(self.groups, GroupOptions):
            raise InvalidParameterError(
                f"groups must be GroupOptions. Got {type(self.groups).__name__}.")
        # Every registered section gets its options, defaults where none were given.
        sections = dict(self.sections)
        for section in registered_sections():
            options = sections.get(section.name)
            if options is None:
                sections[section.name] = section.options_type()
            elif not isinstance(options, section.options_type):
                raise InvalidParameterError(
                    f"sections[{section.name!r}] must be {section.options_type.__name__}. "
                    f"Got {type(options).__name__}.")
        object.__setattr__(self, "sections", sections)

    def _check_encoding_limits(self) -> None:
        """max_categories, min_frequency, memory_budget and sparse, checked before any
        loading by the check `Dataset.from_frame` applies (normalised in place)."""
        from assay.data.encode import ENCODING_OPTIONS, check_encoding_options

        values = check_encoding_options(*(getattr(self, k) for k in ENCODING_OPTIONS))
        for key, value in zip(ENCODING_OPTIONS, values, strict=True):
            object.__setattr__(self, key, value)

    def encoding_limits(self) -> dict[str, Any]:
        """The encoding options that were set, as `Dataset.from_frame` keywords."""
        from assay.data.encode import ENCODING_OPTIONS

        return {k: getattr(self, k) for k in ENCODING_OPTIONS if getattr(self, k) is not None}

    def options(self, name: str) -> Options:
        """The options of section ``name``."""
        return self.sections[name]

    def make_learner(self):
        """The learner this audit trains (validates its parameters)."""
        from assay.learners import get_learner

        return get_learner(self.learner, **self.learner_params)

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any], source: str = "config") -> AuditConfig:
        """Build from an ``audit.toml`` mapping merged with CLI flags.

        Top-level keys are the shared options; ``[learner]`` holds ``name`` and the
        learner's parameters; ``[groups]`` the group-layer settings; each registered
        section reads its own table. Unknown keys or tables are one-line errors naming
        the table and its known keys.
        """
        options = dict(options)
        sections = {s.name: s for s in registered_sections()}
        learner = options.pop("learner", None)
        params = dict(options.pop("learner_params", None) or {})
        if isinstance(learner, Mapping):
            from assay.learners import learner_from_table

            name, table_params = learner_from_table(learner)
            params = {**table_params, **params}
            learner = name
        groups_table = options.pop("groups", None) or {}
        tables = {name: options.pop(name) for name in list(options) if name in sections}
        unknown = sorted(set(options) - set(_SHARED_KEYS))
        if unknown:
            owners = {key: s.name for s in sections.values()
                      for key in (f.name for f in dataclasses.fields(cast(Any, s.options_type)))}
            hints = [f"'{k}' belongs in [{owners[k]}]" for k in unknown if k in owners]
            raise InvalidParameterError(
                f"{source} has unknown option(s) {', '.join(map(repr, unknown))}"
                + (f" ({'; '.join(hints)})" if hints else "")
                + f"; the top-level options are: {', '.join(_SHARED_KEYS)}, and the tables "
                f"[learner], [groups], {', '.join(f'[{n}]' for n in sections)}.")
        if options.get("data") is None:
            raise InvalidParameterError(
                f"data must be a path or a table name (the first argument, or data = ... in a "
                f"config file). Got none in {source}.")
        built = {name: sections[name].options_type.from_mapping(table, f"{source} [{name}]")
                 for name, table in tables.items()}
        groups = GroupOptions.from_mapping(groups_table, f"{source} [groups]")
        if isinstance(options.get("protected"), str):
            options["protected"] = [p.strip() for p in options["protected"].split(",")
                                    if p.strip()]
        kwargs = {k: v for k, v in options.items() if v is not None}
        if isinstance(kwargs.get("protected"), list):
            kwargs["protected"] = tuple(kwargs["protected"])
        if learner is not None:
            kwargs["learner"] = learner
        try:
            return cls(learner_params=params, groups=groups, sections=built, **kwargs)
        except TypeError as exc:
            raise InvalidParameterError(f"{source} has an option of the wrong type: {exc}.") \
                from None

    def to_dict(self) -> dict[str, Any]:
        """JSON form: shared options, ``learner`` table, ``groups`` and one table per section."""
        out = {k: getattr(self, k) for k in _SHARED_KEYS if k not in ("learner",
                                                                      "learner_params")}
        for key in ("task", "decision_threshold"):  # a classification audit's as before
            if out[key] is None:
                del out[key]
        out["protected"] = list(self.protected)
        out["learner"] = {"name": self.learner, **self.learner_params}
        out["groups"] = self.groups.to_dict()
        for name, options in self.sections.items():
            out[name] = options.to_dict()
        return out


def load_config(path: str | Path) -> dict[str, Any]:
    """Read an ``audit.toml`` into a mapping for `AuditConfig.from_mapping`.

    Raises
    ------
    InvalidParameterError
        The file is missing, unreadable or not valid UTF-8 TOML.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidParameterError(f"config must be an existing TOML file. Got {str(path)!r}.")
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidParameterError(f"config {path} is not valid TOML: {exc}.") from None


