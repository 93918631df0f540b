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
   and computed keys are). A ``(key, getter)`` entry whose key is a field's writes the
   getter's value there but keeps the field's reader and schema.

A few class flags cover the remaining shapes. ``__json_plain__ = True`` writes every
field as it is held (made plain: numpy scalars as Python numbers, tuples as lists)
instead of converting it to its annotated type, as ``dataclasses.asdict`` would, and
reads numbers back as written (an ε given as ``2`` stays ``2``);
``__json_omit_none__ = True`` leaves out keys whose value is None;
``__json_unwrap__ = "field"`` makes the class's JSON that one field's (a payload that
only wraps a result); ``__json_variants__ = ("task", {"regression": lambda: Other})``
reads a payload whose ``task`` is ``"regression"`` as ``Other`` (loaded on use);
``__json_name__ = "flag rule"`` refuses, by that name, a payload that is not a mapping
or has keys the class does not write; ``__json_error__ = "estimate must be ..."`` turns
a malformed payload (a key missing, a value of the wrong type) into one
`InvalidParameterError` with that message; ``__json_closed__ = True`` makes the schema
refuse keys the class does not write (``additionalProperties: false``). A
field's ``meta(key=("roc", "fpr"))`` writes it nested (``{"roc": {"fpr": ...}}``).

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
import sys
import types
import typing
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, ClassVar, Literal, TypeVar, Union, cast

_META = "assay_json"
_T = TypeVar("_T", bound="Serial")
_SCHEMA_URL = "https://json-schema.org/draft/2020-12/schema"


