"""ST nodes: where an image's clock and place are the same.

An ST histogram is kept per ordered node pair (a, b) over the time deltas
Δ = t_j − t_i of image pairs i ∈ a, j ∈ b.

- mode ``camera_sequence`` (default): a node is a (camera, sequence). Each Market
  sequence has its own clock, so a cross-sequence delta compares two clocks; the
  histogram of ((c1, s1), (c2, s2)) learns whatever offset those clocks have, and no
  true pair is out of reach.
- mode ``tfusion`` (faithful to the paper's code): a node is a camera, and only
  pairs of the same sequence are in reach; cross-sequence pairs are dropped from the
  histograms and get P_st = 0 when scoring.

In both modes pairs of the same camera are never modelled (the re-ID protocol never
counts them as matches); their ST factor is neutral in ``camera_sequence`` mode and
out of reach in ``tfusion`` mode.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np


MODES: Tuple[str, ...] = ("camera_sequence", "tfusion")


@dataclass(frozen=True)
class NodeIndex:
    """The ST nodes of a train split: node id -> (camera, sequence or 0)."""
    mode: str
    cameras: np.ndarray   # int64 [M]
    sequences: np.ndarray  # int64 [M]; 0 in tfusion mode (node = camera)

    @property
    def size(self) -> int:
        return int(self.cameras.shape[0])

    def labels(self) -> List[str]:
        """Human-readable node names, e.g. 'c1s2' or 'c1'."""
        if self.mode == "tfusion":
            return [f"c{c}" for c in self.cameras]
        return [f"c{c}s{s}" for c, s in zip(self.cameras, self.sequences)]

    def lookup(self, camera: np.ndarray, sequence: np.ndarray) -> np.ndarray:
        """Node id of each image; -1 for a node the train split never saw (a camera
        it lacks, or a known camera in a sequence it lacks): such pairs get the
        neutral ST factor when scoring."""
        camera = np.asarray(camera, np.int64)
        sequence = np.asarray(sequence, np.int64)
        seq = np.zeros_like(sequence) if self.mode == "tfusion" else sequence
        keys = self.cameras * (1 << 32) + self.sequences
        order = np.argsort(keys)
        q = camera * (1 << 32) + seq
        pos = np.clip(np.searchsorted(keys[order], q), 0, keys.size - 1)
        found = keys[order][pos] == q
        return np.where(found, order[pos], -1).astype(np.int64)

    def unseen(self, camera: np.ndarray, sequence: np.ndarray) -> Dict[str, object]:
        """Counts of images whose camera, or (camera, sequence) node, train lacks."""
        camera = np.asarray(camera, np.int64)
        new_cam = ~np.isin(camera, self.cameras)
        new_node = (self.lookup(camera, sequence) < 0) & ~new_cam
        return {"images_unseen_camera": int(new_cam.sum()),
                "images_unseen_node": int(new_node.sum()),
                "unseen_cameras": sorted(int(c) for c in np.unique(camera[new_cam]))}


def build_nodes(camera: np.ndarray, sequence: np.ndarray, mode: str) -> NodeIndex:
    """The nodes present in a (train) split, sorted by camera then sequence."""
    if mode not in MODES:
        raise ValueError(f"unknown ST node mode {mode!r}; known: {', '.join(MODES)}")
    camera = np.asarray(camera, np.int64)
    seq = (np.zeros_like(camera) if mode == "tfusion"
           else np.asarray(sequence, np.int64))
    pairs = np.unique(np.stack([camera, seq], axis=1), axis=0)
    return NodeIndex(mode, pairs[:, 0].copy(), pairs[:, 1].copy())


def in_reach(cam_i: np.ndarray, seq_i: np.ndarray, cam_j: np.ndarray,
             seq_j: np.ndarray, mode: str) -> np.ndarray:
    """Which pairs (broadcast shapes) the ST model covers: other camera, and in
    tfusion mode the same sequence."""
    ok = cam_i != cam_j
    if mode == "tfusion":
        ok &= seq_i == seq_j
    return ok
