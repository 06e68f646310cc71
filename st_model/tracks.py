"""Spatio-temporal points from re-ID file names, and re-ID dataset folders.

Every re-ID image carries an ST point: person id, camera, frame (time) and, for
Market-1501, a sequence (each sequence has its own clock). This module parses them
from the file-name conventions of the common benchmarks, reads a generic CSV
manifest for any other dataset, and lists a dataset folder as train / query /
gallery splits. Folders and manifests are read through Beam's FileSystems, so a
dataset on a bucket (`gs://...`, any registered Beam filesystem) lists like a local
one. No TFX, no TensorFlow.
"""
from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from st_model.errors import InputError

SPLITS: Tuple[str, ...] = ("train", "query", "gallery")

IMAGE_EXTENSIONS: Tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")

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


class ManifestError(InputError):
    """A manifest row that cannot be read."""


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


# ---------------------------------------------------------------------------
# Dataset folders

@dataclass(frozen=True)
class ImageRecord:
    """One image of a dataset: where it is, its ST point and its split."""
    path: str
    name: str
    point: STPoint
    split: str


# Folder names of each split, per dataset layout. DukeMTMC-reID uses Market's.
LAYOUTS: Dict[str, Dict[str, str]] = {
    "market": {"train": "bounding_box_train", "query": "query",
               "gallery": "bounding_box_test"},
    "tfusion": {"train": "train", "query": "probe", "gallery": "test"},
}
MANIFEST_NAME = "manifest.csv"


@dataclass
class DatasetListing:
    """The images of a dataset folder, by split, and what was skipped."""
    root: str
    layout: str
    convention: str
    splits: Dict[str, List[ImageRecord]]
    skipped: List[str]  # non-image files found in split folders (e.g. Thumbs.db)

    def counts(self) -> Dict[str, int]:
        return {s: len(r) for s, r in self.splits.items()}


# ---------------------------------------------------------------------------
# Listing through Beam's FileSystems (local folders, gs://, any registered scheme)

def is_remote(path: str) -> bool:
    """True for a path with a scheme (`gs://...`): never joined onto a local root."""
    from apache_beam.io.filesystems import FileSystems
    return FileSystems.get_scheme(path) is not None


def join_path(root: str, *parts: str) -> str:
    """`root/part/...` for a local or remote root."""
    from apache_beam.io.filesystems import FileSystems
    return FileSystems.join(root, *parts)


def glob_escape(path: str) -> str:
    """`path` with Beam's glob characters matched literally."""
    return re.sub(r"([*?\[])", r"[\1]", path)


def list_files(folder: str, recursive: bool = False) -> list:
    """FileMetadata (path, size_in_bytes, last_updated_in_seconds) of the files in
    `folder` (and its sub-folders when `recursive`), sorted by path; [] when none."""
    from apache_beam.io.filesystems import FileSystems
    pattern = join_path(glob_escape(folder.rstrip("/")), "**" if recursive else "*")
    found = FileSystems.match([pattern])[0].metadata_list
    return sorted(found, key=lambda m: m.path)


def is_folder(path: str) -> bool:
    """A local folder, or a remote prefix that holds at least one file."""
    from apache_beam.io.filesystems import FileSystems
    if not is_remote(path):
        return os.path.isdir(path)
    pattern = join_path(glob_escape(path.rstrip("/")), "**")
    return bool(FileSystems.match([pattern], limits=[1])[0].metadata_list)


def is_file(path: str) -> bool:
    from apache_beam.io.filesystems import FileSystems
    return os.path.isfile(path) if not is_remote(path) else FileSystems.exists(path)


def detect_layout(root: str) -> str:
    """'market', 'tfusion' or 'manifest', from what the folder holds."""
    if not is_folder(root):
        raise FileNotFoundError(f"{root}: dataset folder does not exist")
    if is_file(join_path(root, MANIFEST_NAME)):
        return "manifest"
    for layout, folders in LAYOUTS.items():
        if all(is_folder(join_path(root, d)) for d in folders.values()):
            return layout
    wanted = "; ".join(f"{k}: {', '.join(v.values())}" for k, v in LAYOUTS.items())
    raise FileNotFoundError(
        f"{root}: not a re-ID dataset folder; expected the sub-folders of one layout "
        f"({wanted}) or a {MANIFEST_NAME}")


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def read_dataset_folder(root: str, layout: Optional[str] = None,
                        convention: Optional[str] = None) -> DatasetListing:
    """List a dataset folder (Market/Duke, TFusion or manifest layout) by split.

    Images are sorted by name within each split. Non-image files are skipped and
    listed in `skipped`; an image whose name fits no convention is an error.
    """
    if not is_remote(root):
        root = os.path.abspath(root)
    layout = layout or detect_layout(root)
    if layout == "manifest":
        return read_manifest(join_path(root, MANIFEST_NAME))
    if layout not in LAYOUTS:
        raise InputError(f"unknown dataset layout {layout!r}; known: "
                         f"{', '.join(list(LAYOUTS) + ['manifest'])}")
    splits: Dict[str, List[ImageRecord]] = {}
    skipped: List[str] = []
    conv = convention
    for split, folder in LAYOUTS[layout].items():
        d = join_path(root, folder)
        if not is_folder(d):
            raise FileNotFoundError(f"{d}: missing {split} folder of the {layout} layout")
        paths = [m.path for m in list_files(d)]
        skipped += [p for p in paths if not _is_image(p)]
        images = [p for p in paths if _is_image(p)]
        if images and conv is None:
            conv = detect_convention(images[:1])
        points = parse_names(images, conv)
        splits[split] = [ImageRecord(p, p.rsplit("/", 1)[-1], pt, split)
                         for p, pt in zip(images, points)]
    return DatasetListing(root, layout, conv or "market", splits, skipped)


def read_manifest(path: str) -> DatasetListing:
    """Read a CSV manifest: header with path, camera, frame[, sequence][, pid][, split].

    The manifest and its images may be local or remote (`gs://...`); relative paths
    are relative to the manifest's folder, paths with a scheme or absolute ones are
    kept. Rows without a split go to 'train'. Errors name the file and line.
    """
    from apache_beam.io.filesystems import FileSystems
    if not is_remote(path):
        path = os.path.abspath(path)
    root = FileSystems.split(path)[0]
    splits: Dict[str, List[ImageRecord]] = {s: [] for s in SPLITS}
    with FileSystems.open(path) as raw, io.TextIOWrapper(raw, encoding="utf-8",
                                                         newline="") as f:
        reader = csv.DictReader(f)
        fields = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in ("path", "camera", "frame") if c not in fields]
        if missing:
            raise ManifestError(f"{path}: header lacks column(s) {', '.join(missing)}; "
                                f"expected path, camera, frame[, sequence][, pid][, split]")
        for line, row in enumerate(reader, 2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            try:
                point = STPoint(pid=int(row.get("pid") or -1),
                                camera=int(row["camera"]), frame=int(row["frame"]),
                                sequence=int(row.get("sequence") or 1))
            except ValueError as e:
                raise ManifestError(f"{path}:{line}: bad number in row {row}: {e}") from None
            split = row.get("split") or "train"
            if split not in splits:
                raise ManifestError(f"{path}:{line}: split {split!r} is not one of "
                                    f"{', '.join(SPLITS)}")
            p = row["path"]
            if not p:
                raise ManifestError(f"{path}:{line}: empty path")
            full = p if is_remote(p) or os.path.isabs(p) else join_path(root, p)
            splits[split].append(ImageRecord(full, p.rsplit("/", 1)[-1], point, split))
    return DatasetListing(root, "manifest", "manifest", splits, [])
