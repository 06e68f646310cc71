"""The exact random model: the Δ histogram over *all* in-reach train pairs.

TFusion samples 1 % of the pairs; here every pair counts, without enumerating them.
Per (camera, sequence) sub-node u the frames form a count series h_u[t]; the number
of pairs (i ∈ u, j ∈ v) with t_j − t_i = d is the cross-correlation
C_uv[d] = Σ_t h_u[t] h_v[t + d], computed for all d at once with one FFT per
sub-node and one inverse FFT per unordered sub-node pair (C_vu[d] = C_uv[−d]), then
summed into the bins of the ST grid: O(N + S·L log L) for S sub-node pairs over a
span of L frames, instead of O(N²).

Counts are exact (integers rounded from float64 FFTs, exact well past 10^12 pairs)
as long as the frame span is at most MAX_EXACT_SPAN frames; longer spans are first
quantised to span / MAX_EXACT_SPAN frames, and the result records it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import scipy.fft

from st_model import nodes as st_nodes
from st_model import workers
from st_model.histograms import DeltaGrid

MAX_EXACT_SPAN = 1 << 21


def sub_nodes(camera: np.ndarray, sequence: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(keys [S, 2] of (camera, sequence), sub-node id of each image)."""
    keys, inv = np.unique(np.stack([camera, sequence], axis=1), axis=0, return_inverse=True)
    return keys, inv.reshape(-1)


