"""Re-ID dataset folders listed as train / query / gallery splits.

A dataset folder is in the Market/Duke layout, TFusion's layout, or holds a generic
CSV manifest (any other dataset). Image names are parsed with core.names. Folders and
manifests are read through Beam's FileSystems (core.files), so a dataset on a bucket
(`gs://...`, any registered Beam filesystem) lists like a local one. No TFX, no
TensorFlow.
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from core.errors import InputError
from core.files import is_file, is_folder, is_remote, join_path, list_files
from core.names import STPoint, detect_convention, parse_names

SPLITS: Tuple[str, ...] = ("train", "query", "gallery")

IMAGE_EXTENSIONS: Tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")


class ManifestError(InputError):
    """A manifest row that cannot be read."""


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
