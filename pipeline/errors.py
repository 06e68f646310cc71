"""The error contract of every `tfusion` command.

An expected failure (core.errors.InputError and its subclasses, or a file-system
error naming a path) ends as one line on stderr,

    tfusion <command>: error: <file>: <problem>

and exit status 2 (argparse's status for bad flags). Anything else is a bug: it keeps
its traceback and the process exits with status 1.
"""
from __future__ import annotations

import sys

from core.errors import InputError

EXIT_EXPECTED = 2

# File-system errors a user can cause with a path argument.
PATH_ERRORS = (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
               PermissionError)
EXPECTED = (InputError,) + PATH_ERRORS


def describe(error: BaseException) -> str:
    """One line: `<file>: <problem>` (OS errors get their path put first)."""
    if isinstance(error, OSError) and error.filename and error.strerror:
        text = f"{error.filename}: {error.strerror}"
    else:
        text = str(error)
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def report(command: str, error: BaseException) -> int:
    """Print the one-line message of an expected failure; returns the exit status."""
    print(f"tfusion {command}: error: {describe(error)}", file=sys.stderr, flush=True)
    return EXIT_EXPECTED