def frame_quantum(frame_min: int, frame_max: int) -> int:
    """1 (exact) unless the span exceeds MAX_EXACT_SPAN frames."""
    span = int(frame_max) - int(frame_min) + 1
    return max(1, -(-span // MAX_EXACT_SPAN))


def frame_series(frames: np.ndarray, start: int, quantum: int, length: int) -> np.ndarray:
    """Count of images per (quantised) frame from `start` on: h_u[t]."""
    return np.bincount((frames - start) // quantum, minlength=length).astype(np.float64)


def binned_lag_counts(c: np.ndarray, first_lag: int, quantum: int, grid: DeltaGrid
                      ) -> Tuple[np.ndarray, np.ndarray]:
    """Σ of the lag counts c (lags first_lag, first_lag + 1, … in frame quanta) per
    bin of the grid, for Δ (u→v) and for −Δ (v→u), edge bins taking what lies past
    them: the lags of a bin are contiguous, so each sum is a difference of one
    cumulative sum. The counts are integers, so the sums are exact (below 2^53)."""
    n = c.size
    cs = np.concatenate([[0.0], np.cumsum(c, dtype=np.float64)])
    edges = grid.lo + grid.width * np.arange(1, grid.n_bins, dtype=np.int64)
    # u→v: first position whose Δ = lag·quantum reaches each inner edge e
    pos = np.clip(-np.floor_divide(-edges, quantum) - first_lag, 0, n)
    pos = np.concatenate([[0], pos, [n]])
    # v→u: −Δ ≥ e ⇔ lag ≤ ⌊−e / quantum⌋; first position past those lags
    neg = np.clip(np.floor_divide(-edges, quantum) + 1 - first_lag, 0, n)
    neg = np.concatenate([[n], neg, [0]])
    fwd = cs[pos[1:]] - cs[pos[:-1]]
    bwd = cs[neg[:-1]] - cs[neg[1:]]
    return np.rint(fwd).astype(np.int64), np.rint(bwd).astype(np.int64)


def lag_counts(spec_u: np.ndarray, spec_v: np.ndarray, len_u: int, len_v: int,
               shift: int, n_fft: int) -> Tuple[int, np.ndarray]:
    """(first lag, C_uv) from two sub-nodes' spectra: series of len_u / len_v quanta,
    v's starting `shift` quanta after u's. C_uv[k] = Σ_t h_u[t] h_v[t + k] for
    k = −(len_u − 1) .. len_v − 1 is the count of pairs with Δ = (k + shift) quanta
    (one inverse FFT; n_fft ≥ len_u + len_v − 1, so no circular wrap), rounded to
    integers (float64); binned_lag_counts sums them per bin for both directions."""
    c = scipy.fft.irfft(np.conj(spec_u) * spec_v, n_fft)
    c = np.concatenate([c[n_fft - len_u + 1:], c[:len_v]])
    c = np.rint(c)
    c[c < 0] = 0.0          # as the lags without pairs (rint gives at most -0.0)
    return shift - (len_u - 1), c


@dataclass(frozen=True)
class RandomPlan:
    """What the random model needs: sub-node frame lists and the in-reach sub-node
    pairs (u < v). Each pair is an independent unit of work (a Beam element).
    Each sub-node's series spans only its own frames (start[u], length[u] quanta),
    and one FFT size n_fft ≥ 2 · max length − 1 serves every pair."""
    keys: np.ndarray          # [S, 2] (camera, sequence)
    node_of_sub: np.ndarray   # [S] model node of each sub-node
    frames: Tuple[np.ndarray, ...]  # frames of each sub-node
    start: np.ndarray         # [S] first frame of each sub-node's series
    length: np.ndarray        # [S] its length in quanta
    quantum: int
    n_fft: int
    pairs: Tuple[Tuple[int, int], ...]

    def spectrum(self, u: int) -> np.ndarray:
        return scipy.fft.rfft(frame_series(self.frames[u], int(self.start[u]),
                                           self.quantum, int(self.length[u])), self.n_fft)

    def pair_lags(self, u: int, v: int, spec_u: np.ndarray, spec_v: np.ndarray
                  ) -> Tuple[int, np.ndarray]:
        """lag_counts of the sub-node pair (u, v) from their spectra."""
        shift = (int(self.start[v]) - int(self.start[u])) // self.quantum
        return lag_counts(spec_u, spec_v, int(self.length[u]), int(self.length[v]),
                          shift, self.n_fft)


def random_plan(node: np.ndarray, camera: np.ndarray, sequence: np.ndarray,
                frame: np.ndarray, mode: str) -> RandomPlan:
    """Group train frames by sub-node and list the in-reach sub-node pairs."""
    keys, sub = sub_nodes(camera, sequence)
    node_of_sub = np.zeros(len(keys), np.int64)
    node_of_sub[sub] = node
    fmin, fmax = int(frame.min()), int(frame.max())
    q = frame_quantum(fmin, fmax)
    pairs = tuple((u, v) for u in range(len(keys)) for v in range(u + 1, len(keys))
                  if st_nodes.in_reach(keys[u, 0], keys[u, 1], keys[v, 0], keys[v, 1], mode))
    frames = tuple(np.sort(frame[sub == u]) for u in range(len(keys)))
    # series start on a multiple of the quantum past fmin, so lags stay whole quanta
    start = np.array([fmin + (f[0] - fmin) // q * q for f in frames], np.int64)
    length = np.array([(f[-1] - s) // q + 1 for f, s in zip(frames, start)], np.int64)
    n_fft = scipy.fft.next_fast_len(int(2 * length.max() - 1), real=True)
    return RandomPlan(keys, node_of_sub, frames, start, length, q, n_fft, pairs)


def sub_pair_counts(plan: RandomPlan, u: int, v: int, grid: DeltaGrid,
                    spec_u: Optional[np.ndarray] = None,
                    spec_v: Optional[np.ndarray] = None
                    ) -> Tuple[int, int, np.ndarray, np.ndarray]:
    """(a, b, counts a→b, counts b→a) of one sub-node pair on the grid."""
    spec_u = plan.spectrum(u) if spec_u is None else spec_u
    spec_v = plan.spectrum(v) if spec_v is None else spec_v
    first, c = plan.pair_lags(u, v, spec_u, spec_v)
    fwd, bwd = binned_lag_counts(c, first, plan.quantum, grid)
    return int(plan.node_of_sub[u]), int(plan.node_of_sub[v]), fwd, bwd


def add_pair_counts(counts: np.ndarray, a: int, b: int, fwd: np.ndarray,
                    bwd: np.ndarray) -> np.ndarray:
    """Accumulate one sub-node pair's counts into [M, M, B] (in place)."""
    counts[a, b] += fwd
    counts[b, a] += bwd
    return counts


def random_histogram(node: np.ndarray, camera: np.ndarray, sequence: np.ndarray,
                     frame: np.ndarray, mode: str, n_nodes: int, grid: DeltaGrid,
                     progress: Optional[Callable[[int, int], None]] = None
                     ) -> Tuple[np.ndarray, Dict[str, int]]:
    """Exact counts [M, M, B] of Δ over all in-reach ordered train pairs.

    Returns (counts, info) where info holds the frame quantum (1 = exact).
    """
    return RandomCounts(node, camera, sequence, frame, mode).histogram(n_nodes, grid,
                                                                       progress)


# lag counts RandomCounts keeps between grids (beyond it, each grid recomputes them)
MAX_KEPT_LAG_BYTES = 256 << 20


class RandomCounts:
    """The random model of one train split on any number of grids: the first
    histogram computes every sub-node pair's lag counts (one inverse FFT each) and
    keeps them, in the narrowest integer type that holds them, while they fit in
    MAX_KEPT_LAG_BYTES; a later grid only re-bins them."""

    def __init__(self, node: np.ndarray, camera: np.ndarray, sequence: np.ndarray,
                 frame: np.ndarray, mode: str):
        self.plan = random_plan(node, camera, sequence, frame, mode)
        self.info = random_info(self.plan)
        self._spectra: Optional[List[np.ndarray]] = None
        self._lags: Optional[List[Tuple[int, np.ndarray]]] = None

    def histogram(self, n_nodes: int, grid: DeltaGrid,
                  progress: Optional[Callable[[int, int], None]] = None
                  ) -> Tuple[np.ndarray, Dict[str, int]]:
        """(counts [M, M, B], info) on `grid` (random_histogram)."""
        plan = self.plan
        first_pass = self._lags is None
        if first_pass and self._spectra is None:
            self._spectra = list(workers.pmap(plan.spectrum, range(len(plan.keys))))

        def binned(i: int):
            if first_pass:
                u, v = plan.pairs[i]
                first, c = plan.pair_lags(u, v, self._spectra[u], self._spectra[v])
            else:
                first, c = self._lags[i]
            fwd, bwd = binned_lag_counts(c, first, plan.quantum, grid)
            if first_pass:   # compact for keeping: counts are non-negative integers
                c = c.astype(np.min_scalar_type(int(c.max()) if c.size else 0))
            return fwd, bwd, (first, c)
        counts = np.zeros((n_nodes, n_nodes, grid.n_bins), np.int64)
        kept: Optional[List[Tuple[int, np.ndarray]]] = [] if first_pass else None
        size = 0
        for i, (fwd, bwd, lags) in enumerate(workers.pmap(binned, range(len(plan.pairs)))):
            u, v = plan.pairs[i]
            add_pair_counts(counts, int(plan.node_of_sub[u]), int(plan.node_of_sub[v]),
                            fwd, bwd)
            if kept is not None:
                size += lags[1].nbytes
                if size <= MAX_KEPT_LAG_BYTES:
                    kept.append(lags)
                else:
                    kept = None
            if progress is not None:
                progress(i + 1, len(plan.pairs))
        if kept is not None:
            self._lags, self._spectra = kept, None
        return counts, self.info


def random_info(plan: RandomPlan) -> Dict[str, int]:
    return {"frame_quantum": plan.quantum, "sub_node_pairs": len(plan.pairs)}


def brute_force_random_histogram(node: np.ndarray, camera: np.ndarray,
                                 sequence: np.ndarray, frame: np.ndarray, mode: str,
                                 n_nodes: int, grid: DeltaGrid) -> np.ndarray:
    """Reference: enumerate every ordered pair (O(N²); tests and benchmarks only)."""
    i, j = np.meshgrid(np.arange(len(frame)), np.arange(len(frame)), indexing="ij")
    i, j = i.reshape(-1), j.reshape(-1)
    ok = st_nodes.in_reach(camera[i], sequence[i], camera[j], sequence[j], mode)
    i, j = i[ok], j[ok]
    flat = (node[i] * n_nodes + node[j]) * grid.n_bins + grid.bin_of(frame[j] - frame[i])
    return np.bincount(flat, minlength=n_nodes * n_nodes * grid.n_bins
                       ).reshape(n_nodes, n_nodes, grid.n_bins).astype(np.int64)
