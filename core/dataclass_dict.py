"""Settings dataclasses from and to JSON-able dicts: the one convention of every config.

`from_dict` rejects unknown keys (naming where they came from and the known keys),
names a renamed key's new name, turns lists into tuples where the field is a tuple,
and casts numbers and "true"/"false" strings to the type of the field's default.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Optional, Tuple, Type, TypeVar

from core.errors import InputError

T = TypeVar("T")


def field_defaults(cls: type) -> Dict[str, Any]:
    """{field name: default value} of a dataclass (default_factory called)."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            out[f.name] = f.default_factory()  # type: ignore[misc]
    return out


def _coerce(name: str, value: Any, default: Any, where: str, error: Type[Exception]) -> Any:
    if value is None or dataclasses.is_dataclass(default):
        return value
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                return value.lower() in ("1", "true", "yes", "on")
            return value
        if isinstance(default, tuple):
            return tuple(value)
        if isinstance(default, (int, float)) and not isinstance(value, bool):
            return type(default)(value)
    except (TypeError, ValueError):
        raise error(f"{where}: {name} = {value!r} is not a {type(default).__name__}") from None
    return value


def from_dict(cls: Type[T], values: Optional[Mapping[str, Any]], where: str,
              error: Type[Exception] = InputError, passthrough: Tuple[str, ...] = (),
              renamed: Optional[Mapping[str, str]] = None, none_is_default: bool = False
              ) -> T:
    """`cls(**values)`: unknown keys are an error naming `where` and the known keys,
    a key in `renamed` (old -> new key, or a sentence) an error naming the new key; keys in
    `passthrough` are accepted and dropped; with none_is_default a None value leaves
    the field at its default."""
    values = dict(values or {})
    names = {f.name for f in dataclasses.fields(cls)}
    for old, new in (renamed or {}).items():
        if old in values:
            raise error(f"{where}: {old!r} is now "
                        f"{repr(new) if new.isidentifier() else new}")
    unknown = sorted(set(values) - names - set(passthrough))
    if unknown:
        raise error(f"{where}: unknown key(s) {unknown}; known: {sorted(names)}")
    defaults = field_defaults(cls)
    kwargs = {k: _coerce(k, v, defaults.get(k), where, error)
              for k, v in values.items()
              if k in names and not (none_is_default and v is None)}
    return cls(**kwargs)


def to_dict(obj: Any) -> Dict[str, Any]:
    """JSON-able fields of a dataclass (nested ones as dicts, tuples as lists)."""
    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return to_dict(v)
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
