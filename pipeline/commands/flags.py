"""CLI flags generated from settings dataclasses (st_model.config.STConfig, FusionRule,
trainer.config's training configs): one flag per field, `--field-name`, with the field's
`metadata["help"]` and default.

Flags default to None ("not given"), so a command applies only what the user typed
over its preset or config file (`given_values`). Field metadata may add `choices`,
a `group` (argument group title) and a `none_flag` (flag, help) that sets the field
to None (e.g. --hard-top-k for sharpness). A renamed field's old flag is an error
naming the new one. A bool field that defaults to True gets `--no-field-name`; metadata
`flag` names a flag other than the field, `metavar` names a tuple's values, and an `Any`
field takes the type of its default.
"""
from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, Dict, Iterable, Mapping, Optional

_NONE = object()   # what a none_flag stores


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _value_type(hint: Any) -> Any:
    """int / float / str of a field's type hint (Optional[...] unwrapped)."""
    if typing.get_origin(hint) is typing.Union:
        return _value_type([a for a in typing.get_args(hint) if a is not type(None)][0])
    return hint


def argument_group(parser: argparse.ArgumentParser, title: str) -> Any:
    """The parser's argument group `title`, created when missing."""
    for group in parser._action_groups:
        if group.title == title:
            return group
    return parser.add_argument_group(title)


def _renamed(new: str):
    class Renamed(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            parser.error(f"{option_string} is now {_flag(new)}")
    return Renamed


def add_settings_flags(parser: argparse.ArgumentParser, cls: type, title: str,
                       renamed: Optional[Mapping[str, str]] = None,
                       skip: Iterable[str] = ()) -> None:
    """One flag per field of dataclass `cls` (but those in `skip`), in argument group
    `title` (or the field's own group); `renamed` (old field -> new field) adds hidden
    old flags."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        meta = f.metadata
        group = argument_group(parser, meta.get("group", title))
        help_text = meta["help"]
        if f.default is not None and not isinstance(f.default, bool):
            shown = " ".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
            help_text += f" (default {shown})"
        kind = _value_type(hints[f.name])
        if kind is Any:
            kind = type(f.default)
        flag = _flag(meta.get("flag", f.name))
        options: Dict[str, Any] = {"dest": f.name, "default": None,
                                   "help": help_text.replace("%", "%%")}
        if kind is bool and f.default is True:
            flag = _flag("no_" + f.name)
            options.update(action="store_const", const=False,
                           help="turn off: " + options["help"])
        elif kind is bool:
            options.update(action="store_true")
        elif isinstance(f.default, tuple):
            options.update(nargs=len(f.default), type=typing.get_args(kind)[0],
                           metavar=meta.get("metavar", f.name.upper()))
        else:
            options.update(type=kind, choices=meta.get("choices"))
        group.add_argument(flag, **options)
        if "none_flag" in meta:
            flag, help_none = meta["none_flag"]
            group.add_argument(flag, dest=f.name, action="store_const", const=_NONE,
                               help=help_none)
    for old, new in (renamed or {}).items():
        parser.add_argument(_flag(old), nargs="?", action=_renamed(new),
                            help=argparse.SUPPRESS)


def given_values(args: argparse.Namespace, cls: type) -> Dict[str, Any]:
    """{field: value} of the flags of `cls` the user gave (a none_flag gives None)."""
    out = {}
    for f in dataclasses.fields(cls):
        value = getattr(args, f.name, None)
        if value is _NONE:
            out[f.name] = None
        elif value is not None:
            out[f.name] = tuple(value) if isinstance(value, list) else value
    return out
