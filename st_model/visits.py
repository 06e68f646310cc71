"""Pooling the detections of one visit: a person crossing a camera is detected
several times a few seconds apart, and those near-duplicates (same camera and
sequence, |Δ| ≤ W) carry the same identity with independent detection noise.

Links (label-free): a pair of one node with |Δ| ≤ W (several boxes of one frame
included) is linked when its cosine
reaches c₀, the lowest cosine whose estimated share of false links stays within
`fdr`:
  F(c) = N_far(cos ≥ c) · n_near / n_far,      share(c) = F(c) / N_near(cos ≥ c)
with the "far" pairs of the same nodes at FAR·W ≤ |Δ| ≤ 2·FAR·W (other people in
the same scene: the empirical null of a near pair's cosine). Each detection's
pooled feature is the unit weighted mean of itself and its linked detections:
  x̃_i = (x_i + β Σ_{j linked to i} x_j) / ‖·‖,
β < 1 keeping a detection's own feature ahead of links that may be false.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Dict, Tuple

import numpy as np
from scipy import sparse

from core.features import FeatureSet
from core.progress import log
from st_model import vision

FAR = 10          # the null window starts at FAR · W


def window_pairs(node: np.ndarray, frame: np.ndarray, lo: int, hi: int
                 ) -> Tuple[np.ndarray, np.ndarray]:
    """Every unordered pair {i, j} of one node with lo ≤ |t_j − t_i| ≤ hi (lo ≥ 0),
    once, i before j in (node, time) order."""
    order = np.lexsort((frame, node))
    n_s, f_s = node[order], frame[order]
    key = n_s.astype(np.float64) * (float(f_s.max() - f_s.min()) + 2.0 * hi + 2.0) + f_s
    start = np.maximum(np.searchsorted(key, key + lo, side="left"),
                       np.arange(1, key.size + 1))
    stop = np.searchsorted(key, key + hi, side="right")
    count = stop - start
    i = np.repeat(np.arange(key.size), count)
    j = np.repeat(start - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
    return order[i], order[j]


def link_threshold(near: np.ndarray, far: np.ndarray, fdr: float) -> float:
    """c₀: the lowest near-pair cosine whose estimated false-link share
    F(c) / N_near(cos ≥ c) is ≤ fdr (+inf when none is, or without far pairs)."""
    if near.size == 0 or far.size == 0:
        return float("inf")
    c = np.sort(near)[::-1]                        # candidate thresholds, high first
    links = np.arange(1, c.size + 1)
    false = (far.size - np.searchsorted(np.sort(far), c, side="left")) \
        * (near.size / far.size)
    ok = np.flatnonzero(false <= fdr * links)
    # step-up (as Benjamini–Hochberg): the lowest threshold within fdr, so a few far
    # pairs above the highest near cosines do not stop the links below them
    return float(c[ok[-1]]) if ok.size else float("inf")


def visit_links(x: np.ndarray, node: np.ndarray, frame: np.ndarray, window: int,
                fdr: float) -> Tuple[np.ndarray, np.ndarray, float]:
    """(i, j, c₀): the linked near-duplicate pairs (module docstring)."""
    i, j = window_pairs(node, frame, 0, window)
    fi, fj = window_pairs(node, frame, FAR * window, 2 * FAR * window)
    near = vision.pair_cosines(x, i, x, j)
    c0 = link_threshold(near, vision.pair_cosines(x, fi, x, fj), fdr)
    keep = near >= c0
    return i[keep], j[keep], c0


def pooled_features(x: np.ndarray, i: np.ndarray, j: np.ndarray, beta: float = 1.0
                    ) -> np.ndarray:
    """x̃ (module docstring): unit rows of x_i + β Σ_{linked j} x_j, float32."""
    n = x.shape[0]
    links = sparse.csr_matrix((np.full(2 * i.size, float(beta)),
                               (np.r_[i, j], np.r_[j, i])),
                              shape=(n, n)) + sparse.identity(n, format="csr")
    p = np.asarray(links @ np.asarray(x, np.float64))
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    return p.astype(np.float32)


def pool_visits(items: FeatureSet, seconds: float, frame_rate: float, fdr: float,
                beta: float) -> Tuple[FeatureSet, Dict]:
    """`items` with visit-pooled features (pooled_features of visit_links within
    `seconds` at `frame_rate`, nodes = (camera, sequence)) and a report of the links."""
    window = int(round(seconds * frame_rate))
    if window < 1:
        return items, {"visit_links": 0}
    key = np.stack([items.camera, items.sequence], axis=1)
    _, node = np.unique(key, axis=0, return_inverse=True)
    i, j, c0 = visit_links(items.features, node.reshape(-1), items.frame, window, fdr)
    info = {"visit_window_frames": window, "visit_links": int(i.size),
            "visit_link_cosine": c0,
            "visit_linked_images": int(np.unique(np.r_[i, j]).size)}
    log(f"visit pooling: {i.size} links of detections ≤ {window} frames apart in one "
        f"node, cosine ≥ {c0:.3f}")
    return replace(items, features=pooled_features(items.features, i, j, beta)), info
