"""Dataclass <-> JSON <-> JSON Schema, derived from the dataclass's type hints.

Every result payload is a dataclass; its JSON form, its reader and its JSON Schema all
follow from its fields' types, so a payload is written once (the dataclass) instead of
three times (the dataclass, a hand-written ``to_dict``/``from_dict`` and a schema file).

Converting a class takes three lines:

1. ``from assay._serial import Serial, meta`` and inherit ``Serial``
   (``class GroupAuc(Serial):``); delete the hand-written ``to_dict``/``from_dict``;
2. where the JSON form differs from the plain fields, say so on the field:
   ``field(default=None, metadata=meta(skip=True))`` (not written), ``meta(key="name")``,
   ``meta(null_nan=True)`` (NaN written as null), ``meta(dtype=bool)`` (array dtype),
   ``meta(encode=f, decode=g)`` (a custom pair), ``meta(schema={...})`` (schema extras);
3. where computed values are written too (or the key order is not the field order), list
   the written keys: ``__json_layout__ = ("risk", "figures", ("n", lambda s: ...))`` —
   a field name, a property or attribute name, or a ``(key, getter)`` pair. Computed
   keys are written but not read back. ``__json_required__ = ("groups",)`` makes keys of
   fields with a default required in the schema too (by default only fields without one
   and computed keys are).

Then compare ``json.dumps(x.to_dict())`` before and after on real objects.

Writing (`to_json`) is directed by the hints: a ``float`` field is written as
``float(x)`` (NaN stays NaN: `assay.report.result.json_clean` makes it null in files),
``int`` as ``int(x)``, arrays as lists of Python numbers, tuples as lists, float dict
keys as ``format(k, "g")``; ``Any`` values are made plain (numpy scalars, nested
payloads). Reading (`from_json`) reverses it: a null ``float`` reads as NaN, float keys
are parsed back, and a missing field with a default takes its default (older payloads).

Examples
--------
>>> from dataclasses import dataclass, field
>>> import numpy as np
>>> @dataclass
... class Point(Serial):
...     x: float
...     tags: list[str] = field(default_factory=list)
...     at: dict[float, int] = field(default_factory=dict)
...     cache: object = field(default=None, metadata=meta(skip=True))
...     __json_layout__ = ("x", ("double", lambda p: 2 * p.x), "tags", "at")
>>> p = Point(np.float32(0.5), ["a"], {0.01: 3})
>>> p.to_dict()
{'x': 0.5, 'double': 1.0, 'tags': ['a'], 'at': {'0.01': 3}}
>>> Point.from_dict({"x": None, "at": {"0.01": 3}})
Point(x=nan, tags=[], at={0.01: 3}, cache=None)
>>> json_schema(Point)["required"]
['x', 'double']
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, ClassVar, Literal, TypeVar, Union

import numpy as np

_META = "assay_json"
_T = TypeVar("_T", bound="Serial")
_SCHEMA_URL = "https://json-schema.org/draft/2020-12/schema"


def meta(*, key: str | None = None, skip: bool = False, null_nan: bool = False,
         dtype: Any = None, encode: Callable[[Any], Any] | None = None,
         decode: Callable[[Any], Any] | None = None,
         schema: Mapping[str, Any] | None = None,
         hint: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Field metadata that tells `to_json`, `from_json` and `json_schema` what differs.

    Parameters
    ----------
    key : str, optional
        JSON key (default: the field's name).
    skip : bool, default=False
        Neither written nor read (an in-memory object: a model, row predictions).
    null_nan : bool, default=False
        Non-finite floats (inside containers too) are written as null.
    dtype : numpy dtype, optional
        Dtype of an ``np.ndarray`` field when read (default float64).
    encode, decode : callable, optional
        Custom writer and reader of the field's value (the hints are then not used).
    schema : mapping, optional
        Merged into the field's generated schema (enum, minimum, description, ...).
    hint : callable, optional
        Returns the field's real type where the annotation cannot name it (``Any`` to
        break an import cycle): ``hint=lambda: _late_types()["front"]``; called once, on
        first use, when every module is loaded.
    """
    return {_META: {"key": key, "skip": skip, "null_nan": null_nan, "dtype": dtype,
                    "encode": encode, "decode": decode, "schema": dict(schema or {}),
                    "hint": hint}}


