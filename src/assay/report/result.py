"""`AuditResult`: the typed, versioned record of one audit, and its JSON form.

A result holds everything needed to re-render the report and to gate a pipeline on it:
the exact configuration, the data fingerprint, the package versions and seeds, and one
`SectionResult` per audit section (privacy, fairness, multiplicity, ...). A section's
``metrics`` are flat, named figures with intervals (what ``assay gate`` reads); its
``data`` is the section's typed payload (a dataclass with ``to_dict``/``from_dict``,
declared by the section as ``payload_type``; a plain dict for a section that is not
installed), which its page draws.

``result.json`` is validated on write and on read against ``schema.json`` (the frame,
shipped with the package) composed with each registered section's payload schema.
Files without a ``schema_version``, or written by another schema version, are refused
with a `DataError` that says so.
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from assay._serial import Serial, meta
from assay._validation import DataError

#: Version of the result layout; bump it when a field changes meaning or moves.
SCHEMA_VERSION = 2
#: Packages whose versions are recorded (absent ones are recorded as None).
_RECORDED_PACKAGES = ("assay", "numpy", "scipy", "pandas", "scikit-learn", "torch",
                      "dp-accounting", "joblib", "matplotlib")

MSG_NOT_A_RESULT = "{path} is not an assay result (no schema_version)."
MSG_OTHER_VERSION = (
    "{path} was written by schema version {found}; this assay reads {expected}. "
    "Re-run the audit with this version of assay."
)
MSG_INVALID = "{path} does not match the assay result schema: {why}."
MSG_UNREADABLE = "{path} cannot be read as JSON: {why}."


@dataclass
class Metric(Serial):
    """A named figure with its interval, e.g. the AUC of the strongest attack.

    Attributes
    ----------
    value : float
        Point estimate (NaN is written as null).
    ci_low, ci_high : float or None
        Interval bounds (None when the figure has none, e.g. a theoretical bound).
    label : str
        Plain-language name for reports.
    higher_is_worse : bool
        Whether larger values mean more risk (how the gate reads it by default).
    """

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    label: str = ""
    higher_is_worse: bool = True

    __json_plain__ = True  # a count stays an integer
    __json_closed__ = True

    @classmethod
    def of(cls, estimate: Any, label: str = "", higher_is_worse: bool = True) -> Metric:
        """The figure of an estimate (anything with ``value``, ``ci_low``, ``ci_high``)."""
        return cls(value=estimate.value, ci_low=estimate.ci_low, ci_high=estimate.ci_high,
                   label=label, higher_is_worse=higher_is_worse)


@dataclass
class SectionResult(Serial):
    """What one audit section found.

    Attributes
    ----------
    name : str
        Registry name of the section (``"privacy"``).
    title : str
        Heading in the report.
    status : {"ok", "skipped", "error"}
        "skipped" when the section did not apply (``message`` says why).
    summary : list of str
        Plain-language findings, most important first.
    metrics : dict of str to Metric
        Flat figures the gate can check (keys such as ``"auc"``, ``"tpr@0.001"``).
    data : dict
        The section's full JSON payload (curves, groups, tables).
    message : str
        Why the section was skipped or failed.
    seconds : float
        Wall time of the section.
    """

    name: str
    title: str
    status: str = field(default="ok", metadata=meta(
        schema={"enum": ["ok", "skipped", "error"]}))
    summary: list[str] = field(default_factory=list)
    metrics: dict[str, Metric] = field(default_factory=dict)
    # The payload through its own ``to_dict``; read back typed by `from_dict`.
    data: Any = field(default_factory=dict, metadata=meta(
        encode=lambda d: d.to_dict() if hasattr(d, "to_dict") else dict(d),
        schema={"type": "object"}))
    message: str = ""
    seconds: float = field(default=0.0, metadata=meta(schema={"minimum": 0}))

    __json_required__ = ("status", "summary", "metrics", "data")
    __json_closed__ = True

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> SectionResult:
        """Build from the JSON form; the payload typed when its section is registered."""
        from assay.section import get_section

        section = get_section(payload["name"])
        data = payload.get("data", {})
        if (section is not None and section.payload_type is not None
                and payload.get("status") == "ok"):
            try:
                data = section.payload_type.from_dict(data)
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
                # The schema leaves some shapes open; the payload's own reader is stricter.
                raise DataError(
                    f"section {shorten(payload['name'], 60)!r} data cannot be read: "
                    f"{type(exc).__name__}: {shorten(str(exc))}.") from None
        return cls(name=payload["name"], title=payload["title"],
                   status=payload.get("status", "ok"), summary=list(payload.get("summary", [])),
                   metrics={k: Metric(**m) for k, m in payload.get("metrics", {}).items()},
                   data=data, message=payload.get("message", ""),
                   seconds=payload.get("seconds", 0.0))


@dataclass
class AuditResult:
    """The record of one audit (see the module docstring).

    Attributes
    ----------
    config : dict
        The exact configuration the audit ran with (after config file and flags).
    data : dict
        Dataset name, shape, target, protected columns, fingerprint, notes.
    population : dict
        Learner config, number of models, seeds, accuracies, backend, cache counts.
    target : dict
        The model under audit: where its predictions came from, members, non-members.
    sections : dict of str to SectionResult
        In registry order.
    versions : dict of str to str or None
        Versions of assay and the packages it relies on.
    created : str
        ISO timestamp (UTC).
    seconds : float
        Wall time of the whole audit.
    schema_version : int
    """

    config: dict[str, Any]
    data: dict[str, Any] = field(metadata=meta(schema={
        "required": ["name", "n_rows", "target", "protected", "fingerprint"],
        "properties": {"name": {"type": "string"},
                       "n_rows": {"type": "integer", "minimum": 0},
                       "n_features": {"type": "integer", "minimum": 0},
                       "target": {"type": "string"},
                       "protected": {"type": "array", "items": {"type": "string"}},
                       "fingerprint": {"type": "string"},
                       "notes": {"type": "array", "items": {"type": "string"}}}}))
    population: dict[str, Any] = field(metadata=meta(schema={
        "required": ["n_models", "learner", "seeds"],
        "properties": {"n_models": {"type": "integer", "minimum": 1},
                       "learner": {"type": "object"},
                       "seeds": {"type": "array", "items": {"type": "integer"}}}}))
    sections: dict[str, SectionResult]
    target: dict[str, Any] = field(default_factory=dict, metadata=meta(schema={
        "properties": {"source": {"type": "string"},
                       "n_members": {"type": "integer", "minimum": 0},
                       "n_nonmembers": {"type": "integer", "minimum": 0}}}))
    versions: dict[str, str | None] = field(default_factory=lambda: package_versions(),
                                            metadata=meta(schema={"required": ["assay"]}))
    created: str = ""
    seconds: float = field(default=0.0, metadata=meta(schema={"type": "number",
                                                              "minimum": 0}))
    schema_version: int = field(default=SCHEMA_VERSION, metadata=meta(
        schema={"const": SCHEMA_VERSION}))

    # The JSON form's keys, in order (the schema, `scripts/schemas.py`, follows it).
    __json_layout__ = ("schema_version", "config", "data", "population", "target",
                       "sections", "versions", "created", "seconds")
    __json_required__ = ("schema_version", "versions", "created", "seconds")
    __json_closed__ = True

    # ------------------------------------------------------------------ access

    def metric(self, key: str) -> tuple[str, Metric]:
        """Find a metric by ``section.key`` or ``key``; return (qualified name, metric).

        An unqualified ``key`` names a figure only when exactly one section holds it; the
        gate never guesses between sections (``flagged_groups`` is in several).

        Raises
        ------
        InvalidParameterError
            No section has that metric, or several do (the message lists the names).
        """
        from assay._validation import InvalidParameterError

        matches = [(f"{sec.name}.{key}", sec.metrics[key]) for sec in self.sections.values()
                   if key in sec.metrics]
        section, dot, name = key.partition(".")
        if dot and section in self.sections and name in self.sections[section].metrics:
            matches.append((key, self.sections[section].metrics[name]))
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise InvalidParameterError(
                f"metric {key!r} is held by several sections; name one of "
                f"{', '.join(q for q, _ in matches)}.")
        names = self.metric_names()
        if not names:
            states = "; ".join(f"{s.name}: {s.status}" + (f" ({s.message})" if s.message else "")
                               for s in self.sections.values()) or "no sections"
            raise InvalidParameterError(
                f"metric {key!r} cannot be checked: this result has no metrics at all "
                f"({states}).")
        raise InvalidParameterError(
            f"metric must be one of {', '.join(names)}. Got {key!r}."
        )

    def failed_sections(self) -> list[SectionResult]:
        """Sections whose run failed (status ``"error"``), in order."""
        return [s for s in self.sections.values() if s.status == "error"]

    def metric_names(self) -> list[str]:
        """Every name `metric` accepts: unqualified ones held by one section, then every
        qualified ``section.key``."""
        qualified = [f"{sec.name}.{k}" for sec in self.sections.values() for k in sec.metrics]
        keys = [k for sec in self.sections.values() for k in sec.metrics]
        names: list[str] = []
        for k in keys:
            if k not in names and k not in qualified and keys.count(k) == 1:
                names.append(k)
        return names + [q for q in qualified if q not in names and q not in keys]

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        """JSON-clean form (NaN and infinities become null)."""
        return json_clean({
            "schema_version": self.schema_version, "config": self.config, "data": self.data,
            "population": self.population, "target": self.target,
            "sections": {k: s.to_dict() for k, s in self.sections.items()},
            "versions": self.versions, "created": self.created, "seconds": self.seconds})

    def to_json(self, path: str | Path) -> Path:
        """Validate against the schema and write ``path`` (UTF-8, indented, atomically)."""
        payload = self.to_dict()
        validate(payload, path)
        return write_text_atomic(path, json.dumps(payload, indent=1, ensure_ascii=False))

    @classmethod
    def from_dict(cls, payload: dict[str, Any], source: str = "result") -> AuditResult:
        """Build from the JSON form, after checking version and schema."""
        check_version(payload, source)
        validate(payload, source)
        sections = {name: SectionResult.from_dict(sec)
                    for name, sec in payload["sections"].items()}
        fields = {k: payload[k] for k in ("config", "data", "population", "target", "versions",
                                          "created", "seconds", "schema_version")}
        return cls(sections=sections, **fields)

    @classmethod
    def from_json(cls, path: str | Path) -> AuditResult:
        """Read ``result.json``; a clear `DataError` for foreign, old or damaged files."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"file {path} does not exist.")
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(MSG_UNREADABLE.format(path=path, why=shorten(str(exc)))) from None
        except RecursionError:
            raise DataError(MSG_UNREADABLE.format(path=path, why="nested too deeply")) \
                from None
        try:
            return cls.from_dict(payload, str(path))
        except DataError as exc:
            raise DataError(str(exc) if str(path) in str(exc) else f"{path}: {exc}") from None
        except RecursionError:
            raise DataError(MSG_INVALID.format(path=path, why="nested too deeply")) from None


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename.

    Readers see the old file or the new one, never a half-written one; the temporary
    file (in the same folder, created private) is removed if anything fails.
    """
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_version(payload: Any, source: str) -> None:
    """Refuse payloads without a schema_version or with another one."""
    if not isinstance(payload, dict) or "schema_version" not in payload:
        raise DataError(MSG_NOT_A_RESULT.format(path=source))
    found = payload["schema_version"]
    if found != SCHEMA_VERSION:
        raise DataError(MSG_OTHER_VERSION.format(path=source, found=shorten(found, 40),
                                                 expected=SCHEMA_VERSION))


def load_schema() -> dict[str, Any]:
    """The JSON Schema of ``result.json``: the frame composed with every section's payload.

    A registered section with a ``payload_schema`` constrains ``data`` of its entry
    under ``sections`` whenever its status is ``"ok"``.
    """
    from assay.section import registered_sections

    text = resources.files("assay.report").joinpath("schema.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    properties = schema["properties"]["sections"].setdefault("properties", {})
    for section in registered_sections():
        if section.payload_schema is None:
            continue
        properties[section.name] = {
            "allOf": [{"$ref": "#/$defs/SectionResult"}],
            "if": {"properties": {"status": {"const": "ok"}}},
            "then": {"properties": {"data": section.payload_schema}},
        }
    return schema


def validate(payload: dict[str, Any], source: str | Path = "result") -> None:
    """Validate a JSON-form result against the schema; `DataError` naming the first problem."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(payload))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        why = shorten(f"at {shorten(where, 120)}: {error.message}")
        raise DataError(MSG_INVALID.format(path=source, why=why))


