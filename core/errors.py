"""The one exception of expected failures, and checks shared by every command.

`InputError` is raised for a bad input, a missing or unreadable file, a wrong model or
a misspelt option: its message names the file (or option) and the problem. The
`tfusion` CLI prints it as one line `tfusion <command>: error: <message>` and exits
with status 2; any other exception is a bug and keeps its traceback (status 1).
It subclasses ValueError so callers that catch ValueError keep working.
"""
from __future__ import annotations

import os
import re


class InputError(ValueError):
    """An expected failure whose message names the file and the problem."""


def op_error_text(error: Exception) -> str:
    """The readable part of a TensorFlow OpError (no function-node or op suffixes)."""
    text = (getattr(error, "message", None) or str(error)).splitlines()[0]
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
    return re.sub(r"\s*\[Op:[^\]]*\].*$", "", text).strip()


def check_output_dir(path: str, what: str = "output folder") -> str:
    """`path` unless it is an existing file (checked before any work is done)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise InputError(f"{path}: {what} is an existing file, not a folder")
    return path


def read_json_object(path: str, what: str, error: type = InputError) -> dict:
    """The JSON object in file `path` (a settings file); `error` names the file and
    says whether it could not be read, is not JSON, or holds no object."""
    import json
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
    except OSError as e:
        raise error(f"{path}: cannot read the {what} ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise error(f"{path}: not valid JSON ({e})") from None
    if not isinstance(values, dict):
        raise error(f"{path}: the {what} must be a JSON object")
    return values