def _opts(f: dataclasses.Field) -> dict[str, Any]:
    return f.metadata.get(_META) or meta()[_META]


@cache
def _hints(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)  # each base's names resolved in its own module
    for f in dataclasses.fields(cls):
        late = _opts(f)["hint"]
        if late is not None:
            hints[f.name] = late()
    return hints


@cache
def _layout(cls: type) -> list[tuple[str, dataclasses.Field | None, Any]]:
    """(key, field or None, name or getter) of every written entry, in order."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    layout = getattr(cls, "__json_layout__", None)
    names = [f.name for f in fields.values()] if layout is None else list(layout)
    out: list[tuple[str, dataclasses.Field | None, Any]] = []
    for entry in names:
        if isinstance(entry, tuple):
            out.append((entry[0], None, entry[1]))
        elif entry in fields:
            f = fields[entry]
            opts = _opts(f)
            if not opts["skip"]:
                out.append((opts["key"] or f.name, f, f.name))
        else:
            out.append((entry, None, entry))
    return out


# --------------------------------------------------------------------------- writing


def _key(k: Any) -> Any:
    if isinstance(k, np.generic):
        k = k.item()
    return format(k, "g") if isinstance(k, float) else k


def _float(v: Any, null_nan: bool) -> float | None:
    v = float(v)
    return None if null_nan and not math.isfinite(v) else v


def _plain(value: Any, null_nan: bool = False) -> Any:
    """A value of unknown type made plain JSON, recursively."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, float | np.floating):
        return _float(value, null_nan)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return _plain(value.tolist(), null_nan)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json(value)
    if isinstance(value, Mapping):
        return {_key(k): _plain(v, null_nan) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, null_nan) for v in value]
    return value


def _encode(value: Any, hint: Any, null_nan: bool) -> Any:
    if value is None:
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is float:
        return _float(value, null_nan)
    if hint is int:
        return int(value)
    if hint is bool:
        return bool(value)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _encode(value, inner[0] if len(inner) == 1 else Any, null_nan)
    if origin in (list, tuple) and args:
        items = args if origin is tuple and Ellipsis not in args else [args[0]] * len(value)
        return [_encode(v, h, null_nan) for v, h in zip(value, items)]
    if origin in (dict, Mapping) and args:
        return {_key(k): _encode(v, args[1], null_nan) for k, v in value.items()}
    return _plain(value, null_nan)


def to_json(obj: Any) -> dict[str, Any]:
    """JSON-clean dict of a dataclass, over its written keys in order (see module doc)."""
    cls: Any = type(obj)
    hints = _hints(cls)
    out: dict[str, Any] = {}
    for key, f, source in _layout(cls):
        if f is None:
            value = source(obj) if callable(source) else getattr(obj, source)
            out[key] = _plain(value)
            continue
        opts = _opts(f)
        value = getattr(obj, f.name)
        out[key] = (opts["encode"](value) if opts["encode"] is not None
                    else _encode(value, hints[f.name], opts["null_nan"]))
    return out


# --------------------------------------------------------------------------- reading


def _parse_key(k: Any, hint: Any) -> Any:
    if hint is float:
        return float(k)
    if hint is int:
        return int(k)
    return k


def _decode(value: Any, hint: Any, dtype: Any = None) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is object or isinstance(hint, typing.TypeVar):
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _decode(value, inner[0], dtype) if len(inner) == 1 else value
    if hint is float:
        return math.nan if value is None else float(value)
    if hint is int:
        return int(value)
    if hint is bool:
        return bool(value)
    if hint is str:
        return value
    if hint is np.ndarray:
        return np.asarray(value, dtype=np.float64 if dtype is None else dtype)
    if origin is Literal:
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        reader = getattr(hint, "from_dict", None)
        return reader(value) if reader is not None else from_json(hint, value)
    if hint in (list, tuple, dict):
        return hint(value)
    if origin is list:
        return [_decode(v, args[0]) for v in value] if args else list(value)
    if origin is tuple:
        if not args:
            return tuple(value)
        items = [args[0]] * len(value) if Ellipsis in args else args
        return tuple(_decode(v, h) for v, h in zip(value, items))
    if origin in (dict, Mapping):
        if not args:
            return dict(value)
        return {_parse_key(k, args[0]): _decode(v, args[1]) for k, v in value.items()}
    return value