def meta(*, key: str | tuple[str, ...] | None = None, skip: bool = False,
         null_nan: bool = False,
         dtype: Any = None, encode: Callable[[Any], Any] | None = None,
         decode: Callable[[Any], Any] | None = None,
         schema: Mapping[str, Any] | None = None,
         hint: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Field metadata that tells `to_json`, `from_json` and `json_schema` what differs.

    Parameters
    ----------
    key : str or tuple of str, optional
        JSON key (default: the field's name); a tuple is a path, written nested
        (``("roc", "fpr")`` is ``{"roc": {"fpr": ...}}``).
    skip : bool, default=False
        Neither written nor read (an in-memory object: a model, row predictions).
    null_nan : bool, default=False
        Non-finite floats (inside containers and nested payloads too) are written as
        null.
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


#: Metadata of a field whose non-finite floats are written as null (the common case).
NULL_NAN = meta(null_nan=True)


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
def _layout(cls: type) -> list[tuple[Any, dataclasses.Field | None, Any]]:
    """(key, field or None, name or getter) of every written entry, in order."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    layout = getattr(cls, "__json_layout__", None)
    names = [f.name for f in fields.values()] if layout is None else list(layout)
    out: list[tuple[Any, dataclasses.Field | None, Any]] = []
    by_key = {(_opts(f)["key"] or f.name): f for f in fields.values()}
    for entry in names:
        if isinstance(entry, tuple):  # computed; a field's key keeps its reader and schema
            out.append((entry[0], by_key.get(entry[0]), entry[1]))
        elif entry in fields:
            f = fields[entry]
            opts = _opts(f)
            if not opts["skip"]:
                out.append((opts["key"] or f.name, f, f.name))
        else:
            out.append((entry, None, entry))
    return out


# --------------------------------------------------------------------------- writing


# numpy is not imported here (a section's options and payload types are light to import):
# a numpy value, or a hint naming numpy, exists only once numpy is loaded.


def _np() -> Any:
    return sys.modules.get("numpy")


def _is_numpy(value: Any) -> bool:
    np = _np()
    return np is not None and isinstance(value, np.generic | np.ndarray)


def _is_array_hint(hint: Any) -> bool:
    np = _np()
    return np is not None and hint is np.ndarray


def _key(k: Any) -> Any:
    if _is_numpy(k):
        k = k.item()
    return format(k, "g") if isinstance(k, float) else k


def _float(v: Any, null_nan: bool) -> float | None:
    v = float(v)
    return None if null_nan and not math.isfinite(v) else v


def _nulled(value: Any) -> Any:
    """`value` with every non-finite float inside written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nulled(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nulled(v) for v in value]
    return value


def _plain(value: Any, null_nan: bool = False) -> Any:
    """A value of unknown type made plain JSON, recursively."""
    if value is None or isinstance(value, str | bool):
        return value
    if _is_numpy(value):  # a scalar's Python value, an array's nested lists
        return _plain(value.tolist(), null_nan)
    if isinstance(value, float):
        return _float(value, null_nan)
    if hasattr(value, "to_dict"):
        return _nulled(value.to_dict()) if null_nan else value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _nulled(to_json(value)) if null_nan else to_json(value)
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


def _put(out: dict[str, Any], key: Any, value: Any) -> None:
    if isinstance(key, tuple):  # a path: nested objects
        for k in key[:-1]:
            out = out.setdefault(k, {})
        key = key[-1]
    out[key] = value


def to_json(obj: Any) -> dict[str, Any]:
    """JSON-clean dict of a dataclass, over its written keys in order (see module doc)."""
    cls: Any = type(obj)
    hints = _hints(cls)
    unwrap = getattr(cls, "__json_unwrap__", None)
    if unwrap is not None:
        return _encode(getattr(obj, unwrap), hints[unwrap], False)
    plain = getattr(cls, "__json_plain__", False)
    omit_none = getattr(cls, "__json_omit_none__", False)
    out: dict[str, Any] = {}
    for key, f, source in _layout(cls):
        opts = meta()[_META] if f is None else _opts(f)
        if f is None or callable(source):
            value = source(obj) if callable(source) else getattr(obj, source)
            written = _plain(value, opts["null_nan"])
        elif opts["encode"] is not None:
            written = opts["encode"](getattr(obj, f.name))
        elif plain:
            written = _plain(getattr(obj, f.name), opts["null_nan"])
        else:
            written = _encode(getattr(obj, f.name), hints[f.name], opts["null_nan"])
        if written is None and omit_none:
            continue
        _put(out, key, written)
    return out


# --------------------------------------------------------------------------- reading


def _parse_key(k: Any, hint: Any) -> Any:
    if hint is float:
        return float(k)
    if hint is int:
        return int(k)
    return k


def _decode(value: Any, hint: Any, dtype: Any = None, raw: bool = False) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is object or isinstance(hint, typing.TypeVar):
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _decode(value, inner[0], dtype, raw) if len(inner) == 1 else value
    if raw and hint in (float, int) and isinstance(value, int | float):
        return value  # a plain class holds its numbers as given
    if hint is float:
        return math.nan if value is None else float(value)
    if hint is int:
        return int(value)
    if hint is bool:
        return bool(value)
    if hint is str:
        return value
    if _is_array_hint(hint):
        np = _np()
        return np.asarray(value, dtype=np.float64 if dtype is None else dtype)
    if origin is Literal:
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        reader = getattr(hint, "from_dict", None)
        return reader(value) if reader is not None else from_json(hint, value)
    if hint in (list, tuple, dict):
        return hint(value)
    if origin is list:
        return [_decode(v, args[0], raw=raw) for v in value] if args else list(value)
    if origin is tuple:
        if not args:
            return tuple(value)
        items = [args[0]] * len(value) if Ellipsis in args else args
        return tuple(_decode(v, h, raw=raw) for v, h in zip(value, items))
    if origin in (dict, Mapping):
        if not args:
            return dict(value)
        return {_parse_key(k, args[0]): _decode(v, args[1], raw=raw) for k, v in value.items()}
    return value


def _read(f: dataclasses.Field, value: Any, hints: dict[str, Any], raw: bool = False) -> Any:
    opts = _opts(f)
    if opts["decode"] is not None:
        return opts["decode"](value)
    return _decode(value, hints[f.name], opts["dtype"], raw)


_ABSENT = object()


def _get(data: Any, key: Any) -> Any:
    for k in key if isinstance(key, tuple) else (key,):
        if not isinstance(data, Mapping) or k not in data:
            return _ABSENT
        data = data[k]
    return data


def from_json(cls: type, data: Mapping[str, Any]) -> Any:
    """Instance of dataclass `cls` from its JSON form (missing keys take their defaults)."""
    hints = _hints(cls)
    unwrap = getattr(cls, "__json_unwrap__", None)
    if unwrap is not None:
        f = next(f for f in dataclasses.fields(cls) if f.name == unwrap)
        return cls(**{unwrap: _read(f, data, hints)})
    raw = getattr(cls, "__json_plain__", False)
    kwargs = {}
    for f in dataclasses.fields(cls):
        opts = _opts(f)
        if opts["skip"] or not f.init:
            continue
        key = opts["key"] or f.name
        value = _get(data, key)
        if value is _ABSENT:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise KeyError(key)
            continue
        kwargs[f.name] = _read(f, value, hints, raw)
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
    if _is_array_hint(hint):
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
        unwrap = getattr(hint, "__json_unwrap__", None)
        if unwrap is not None:
            return _schema(_hints(hint)[unwrap], defs)
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
    unwrap = getattr(cls, "__json_unwrap__", None)
    if unwrap is not None:  # the one field's schema, inline
        inner = hints[unwrap]
        if isinstance(inner, type) and dataclasses.is_dataclass(inner):
            return _object_schema(inner, defs)
        return _schema(inner, defs)
    demanded = getattr(cls, "__json_required__", ())
    props: dict[str, Any] = {}
    required: list[str] = []
    for key, f, source in _layout(cls):
        path = key if isinstance(key, tuple) else (key,)
        where, need = props, required
        for k in path[:-1]:  # a nested key: its enclosing objects
            group = where.setdefault(k, {"type": "object", "required": [], "properties": {}})
            if k not in need and (k in demanded or where is not props):
                need.append(k)
            where, need = group["properties"], group["required"]
        last = path[-1]
        if f is None:
            where[last] = {}
            need.append(last)
            continue
        opts = _opts(f)
        prop = {} if opts["encode"] is not None else _schema(hints[f.name], defs)
        if opts["null_nan"] and prop.get("type") == "array":
            prop.setdefault("items", dict(_NUMBER))
        prop.update(opts["schema"])
        where[last] = prop
        if (callable(source) or len(path) > 1 or (
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)):
            need.append(last)
    required += [k for k in demanded if k not in required]
    out: dict[str, Any] = {"type": "object", "required": required}
    if getattr(cls, "__json_closed__", False):
        out["additionalProperties"] = False
    out["properties"] = props
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
    __json_plain__: ClassVar[bool] = False
    __json_omit_none__: ClassVar[bool] = False
    __json_unwrap__: ClassVar[str | None] = None
    __json_variants__: ClassVar[tuple[str, Mapping[Any, Callable[[], type]]] | None] = None
    __json_name__: ClassVar[str | None] = None
    __json_closed__: ClassVar[bool] = False
    __json_error__: ClassVar[str | None] = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-clean form (see `assay._serial`)."""
        return to_json(self)

    @classmethod
    def from_dict(cls: type[_T], d: Mapping[str, Any]) -> _T:
        """Inverse of `to_dict`; missing keys with a default take it. A payload whose
        ``__json_variants__`` key names a variant reads as that variant's type."""
        variants = cls.__dict__.get("__json_variants__")  # the class's own, not a base's
        if variants is not None and isinstance(d, Mapping):
            key, types = variants
            make = types.get(d.get(key))
            if make is not None:
                return make().from_dict(d)
        name = cls.__json_name__
        if name is not None:  # a closed mapping: anything else is refused by name
            from assay._validation import InvalidParameterError

            if not isinstance(d, Mapping):
                raise InvalidParameterError(
                    f"{name} must be a mapping. Got {type(d).__name__}.")
            keys = [key for key, _, _ in _layout(cast(type, cls))]
            unknown = sorted(set(d) - set(keys))
            if unknown:
                raise InvalidParameterError(
                    f"{name} keys must be among {', '.join(map(repr, keys))}. Got {unknown}.")
        if cls.__json_error__ is None:
            return from_json(cls, d)
        from assay._validation import AssayError, InvalidParameterError

        try:
            return from_json(cls, d)
        except AssayError:
            raise  # the class's own check, with its own message
        except (KeyError, TypeError, ValueError):
            raise InvalidParameterError(f"{cls.__json_error__}. Got {d!r}.") from None
