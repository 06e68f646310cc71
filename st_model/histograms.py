"""Time-delta histograms per ordered ST node pair (the paper's visual / random /
diff models, §3.2).

A pair of images i ∈ node a, j ∈ node b contributes Δ = t_j − t_i to pair (a, b).
Histograms are integer counts [M, M, B] on a `DeltaGrid` (bins of `width` frames,
bin 0 starting at `lo`); deltas outside the grid are clipped to the edge bins.

- visual model: Δ of each train image and its top-k visual neighbours in reach;
- random model: Δ of all in-reach train pairs (exact, see random_model.py);
- diff model: all in-reach pairs ranked past the top-k = random − visual (exact,
  since the top-k pairs are a subset of all in-reach ordered pairs).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from st_model import nodes as st_nodes


@dataclass(frozen=True)
class DeltaGrid:
    """Bins of `width` frames covering [lo, lo + width * n_bins)."""
    width: int
    lo: int
    n_bins: int

    def bin_of(self, delta: np.ndarray) -> np.ndarray:
        """Bin index of each delta (clipped to the grid)."""
        b = np.floor_divide(np.asarray(delta, np.int64) - self.lo, self.width)
        return np.clip(b, 0, self.n_bins - 1)

    def centres(self) -> np.ndarray:
        return self.lo + self.width * (np.arange(self.n_bins) + 0.5)


def make_grid(max_abs_delta: int, width: int) -> DeltaGrid:
    """A grid symmetric around 0 that covers ±max_abs_delta; 0 sits mid-bin."""
    width = max(1, int(width))
    half = int(np.ceil((max_abs_delta + 0.5 * width) / width))
    return DeltaGrid(width, -half * width - width // 2, 2 * half + 1)


def neighbour_pairs(neighbour_idx: np.ndarray, row_offset: int = 0
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """(i, j) index arrays of all valid entries of a top-k table (rows i, -1 = none)."""
    rows = np.repeat(np.arange(neighbour_idx.shape[0], dtype=np.int64) + row_offset,
                     neighbour_idx.shape[1])
    cols = neighbour_idx.reshape(-1)
    ok = cols >= 0
    return rows[ok], cols[ok]


def reach_mask(i: np.ndarray, j: np.ndarray, camera: np.ndarray, sequence: np.ndarray,
               mode: str) -> np.ndarray:
    """Which of the pairs (i, j) the ST model covers (nodes.in_reach)."""
    return st_nodes.in_reach(camera[i], sequence[i], camera[j], sequence[j], mode)


def pair_deltas(i: np.ndarray, j: np.ndarray, node: np.ndarray, frame: np.ndarray,
                camera: np.ndarray, sequence: np.ndarray, mode: str, n_nodes: int
                ) -> Tuple[np.ndarray, np.ndarray]:
    """(node pair a*M+b, Δ = t_j − t_i) of the in-reach pairs among (i, j); M = nodes."""
    ok = reach_mask(i, j, camera, sequence, mode)
    i, j = i[ok], j[ok]
    return node[i] * n_nodes + node[j], frame[j] - frame[i]


def count_histogram(node_pair: np.ndarray, delta: np.ndarray, n_nodes: int,
                    grid: DeltaGrid) -> np.ndarray:
    """Integer counts [M, M, B] of (node pair, Δ) samples on the grid."""
    flat = node_pair * grid.n_bins + grid.bin_of(delta)
    counts = np.bincount(flat, minlength=n_nodes * n_nodes * grid.n_bins)
    return counts.astype(np.int64).reshape(n_nodes, n_nodes, grid.n_bins)


def weighted_histogram(node_pair: np.ndarray, delta: np.ndarray, weight: np.ndarray,
                       n_nodes: int, grid: DeltaGrid) -> np.ndarray:
    """Sums of weights [M, M, B] of (node pair, Δ) samples on the grid (float64; the
    samples come in canonical order, so the sums are reproducible to the bit)."""
    flat = node_pair * grid.n_bins + grid.bin_of(delta)
    sums = np.bincount(flat, weights=weight, minlength=n_nodes * n_nodes * grid.n_bins)
    return sums.reshape(n_nodes, n_nodes, grid.n_bins)


def diff_histogram(random_counts: np.ndarray, visual_counts: np.ndarray) -> np.ndarray:
    """(Weighted) counts of in-reach pairs ranked past the top-k (eq. 9's P_diff)."""
    diff = random_counts - visual_counts
    if (diff < -1e-9).any():
        raise ValueError("visual-model counts exceed the random model's: the random "
                         "model must cover every in-reach pair of the visual model")
    return diff