def from_json(cls: type, data: Mapping[str, Any]) -> Any:
    """Instance of dataclass `cls` from its JSON form (missing keys take their defaults)."""
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        opts = _opts(f)
        if opts["skip"] or not f.init:
            continue
        key = opts["key"] or f.name
        if key not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise KeyError(key)
            continue
        value = data[key]
        kwargs[f.name] = (opts["decode"](value) if opts["decode"] is not None
                          else _decode(value, hints[f.name], opts["dtype"]))
    return cls(**kwargs)


# --------------------------------------------------------------------------- schema


_NUMBER = {"type": ["number", "null"]}


def _schema(hint: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is float:
        return dict(_NUMBER)  # NaN and infinities are written as null
    if hint is int:
        return {"type": "integer"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is str:
        return {"type": "string"}
    if hint is np.ndarray:
        return {"type": "array"}
    if origin is Literal:
        return {"enum": list(args)}
    if origin in (Union, types.UnionType):
        inner = [_schema(a, defs) for a in args if a is not type(None)]
        if type(None) not in args:
            return {"anyOf": inner}
        if len(inner) == 1 and set(inner[0]) == {"type"}:
            kinds = inner[0]["type"]
            kinds = kinds if isinstance(kinds, list) else [kinds]
            return {"type": kinds + [k for k in ["null"] if k not in kinds]}
        return {"anyOf": [*inner, {"type": "null"}]}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        name = hint.__name__
        if name not in defs:
            defs[name] = {}  # placeholder: recursive types stop here
            defs[name] = _object_schema(hint, defs)
        return {"$ref": f"#/$defs/{name}"}
    if hint in (list, tuple) or origin in (list, tuple):
        if origin is tuple and args and Ellipsis not in args:
            return {"type": "array", "prefixItems": [_schema(a, defs) for a in args],
                    "minItems": len(args), "maxItems": len(args)}
        return {"type": "array", **({"items": _schema(args[0], defs)} if args else {})}
    if hint is dict or origin in (dict, Mapping):
        out: dict[str, Any] = {"type": "object"}
        if args and args[1] is not Any:
            out["additionalProperties"] = _schema(args[1], defs)
        return out
    return {}


def _object_schema(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    hints = _hints(cls)
    props: dict[str, Any] = {}
    required = []
    for key, f, _ in _layout(cls):
        if f is None:
            props[key] = {}
            required.append(key)
            continue
        opts = _opts(f)
        prop = {} if opts["encode"] is not None else _schema(hints[f.name], defs)
        if opts["null_nan"] and prop.get("type") == "array":
            prop.setdefault("items", dict(_NUMBER))
        prop.update(opts["schema"])
        props[key] = prop
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(key)
    required += [k for k in getattr(cls, "__json_required__", ()) if k not in required]
    out: dict[str, Any] = {"type": "object", "required": required, "properties": props}
    doc = (cls.__doc__ or "").strip().split("\n\n")[0]
    if doc and not doc.startswith(cls.__name__ + "("):  # not dataclass's generated one
        out = {"description": " ".join(doc.split()), **out}
    return out


def json_schema(cls: type, *, title: str | None = None,
                schema_id: str | None = None) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the JSON form of dataclass `cls`.

    Nested dataclasses are ``$defs`` entries named after their class. Required keys are
    the fields without a default plus computed keys and the class's
    ``__json_required__``; floats are ``number`` or ``null`` (NaN is written as null).
    """
    defs: dict[str, Any] = {}
    body = _object_schema(cls, defs)
    head: dict[str, Any] = {"$schema": _SCHEMA_URL}
    if schema_id is not None:
        head["$id"] = schema_id
    if title is not None:
        head["title"] = title
    return {**head, **body, **({"$defs": dict(sorted(defs.items()))} if defs else {})}


class Serial:
    """Mixin: ``to_dict`` / ``from_dict`` of a dataclass by `to_json` / `from_json`."""

    __json_layout__: ClassVar[tuple[Any, ...] | None] = None
    __json_required__: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-clean form (see `assay._serial`)."""
        return to_json(self)

    @classmethod
    def from_dict(cls: type[_T], d: Mapping[str, Any]) -> _T:
        """Inverse of `to_dict`; missing keys with a default take it."""
        return from_json(cls, d)
