"""Parzen smoothing of ST histograms, its label-free bandwidth, and shrinkage.

- Parzen (Gaussian) smoothing of binned counts: P̂(Δ) = Σ_j K_h(Δ − Δ_j) / n.
- Bandwidth h chosen without labels by the leave-one-out log-likelihood of the
  visual-neighbour deltas, each node pair's KDE mixed with that pair's random-model
  density (the false neighbours among the top-k are spread like random pairs):
      f_{−i}(Δ_i) = (Σ_{j≠i} K_h(Δ_i − Δ_j) + m · r_p(Δ_i)) / (n_p − 1 + m)
  summed over all pairs p and deltas i; h = argmax over a geometric grid.
- A node pair with at least PAIR_MIN_DELTAS deltas picks its own bandwidth by its
  own LOO curve, or FLAT when the random model's own shape explains its deltas
  better than any KDE (no temporal structure); sparser pairs use the pooled h.
- Box smoothing (TFusion: the count of deltas within ±700 frames).
- Shrinkage of a node pair's log-ratio toward 0 by n_p / (n_p + κ).
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
from scipy.ndimage import gaussian_filter1d

from st_model.histograms import DeltaGrid

FLAT = -1.0                 # a pair's "bandwidth" when its deltas look random
PAIR_MIN_DELTAS = 100     # visual deltas a node pair needs to choose its own bandwidth
LOO_EVAL_POINTS = 64  # deltas per node pair at which the LOO likelihood is evaluated


def gaussian_smooth(counts: np.ndarray, sigma_bins: float) -> np.ndarray:
    """Parzen smoothing along the last (bin) axis; mass-preserving inside the grid."""
    counts = np.asarray(counts, np.float64)
    if sigma_bins < 0.25:
        return counts.copy()
    return gaussian_filter1d(counts, sigma_bins, axis=-1, mode="constant", truncate=4.0)


def gaussian_smooth_pairs(counts: np.ndarray, sigma_bins: np.ndarray) -> np.ndarray:
    """Parzen smoothing of [M, M, B] counts with a σ per node pair [M, M]."""
    counts = np.asarray(counts, np.float64)
    out = np.empty_like(counts)
    for s in np.unique(sigma_bins):
        sel = sigma_bins == s
        out[sel] = gaussian_smooth(counts[sel], float(s))
    return out


def box_smooth(counts: np.ndarray, half_width_bins: int) -> np.ndarray:
    """Sum of counts within ±half_width_bins of each bin (TFusion's window count)."""
    counts = np.asarray(counts, np.float64)
    k = int(half_width_bins)
    if k <= 0:
        return counts.copy()
    c = np.cumsum(counts, axis=-1)
    c = np.concatenate([np.zeros(c.shape[:-1] + (1,)), c], axis=-1)
    n = counts.shape[-1]
    hi = np.minimum(np.arange(n) + k + 1, n)
    lo = np.maximum(np.arange(n) - k, 0)
    return c[..., hi] - c[..., lo]


def shrinkage(n: np.ndarray, kappa: float) -> np.ndarray:
    """n / (n + κ): how far a node pair's log-ratio is trusted (0 with no evidence)."""
    n = np.asarray(n, np.float64)
    if kappa <= 0:
        return np.ones_like(n)
    return n / (n + kappa)


def bandwidth_grid(min_h: float, max_h: float, factor: float = 2 ** 0.5) -> np.ndarray:
    """Geometric grid of candidate bandwidths (frames)."""
    min_h = max(0.5, float(min_h))
    max_h = max(min_h, float(max_h))
    n = int(np.floor(np.log(max_h / min_h) / np.log(factor))) + 1
    return min_h * factor ** np.arange(n)


def _eval_subset(n: int, size: int) -> np.ndarray:
    """Evenly spread deterministic subset of sorted positions."""
    if n <= size:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, size).round().astype(np.int64))


BACKGROUND_WEIGHTS = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9,
                               0.95, 0.98, 0.99, 1.0])