def shorten(text: str, limit: int = 200) -> str:
    """`text` on one line, cut to about `limit` characters (the schema's messages quote
    the offending value whole, which may be the whole file)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else f"{text[:limit - 20]} ... ({len(text):,} chars)"


def package_versions() -> dict[str, str | None]:
    """Installed versions of assay and the packages its numbers depend on."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def json_clean(value: Any) -> Any:
    """Recursively make a value strict JSON: non-finite floats to None, tuples to lists,
    numpy scalars to Python numbers."""
    if isinstance(value, dict):
        return {str(k): json_clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_clean(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return json_clean(value.item())
    return value


# --------------------------------------------------------------------------- formatting
# One formatter for every figure, so the summary, the report and the tests agree.


def format_rate(value: float | None) -> str:
    """A rate in [0, 1] as a percentage: ``3.2 %``, ``0.45 %``, ``0.012 %``; ``n/a`` if missing."""
    if value is None or not math.isfinite(value):
        return "n/a"
    pct = 100.0 * value
    digits = 1 if pct >= 1 or pct == 0 else 2 if pct >= 0.1 else 3
    return f"{pct:.{digits}f} %"


def format_value(value: float | None) -> str:
    """A score such as an AUC with three decimals; ``n/a`` if missing."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.3f}"


def format_amount(value: float | None) -> str:
    """A figure in the target's units (an error, a prediction): four significant digits,
    thousands separated, never an exponent from 1,000 up (``3,776,566``, ``14,903``,
    ``19.5``, ``0.0751``); ``n/a`` if missing."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def format_points(value: float | None, signed: bool = False) -> str:
    """A difference of two rates (a gap, stored as a fraction) in percentage points:
    ``9.4`` (``+9.4`` signed); ``n/a`` if missing. The unit word goes with the figure
    (`format_figure`)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"


#: Kind of figure -> (formatter of one number, unit after the interval).
#: One rule per kind, for cards, plain words and tables alike; JSON keeps fractions.
FIGURE_KINDS: dict[str, tuple[Callable[..., str], str]] = {
    "rate": (format_rate, ""),        # share of people or decisions: "3.2 %"
    "gap": (format_points, " points"),  # difference of two rates: "9.4 points"
    "score": (format_value, ""),      # AUC, balanced accuracy, ratio: "0.834"
}


def _get(estimate: Any, key: str) -> Any:
    if isinstance(estimate, dict):
        return estimate.get(key)
    return getattr(estimate, key, None)


def format_figure(estimate: Any, kind: str, signed: bool = False,
                  interval: bool = True) -> str:
    """One figure with its interval in the unit of its kind (`FIGURE_KINDS`).

    ``"9.4 points [6.3, 11.8]"``, ``"3.2 % [2.1 %, 4.0 %]"``, ``"0.834 [0.825, 0.843]"``;
    the value alone when it has no interval; ``"not measurable"`` when it has no value.

    Parameters
    ----------
    estimate : Estimate, Metric or dict
        Anything with ``value``, ``ci_low`` and ``ci_high``.
    kind : {"rate", "gap", "score"}
    signed : bool, default=False
        Gaps only: a sign on every number (a change, not a size).
    interval : bool, default=True
        Whether to show the interval.
    """
    fmt, unit = FIGURE_KINDS[kind]
    one = (lambda v: fmt(v, signed)) if kind == "gap" else fmt
    value = _get(estimate, "value") if estimate is not None else None
    if value is None or not math.isfinite(value):
        return "not measurable"
    low, high = _get(estimate, "ci_low"), _get(estimate, "ci_high")
    text = f"{one(value)}{unit}"
    if interval and low is not None and high is not None and math.isfinite(low) \
            and math.isfinite(high):
        text = f"{one(value)}{unit} [{one(low)}, {one(high)}]"
    return text


def format_interval(estimate: Any, kind: str, signed: bool = False) -> str:
    """Only the ``[low, high]`` of `format_figure` ("" without an interval)."""
    fmt, _ = FIGURE_KINDS[kind]
    one = (lambda v: fmt(v, signed)) if kind == "gap" else fmt
    if estimate is None:
        return ""
    low, high = _get(estimate, "ci_low"), _get(estimate, "ci_high")
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return ""
    return f"[{one(low)}, {one(high)}]"
