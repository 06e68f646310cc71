"""The run log: what `tfusion run` keeps off the console, in a file of the run folder.

Inside `quiet_console(path)` the console shows progress (lines written to
`sys.stderr`), errors (log records of level ERROR and above) and warnings of this
project's own code (its loggers and its Python warnings). Everything else goes only to
the log file: file descriptors 1 and 2 and `sys.stdout` point at it, so the output of
subprocesses (the setuptools and pip runs that package and install the Trainers' user
modules), TensorFlow's C++ logs and anything printed to stdout land there; so do every log
record (TFX's absl INFO lines, Beam) and Python warnings (the Google clients'
FutureWarnings). Progress lines are written to both. On failure the traceback is
written to the log and the log is named on the console; the exception goes on.
`--verbose` (or TFUSION_VERBOSE=1) skips all this: everything stays on the console.
"""
from __future__ import annotations

import io
import logging
import os
import sys
import time
import traceback
import warnings
from contextlib import contextmanager, nullcontext
from typing import ContextManager, Iterator, Optional, TextIO

LOG_NAME = "run.log"
VERBOSE_ENV = "TFUSION_VERBOSE"
# packages whose warnings concern the user's data or run
OWN_PACKAGES = ("core", "schemas", "pipeline", "st_model", "trainer", "synth")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WARNINGS_LOGGER = "py.warnings"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONSOLE_FORMAT = "%(levelname)s %(name)s: %(message)s"


def verbose_from_env() -> bool:
    """Whether TFUSION_VERBOSE asks for everything on the console."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def is_own(path: str) -> bool:
    """Whether a source file belongs to this project's packages."""
    path = os.path.abspath(path)
    return any(path.startswith(os.path.join(REPO, p) + os.sep) for p in OWN_PACKAGES)


def on_console(record: logging.LogRecord) -> bool:
    """Errors from anywhere; warnings only from this project's loggers or source files."""
    if record.levelno >= logging.ERROR:
        return True
    if record.levelno < logging.WARNING:
        return False
    if record.name == WARNINGS_LOGGER:
        return is_own(getattr(record, "warning_file", ""))
    return record.name.split(".")[0] in OWN_PACKAGES


class Tee(io.TextIOBase):
    """A text stream writing to each of `streams`; its fileno is the last one's. After
    `release(stream)` it writes to `stream` only, for whoever kept a reference."""

    def __init__(self, *streams: TextIO):
        super().__init__()
        self.streams = list(streams)

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()

    def fileno(self) -> int:
        return self.streams[-1].fileno()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.streams[0], "encoding", None) or "utf-8"

    def release(self, stream: TextIO) -> None:
        self.streams = [stream]


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """warnings.showwarning as a log record that knows the warning's source file."""
    text = warnings.formatwarning(message, category, filename, lineno, line="")
    logging.getLogger(WARNINGS_LOGGER).warning("%s", text.strip(),
                                               extra={"warning_file": filename})


def _handler(stream: TextIO, fmt: str, keep=None) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(fmt))
    if keep is not None:
        handler.addFilter(keep)
    return handler


@contextmanager
def quiet_console(path: str, label: str = "tfusion run") -> Iterator[str]:
    """Route what is not progress, a result or a real problem to `path` (appended);
    yields the path. On an exception the log gets its traceback and the console the
    line `<label>: full log: <path>`; the exception propagates."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    log = open(path, "a", buffering=1, encoding="utf-8", errors="backslashreplace")
    log.write(f"==== {label} {time.strftime('%Y-%m-%d %H:%M:%S')} (pid {os.getpid()}) ====\n")
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    console = open(os.dup(saved[2]), "w", buffering=1, encoding=sys.stderr.encoding or "utf-8",
                   errors="backslashreplace")
    root = logging.getLogger()
    old_handlers, old_show = root.handlers[:], warnings.showwarning
    old_stdout, old_stderr = sys.stdout, sys.stderr
    ours = [_handler(log, LOG_FORMAT), _handler(console, CONSOLE_FORMAT, on_console)]
    for handler in old_handlers:
        root.removeHandler(handler)
    for handler in ours:
        root.addHandler(handler)
    warnings.showwarning = _show_warning
    tees = (Tee(log), Tee(console, log))
    sys.stdout, sys.stderr = tees
    for fd in (1, 2):
        os.dup2(log.fileno(), fd)
    failed: Optional[BaseException] = None
    try:
        yield path
    except BaseException as e:
        failed = e
        log.write("".join(traceback.format_exception(type(e), e, e.__traceback__)))
        raise
    finally:
        for stream in (sys.__stdout__, sys.__stderr__, old_stdout, old_stderr):
            try:
                stream.flush()
            except (ValueError, OSError, AttributeError):  # closed or absent
                pass
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        tees[0].release(old_stdout)
        tees[1].release(old_stderr)
        sys.stdout, sys.stderr, warnings.showwarning = old_stdout, old_stderr, old_show
        for handler in ours:
            root.removeHandler(handler)
        for handler in old_handlers:
            root.addHandler(handler)
        console.close()
        log.close()
        if failed is not None:
            print(f"{label}: full log: {path}", file=sys.stderr, flush=True)


def console_for(output_dir: str, verbose: bool, label: str = "tfusion run"
                ) -> ContextManager[Optional[str]]:
    """`quiet_console` on OUTPUT/run.log, or nothing when verbose (yields None then)."""
    if verbose:
        return nullcontext(None)
    return quiet_console(os.path.join(output_dir, LOG_NAME), label)