def loo_densities(pair_id: np.ndarray, delta: np.ndarray, background: np.ndarray,
                  candidates: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leave-one-out KDE density of each evaluated visual delta, per bandwidth.

    Each node pair's deltas are evaluated at ≤ LOO_EVAL_POINTS evenly spread sorted
    positions against all the pair's other deltas; returns (kde [E, H],
    background [E], weight [E], n_p [E], pair id [E]) with weight = n_p / (evaluated points of
    p), so weighted sums over E estimate sums over all deltas.
    """
    order = np.lexsort((delta, pair_id))
    pair_id, delta, background = pair_id[order], delta[order], background[order]
    _, starts, sizes = np.unique(pair_id, return_index=True, return_counts=True)
    kdes, bgs, weights, counts, pids = [], [], [], [], []
    for p, s, n in zip(pair_id[starts], starts, sizes):
        if n < 2:
            continue
        d = delta[s:s + n].astype(np.float64)
        ev = _eval_subset(n, LOO_EVAL_POINTS)
        diff = d[ev][:, None] - d[None, :]
        kde = np.empty((ev.size, candidates.size))
        for h_i, h in enumerate(candidates):
            k = np.exp(-0.5 * (diff / h) ** 2)
            k[np.arange(ev.size), ev] = 0.0
            kde[:, h_i] = k.sum(axis=1) / ((n - 1) * h * np.sqrt(2 * np.pi))
        kdes.append(kde)
        bgs.append(background[s:s + n][ev])
        weights.append(np.full(ev.size, n / ev.size))
        counts.append(np.full(ev.size, float(n)))
        pids.append(np.full(ev.size, p, np.int64))
    if not kdes:
        z = np.zeros(0)
        return np.zeros((0, candidates.size)), z, z, z, z.astype(np.int64)
    return (np.concatenate(kdes), np.concatenate(bgs), np.concatenate(weights),
            np.concatenate(counts), np.concatenate(pids))


def choose_bandwidth(pair_id: np.ndarray, delta: np.ndarray, background: np.ndarray,
                     candidates: np.ndarray, prior_count: float
                     ) -> Tuple[float, float, Dict[str, list]]:
    """(h, c, curve), chosen by leave-one-out likelihood of the visual deltas:

    1. h maximises the LOO likelihood of each pair's KDE with a fixed random-model
       pseudo-count m:  f(Δ_i) = (Σ_{j≠i} K_h(Δ_i − Δ_j) + m · r_p(Δ_i)) / (n_p − 1 + m);
    2. given h, the background weight c maximises the LOO likelihood of the mixture
       f(Δ) = (1 − c) · KDE_h(Δ) + c · r_p(Δ)  — a diagnostic reported with the
       model: the share of visual neighbours whose deltas look like random pairs.
    3. per node pair with ≥ PAIR_MIN_DELTAS deltas: the argmax of its own curve,
       with FLAT (likelihood of r_p alone) as an option; others keep the pooled h.
    Fixing m in step 1 (rather than fitting c jointly) keeps h away from the spikes
    of tied deltas: one tracklet gives many near-equal deltas, and Market frames
    come in steps of 25.
    """
    kde, bg, w, n, pid = loo_densities(pair_id, delta, background, candidates)
    if w.size == 0:
        return float(candidates[len(candidates) // 2]), 1.0, {"candidates": [],
                                                               "loo_log_likelihood": []}
    f = (((n - 1)[:, None] * kde + prior_count * bg[:, None])
         / (n - 1 + prior_count)[:, None])
    ll = w[:, None] * np.log(np.maximum(f, 1e-300))          # [E, H]
    curve = [float(x) for x in ll.sum(axis=0)]
    h_i = int(np.argmax(curve))
    # per node pair with ≥ PAIR_MIN_DELTAS deltas: its own LOO choice among the
    # candidates and FLAT (the random model's own shape); sparser pairs: pooled h
    pairs, inv = np.unique(pid, return_inverse=True)
    per_pair = np.zeros((pairs.size, candidates.size))
    np.add.at(per_pair, inv, ll)
    flat = np.zeros(pairs.size)
    np.add.at(flat, inv, w * np.log(np.maximum(bg, 1e-300)))
    best = np.argmax(np.concatenate([per_pair, flat[:, None]], axis=1), axis=1)
    own = np.where(best < candidates.size,
                   candidates[np.minimum(best, candidates.size - 1)], FLAT)
    n_pair = np.zeros(pairs.size)
    np.add.at(n_pair, inv, w)
    pair_h = np.where(n_pair >= PAIR_MIN_DELTAS, own, candidates[h_i])
    lls = [float((w * np.log(np.maximum((1 - c) * kde[:, h_i] + c * bg, 1e-300))).sum())
           for c in BACKGROUND_WEIGHTS]
    c = float(BACKGROUND_WEIGHTS[int(np.argmax(lls))])
    return float(candidates[h_i]), c, {"candidates": [float(x) for x in candidates],
                                       "loo_log_likelihood": curve,
                                       "background_weights": BACKGROUND_WEIGHTS.tolist(),
                                       "background_log_likelihood": lls,
                                       "pair_bandwidth": {str(int(p)): float(h) for p, h in
                                                          zip(pairs, pair_h)}}


def background_density(random_counts: np.ndarray, grid: DeltaGrid, pair_id: np.ndarray,
                       delta: np.ndarray, n_nodes: int) -> np.ndarray:
    """Random-model density per frame of each (pair, Δ): counts / (pair total · width)."""
    flat = random_counts.reshape(n_nodes * n_nodes, grid.n_bins)
    totals = flat.sum(axis=1)
    c = flat[pair_id, grid.bin_of(delta)]
    t = totals[pair_id]
    return np.where(t > 0, c / np.maximum(t, 1) / grid.width, 0.0)
