"""Typed parsing of nested dicts into frozen dataclasses, with one-line errors.

Each dataclass field may carry `metadata={"check": (predicate, "expected …")}`.
`from_dict` rejects unknown keys, wrong types and out-of-range values and names
the dotted path: `dip.lr: expected a number > 0, got -0.01`. The project's one
validator style: trial configs, sweep files and their claims all parse through it.
Field types: bool, int, float, str, Literal, X | None, tuple[X, ...], a nested
dataclass (a section), `dict` (any mapping, checked by the field's check) and `Any`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal, get_args, get_origin

from .errors import ConfigError, shown as shown_value


def spec(default: Any, check: tuple | None = None, doc: str = "") -> Any:
    """A dataclass field with a default, an optional range check and a doc line."""
    meta = {"doc": doc}
    if check is not None:
        meta["check"] = check
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for sequence defaults")
    return dataclasses.field(default=default, metadata=meta)


def section(factory: type, doc: str = "", optional: bool = False) -> Any:
    """A nested config section (another dataclass)."""
    return dataclasses.field(default_factory=factory, metadata={"doc": doc, "optional": optional})


# Common range checks: (predicate on a non-None value, what was expected).
POSITIVE = (lambda v: v > 0, "a number > 0")
POSITIVE_INT = (lambda v: v > 0, "an integer > 0")
NON_NEGATIVE = (lambda v: v >= 0, "a number >= 0")
UNIT_OPEN = (lambda v: 0 < v < 1, "a number in (0, 1)")


def _describe(tp: Any) -> str:
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return "one of " + " | ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _describe(inner[0]) + " or null"
    if origin is tuple:
        return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {dict: "a mapping", int: "an integer", float: "a finite number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _fail(path: str, expected: str, value: Any) -> ConfigError:
    shown = "null" if value is None else shown_value(value)
    return ConfigError(f"{path}: expected {expected}, got {shown}")


def coerce(value: Any, tp: Any, path: str) -> Any:
    """Convert a YAML/JSON value to type `tp` or raise a ConfigError naming `path`."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if value is None:
            raise _fail(path, _describe(tp), value)
        return coerce(value, inner[0], path)
    if origin is Literal:
        if value in args and not isinstance(value, bool):
            return value
        raise _fail(path, _describe(tp), value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _fail(path, _describe(tp), value)
        if dataclasses.is_dataclass(args[0]):
            return tuple(from_dict(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        return tuple(coerce(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
    if tp is Any:
        return value
    if tp is dict:
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
        raise _fail(path, "a mapping", value)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    raise _fail(path, _describe(tp), value)


def _check(value: Any, check: tuple | None, path: str) -> None:
    if check is None or value is None:
        return
    predicate, expected = check
    items = value if isinstance(value, tuple) else (value,)
    for i, v in enumerate(items):
        if not predicate(v):
            where = f"{path}[{i}]" if isinstance(value, tuple) else path
            raise _fail(where, expected, v)


def from_dict(cls: type, data: Any, path: str = "") -> Any:
    """Build dataclass `cls` from a (partial) mapping; missing keys take defaults."""
    if not isinstance(data, dict):
        raise _fail(path or "config", "a mapping", data)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(f"{where}: unknown key; expected one of {', '.join(fields)}")
    values = {}
    for name, f in fields.items():
        if name not in data:
            continue
        where = f"{path}.{name}" if path else name
        tp = hints[name]
        if dataclasses.is_dataclass(_section_type(tp)):
            if data[name] is None and f.metadata.get("optional"):
                values[name] = None
            else:
                values[name] = from_dict(_section_type(tp), data[name], where)
            continue
        values[name] = coerce(data[name], tp, where)
        _check(values[name], f.metadata.get("check"), where)
    return cls(**values)


def _section_type(tp: Any) -> Any:
    args = [a for a in get_args(tp) if a is not type(None)]
    return args[0] if get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1 else tp


def to_dict(obj: Any) -> Any:
    """Dataclass -> plain JSON-able dict (tuples become lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj

