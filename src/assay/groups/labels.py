"""One label format for a group: ``"sex=Female & race=Black"``, unambiguous even when a
value contains the separator (see `group_label` for the quoting rule)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from assay._validation import (
    InvalidParameterError,
)

LABEL_SEP = " & "

# Characters that would make a bare name or value ambiguous inside a label.
_SPECIAL = ("=", "&", '"', "\\")


def _label_part(text: str) -> str:
    """`text` bare when it cannot be misread, else as a JSON string (double-quoted)."""
    if (text == "" or text != text.strip() or not text.isprintable()
            or any(c in text for c in _SPECIAL)):
        return json.dumps(text, ensure_ascii=False)
    return text


def group_label(attributes: Sequence[str], values: Sequence[str]) -> str:
    """The one label format used in JSON, CLI and report.

    ``"sex=Female & race=Black"`` for an intersection, ``"sex=Female"`` for a single
    attribute.

    Quoting rule (keeps every label unambiguous and parseable by `parse_group_label`): a
    name or value is written bare unless it is empty, has leading or trailing whitespace,
    contains a non-printable character or any of ``= & " \\``; then it is written as a
    JSON string, e.g. ``'dept="R&D" & role="a=b"'``.

    Parameters
    ----------
    attributes : sequence of str
        Attribute (column) names, in order.
    values : sequence of str
        The group's value for each attribute.

    Returns
    -------
    str

    Examples
    --------
    >>> from assay.groups import group_label
    >>> group_label(("sex", "race"), ("F", "B"))
    'sex=F & race=B'
    >>> group_label(["dept"], ["R&D"])  # a separator inside a value: quoted
    'dept="R&D"'
    """
    if len(attributes) != len(values):
        raise InvalidParameterError(
            f"values must have one entry per attribute ({len(attributes)}). "
            f"Got {len(values)}.")
    return LABEL_SEP.join(f"{_label_part(str(a))}={_label_part(str(v))}"
                          for a, v in zip(attributes, values))


def _read_part(label: str, pos: int) -> tuple[str, int]:
    if label.startswith('"', pos):
        text, end = json.JSONDecoder().raw_decode(label, pos)
        return text, end
    end = pos
    while end < len(label) and label[end] not in "=&":
        end += 1
    if label[end - 1:end] == " " and label[end:end + 1] == "&":
        end -= 1  # the space belongs to the separator
    if end == pos:
        raise ValueError
    return label[pos:end], end


def parse_group_label(label: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Inverse of `group_label`: ``(attributes, values)`` of a label.

    Raises
    ------
    InvalidParameterError
        If `label` is not in the format written by `group_label`.

    Examples
    --------
    >>> from assay.groups import parse_group_label
    >>> parse_group_label('sex=F & dept="R&D"')
    (('sex', 'dept'), ('F', 'R&D'))
    """
    attributes, values = [], []
    pos = 0
    try:
        while True:
            name, pos = _read_part(label, pos)
            if not label.startswith("=", pos):
                raise ValueError
            value, pos = _read_part(label, pos + 1)
            attributes.append(name)
            values.append(value)
            if pos == len(label):
                break
            if not label.startswith(LABEL_SEP, pos):
                raise ValueError
            pos += len(LABEL_SEP)
    except (ValueError, IndexError):
        raise InvalidParameterError(
            f"label must be 'name=value' parts joined by {LABEL_SEP!r}. Got {label!r}."
        ) from None
    return tuple(attributes), tuple(values)


