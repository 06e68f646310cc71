"""Spatio-temporal points from re-ID file names.

Every re-ID image carries an ST point: person id, camera, frame (time) and, for
Market-1501, a sequence (each sequence has its own clock). This module parses them
from the file-name conventions of the common benchmarks (Market-1501, DukeMTMC-reID,
GRID). No TFX, no TensorFlow.
"""
from __future__ import annotations

import os
import re
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from core.errors import InputError

# Nominal frame rates (frames per second) of the benchmark videos, so that time
# deltas can be reported in seconds. Market-1501's sequences were filmed at 25 fps,
# DukeMTMC at 60 fps; GRID's frame index counts 25 fps video frames.
FRAME_RATES: Dict[str, float] = {"market": 25.0, "duke": 60.0, "grid": 25.0,
                                 "manifest": 25.0}


class STPoint(NamedTuple):
    """Where and when one image was taken, and (if known) who it shows.

    pid: person id; -1 = junk, 0 = distractor (Market / GRID conventions).
    """
    pid: int
    camera: int
    frame: int
    sequence: int = 1


class UnrecognisedName(InputError):
    """A file name that fits none of the known conventions."""


# One extension or a doubled one, as in Market's `1488_c1s6_023021_00.jpg.jpg`.
_EXT = r"(?:\.[A-Za-z0-9]+)+"

_CONVENTIONS: Dict[str, Tuple[re.Pattern, str]] = {
    # 0002_c1s1_000451_03.jpg -> pid 2, camera 1, sequence 1, frame 451 (box 03)
    "market": (re.compile(r"^(?P<pid>-?\d+)_c(?P<camera>\d+)s(?P<sequence>\d+)_"
                          r"(?P<frame>\d+)_\d+" + _EXT + "$"),
               "PPPP_cCsS_FFFFFF_BB.jpg"),
    # 0005_c2_f0046985.jpg -> pid 5, camera 2, frame 46985 (one sequence)
    "duke": (re.compile(r"^(?P<pid>-?\d+)_c(?P<camera>\d+)_f(?P<frame>\d+)" + _EXT + "$"),
             "PPPP_cC_fFFFFFFF.jpg"),
    # 0001_1_25004_107_32_106_221.jpeg -> pid 1, camera 1, frame 25004, then the box
    "grid": (re.compile(r"^(?P<pid>-?\d+)_(?P<camera>\d+)_(?P<frame>\d+)"
                        r"(?:_\d+){4}" + _EXT + "$"),
             "PPPP_C_FFFFF_X_Y_W_H.jpeg"),
}

CONVENTIONS: Tuple[str, ...] = tuple(_CONVENTIONS)


def parse_name(name: str, convention: Optional[str] = None) -> STPoint:
    """Parse the ST point of one image from its file name (basename or path).

    With `convention=None` every known convention is tried in turn. A name that fits
    none raises `UnrecognisedName` naming the file and the conventions tried.
    """
    base = os.path.basename(name)
    if convention is not None and convention not in _CONVENTIONS:
        raise InputError(f"unknown naming convention {convention!r}; "
                         f"known: {', '.join(CONVENTIONS)}")
    tried = [convention] if convention else list(CONVENTIONS)
    for conv in tried:
        m = _CONVENTIONS[conv][0].match(base)
        if m:
            g = m.groupdict()
            return STPoint(pid=int(g["pid"]), camera=int(g["camera"]),
                           frame=int(g["frame"]),
                           sequence=int(g.get("sequence") or 1))
    shapes = "; ".join(f"{c} ({_CONVENTIONS[c][1]})" for c in tried)
    raise UnrecognisedName(f"{name!r}: file name fits no re-ID naming convention; "
                           f"tried {shapes}. Use a CSV manifest for other datasets.")


def detect_convention(names: Iterable[str]) -> str:
    """The first convention that parses the first name (raises if none does)."""
    for name in names:
        base = os.path.basename(name)
        for conv in CONVENTIONS:
            if _CONVENTIONS[conv][0].match(base):
                return conv
        parse_name(name)  # raises with the full message
    raise InputError("no file names given to detect a naming convention from")


def parse_names(names: Sequence[str], convention: Optional[str] = None,
                source: str = "") -> List[STPoint]:
    """Parse many names with one convention (detected from the first if None).

    Errors name `source` (e.g. the list file) and the line number.
    """
    if not names:
        return []
    conv = convention or detect_convention(names)
    points = []
    for i, name in enumerate(names, 1):
        try:
            points.append(parse_name(name, conv))
        except UnrecognisedName as e:
            where = f"{source}:{i}: " if source else ""
            raise UnrecognisedName(f"{where}{e}") from None
    return points


def read_name_list(path: str) -> List[str]:
    """One file name per line (blank lines ignored), as in `../shared/data/market`."""
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]
