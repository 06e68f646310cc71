"""A gallery index: embedded gallery rows sorted by (ST node, frame), so the rows a
query can match in a node pair's time window are one contiguous slice.

Folder layout (local):
    INDEX/index.json        header: format, version, the bundle's fingerprint, row
                            count, dimension, frame range, per-node row offsets
    INDEX/rows/             the rows as feature shards (core/features.py),
                            sorted by (node, frame, name)
    INDEX/order.npz         name_rank int64 [N]: each row's position in name order
                            (ties in score are broken by name, as the evaluation
                            breaks them by gallery index)
Node ids are those of the ST model (st_model/nodes.py); rows in nodes the model
never saw share the last group (node M).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Dict, List

import numpy as np

from core.errors import InputError
from core.features import FeatureSet, load_features, save_feature_shards
from st_model.st_artifact import STModel

FORMAT = "tfusion-gallery-index"
VERSION = 1
HEADER = "index.json"
ROWS = "rows"
ORDER = "order.npz"
SHARD_ROWS = 65536


class GalleryIndexError(InputError):
    """An index folder that cannot be used."""


def sort_order(model: STModel, gallery: FeatureSet) -> np.ndarray:
    """Row permutation sorting `gallery` by (node, frame, name); unseen nodes last."""
    node = model.nodes.lookup(gallery.camera, gallery.sequence)
    node = np.where(node < 0, model.nodes.size, node)
    name_rank = np.argsort(np.argsort(gallery.names, kind="stable"), kind="stable")
    return np.lexsort((name_rank, gallery.frame, node))


@dataclass
class GalleryIndex:
    """A loaded index: rows sorted by (node, frame), node offsets, name ranks."""
    rows: FeatureSet
    node: np.ndarray          # int64 [N] node id of each row (M = unseen)
    node_start: np.ndarray    # int64 [M + 2] rows of node b are node_start[b]:node_start[b+1]
    name_rank: np.ndarray     # int64 [N]
    header: Dict
    path: str = ""

    @property
    def frame_range(self) -> List[int]:
        return [int(self.rows.frame.min()), int(self.rows.frame.max())]


def build_index(model: STModel, gallery: FeatureSet, fingerprint: str,
                extra: Dict) -> GalleryIndex:
    """Sort `gallery` for `model` and compute the header (nothing written)."""
    order = sort_order(model, gallery)
    rows = gallery.subset(order)
    rows.name = gallery.names[order]
    m = model.nodes.size
    node = model.nodes.lookup(rows.camera, rows.sequence)
    node = np.where(node < 0, m, node).astype(np.int64)
    node_start = np.searchsorted(node, np.arange(m + 2)).astype(np.int64)
    name_rank = np.argsort(np.argsort(rows.names, kind="stable"), kind="stable")
    header = {"format": FORMAT, "version": VERSION, "bundle_fingerprint": fingerprint,
              "rows": len(rows), "dim": rows.dim, "frame_range": [
                  int(rows.frame.min()), int(rows.frame.max())],
              "nodes": model.nodes.labels(), "node_start": node_start.tolist(),
              "unseen_rows": int((node == m).sum()), **extra}
    return GalleryIndex(rows, node, node_start, name_rank.astype(np.int64), header)


def write_index(index: GalleryIndex, folder: str) -> str:
    """Write the index files into `folder` (created if missing; the caller renames a
    staging folder into place, so a failed write leaves no index)."""
    os.makedirs(folder, exist_ok=True)
    save_feature_shards(index.rows, os.path.join(folder, ROWS), SHARD_ROWS)
    np.savez(os.path.join(folder, ORDER), name_rank=index.name_rank)
    with open(os.path.join(folder, HEADER), "w") as f:
        json.dump(index.header, f, indent=2)
    index.path = folder
    return folder


def load_index(folder: str) -> GalleryIndex:
    """Read an index written by save_index; errors name the folder."""
    path = os.path.join(folder, HEADER)
    if not os.path.isfile(path):
        raise GalleryIndexError(f"{folder}: not a gallery index (no {HEADER}; build one with "
                          f"`tfusion index`)")
    try:
        with open(path) as f:
            header = json.load(f)
    except ValueError as e:
        raise GalleryIndexError(f"{path}: not JSON ({e})") from None
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise GalleryIndexError(f"{path}: unsupported index format {header.get('format')!r} "
                          f"v{header.get('version')!r}; this code reads {FORMAT} v{VERSION}")
    rows = load_features(os.path.join(folder, ROWS))
    with np.load(os.path.join(folder, ORDER)) as z:
        name_rank = z["name_rank"]
    node_start = np.asarray(header["node_start"], np.int64)
    if len(rows) != header["rows"] or node_start[-1] != len(rows):
        raise GalleryIndexError(f"{folder}: holds {len(rows)} rows, its header says "
                          f"{header['rows']}")
    node = np.repeat(np.arange(node_start.size - 1), np.diff(node_start))
    return GalleryIndex(rows, node.astype(np.int64), node_start, name_rank, header, folder)
