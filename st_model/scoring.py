"""Vectorised P_st / P_rand / P_diff lookups for query × gallery blocks, and the
fused score of a block.

`STTables.from_model` turns the artifact's counts into per-bin probabilities,
conditioned on the query's node a (the paper's P(Δ, c_j | c_i)):
  P_st(b, Δ | a)   = (V̂_ab(Δ) + m · P_rand(b, Δ | a)) / (N_a + m)
  P_rand(b, Δ | a) = R̂_ab(Δ) / R_a,        P_diff(b, Δ | a) = D̂_ab(Δ) / D_a
with ^ = Parzen smoothing (σ = the node pair's bandwidth; a pair whose deltas look
random takes the shape of its random model, so only its node-pair term
P(b | a, same) / P(b | a) remains), N_a = Σ_b,Δ V̂_ab, R_a, D_a the totals leaving
node a, m the random-model pseudo-count (D = R − V: pairs past the top-k), and the
log-ratio log(P_st / P_rand) (floored) shrunk by n_ab / (n_ab + κ), n_ab the
node pair's effective number of deltas (Σw)² / Σw² (Σw² over clumps). V̂ is the smoothed visual
histogram itself for hard top-k evidence (TFusion) and the oracle's true pairs;
for soft-weighted neighbours (the default) it is their true-pair part read
against the chance level (chance.true_pair_weight).
In tfusion mode V̂, R̂ are counts within ±window frames, P_st = V̂ / N_a,
P_rand = max(R̂ / R_a, rand_floor); pairs beyond max_delta, of the same camera or
of different sequences are out of reach (P_st = 0). In every mode a pair with
|Δ| > max_delta (when set: the user's statement that nobody reappears later) is out
of reach: P_st = 0, log-ratio −∞ — the search skips such rows (gallery_search.py).

Tables have one extra node index M ("unseen node": a camera, or a (camera, sequence),
the train split lacks) whose pairs, like same-camera pairs in camera_sequence mode, are
neutral (P_st = P_rand, log-ratio 0): the fusion falls back to vision there.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from core.features import FeatureSet
from st_model import chance
from st_model import fusion as fz
from st_model import smoothing, vision
from st_model.config import FusionRule
from st_model.st_artifact import STModel


def _normalise(counts: np.ndarray) -> np.ndarray:
    """Divide each query node's row a by its total Σ_b,Δ (0 where empty)."""
    tot = counts.sum(axis=(1, 2), keepdims=True)
    return np.where(tot > 0, counts / np.maximum(tot, 1e-300), 0.0)


def _tfusion_tables(model: STModel):
    prm = model.params
    k = model.window_bins()
    total = lambda c: np.maximum(c.sum(axis=(1, 2), keepdims=True), 1)  # noqa: E731
    p_st = smoothing.box_smooth(model.visual, k) / total(model.visual)
    p_rand = np.maximum(smoothing.box_smooth(model.random, k) / total(model.random),
                        prm["rand_floor"])
    diff = model.diff
    p_diff = smoothing.box_smooth(diff, k) / total(diff)
    log_ratio = np.log(np.maximum(p_st, 1e-300) / p_rand)
    return p_st, p_rand, p_diff, log_ratio


def _sigmas(model: STModel) -> np.ndarray:
    """Parzen σ in bins per node pair [M, M]: the pair's own bandwidth when chosen,
    else the pooled one."""
    prm = model.params
    m = model.nodes.size
    h = np.full(m * m, float(prm["bandwidth_frames"]))
    for pair, hp in (prm.get("bandwidth_curve") or {}).get("pair_bandwidth", {}).items():
        h[int(pair)] = hp
    return (h / model.grid.width).reshape(m, m)


def effective_counts(model: STModel) -> np.ndarray:
    """Kish effective number of visual deltas per node pair [M, M, 1]:
    (Σ w)² / Σ w² (the plain count for unit weights)."""
    w = model.visual.sum(axis=2, keepdims=True)
    w2 = model.visual_sq.sum(axis=2, keepdims=True)
    return np.where(w2 > 0, w * w / np.maximum(w2, 1e-300), 0.0)


def smoothed_evidence(model: STModel):
    """(V̂, R̂, σ): the smoothed true-pair evidence and random counts [M, M, B] and
    the Parzen σ in bins per node pair [M, M] of a Parzen (non-tfusion) model."""
    prm = model.params
    sigma = _sigmas(model)
    flat = sigma < 0
    sigma = np.where(flat, prm["bandwidth_frames"] / model.grid.width, sigma)
    vis = smoothing.gaussian_smooth_pairs(model.visual, sigma)
    rnd = smoothing.gaussian_smooth_pairs(model.random, sigma)
    if flat.any():
        # no temporal structure: the pair's visual mass spread like its random pairs
        n_ab = model.visual.sum(axis=2).astype(np.float64)
        r_ab = np.maximum(rnd.sum(axis=2), 1e-300)
        vis[flat] = (n_ab / r_ab)[flat][:, None] * rnd[flat]
    if prm.get("evidence") == "visual_above_chance":
        share = prm.get("broad_share") or 0.0
        broad = None
        if share > 0:
            # revisits: the deltas smoothed at the broad width, each pair's summing to 1
            broad = smoothing.gaussian_smooth(model.visual,
                                              prm["broad_bandwidth"] / model.grid.width)
            broad /= np.maximum(broad.sum(axis=2, keepdims=True), 1e-300)
        vis = chance.true_pair_weight(vis, rnd, model.visual, model.visual_sq,
                                      model.random, sigma, prm["noise_threshold"],
                                      prm.get("background_weight", 0.0),
                                      prm.get("chance_level") == "whole", broad, share)
    return vis, rnd, sigma


def _parzen_tables(model: STModel):
    prm = model.params
    vis, rnd, sigma = smoothed_evidence(model)
    p_rand = _normalise(rnd)
    p_diff = _normalise(smoothing.gaussian_smooth_pairs(model.diff, sigma))
    m = prm["prior_count"]
    above = prm.get("evidence") == "visual_above_chance"
    n_a = (vis if above else model.visual).sum(axis=(1, 2), keepdims=True)
    denom = n_a + m
    p_st = np.where(denom > 0, (vis + m * p_rand) / np.maximum(denom, 1e-300), p_rand)
    floor = prm["floor"]
    log_ratio = np.log(np.maximum(p_st, floor) / np.maximum(p_rand, floor))
    log_ratio *= smoothing.shrinkage(effective_counts(model), prm["kappa"])
    return p_st, p_rand, p_diff, log_ratio, vis


def expected_random_log_ratio(p_rand: np.ndarray, log_ratio: np.ndarray) -> np.ndarray:
    """Σ_{b,Δ} P_rand(b, Δ | a) · log(P_st / P_rand)(a, b, Δ) per query node a: the
    ST score of an average random in-reach pair (−KL(P_rand ‖ P_st) when unshrunk).

    Pairs the ST model knows nothing about (same camera, unseen node) get this value,
    so they rank like a typical random pair — not above every pair whose log-ratio
    is below 0, which would favour same-camera negatives.
    """
    return (p_rand * log_ratio).sum(axis=(1, 2))


@dataclass
class STTables:
    """Lookup tables [M+1, M+1, B] of one ST model (float32; index M = unseen node)."""
    model: STModel
    p_st: np.ndarray
    p_rand: np.ndarray
    p_diff: np.ndarray
    log_ratio: np.ndarray
    evidence: Optional[np.ndarray] = None   # V̂ of smoothed_evidence (Parzen models)

    @classmethod
    def from_model(cls, model: STModel) -> "STTables":
        tfusion = model.nodes.mode == "tfusion"
        parts = _tfusion_tables(model) if tfusion else _parzen_tables(model)
        evidence = None if tfusion else parts[4]
        parts = parts[:4]
        m, b = model.nodes.size, model.grid.n_bins
        same_cam = model.nodes.cameras[:, None] == model.nodes.cameras[None, :]
        out = []
        for t in parts:
            full = np.zeros((m + 1, m + 1, b), np.float32)
            full[:m, :m] = t
            out.append(full)
        p_st, p_rand, p_diff, log_ratio = out
        # neutral (camera_sequence) or out of reach (tfusion) node pairs
        uniform = 1.0 / b
        for arr in (p_rand, p_diff):
            arr[m, :] = uniform
            arr[:, m] = uniform
            arr[:m, :m][same_cam] = uniform
        if tfusion:
            p_st[:m, :m][same_cam] = 0.0
            log_ratio[:m, :m][same_cam] = -np.inf
        else:
            p_st[m, :], p_st[:, m] = uniform, uniform
            p_st[:m, :m][same_cam] = uniform
            neutral = np.zeros(m + 1, np.float32)
            if model.params.get("neutral_rule", "random_pair") == "random_pair":
                neutral[:m] = expected_random_log_ratio(parts[1], parts[3])
            for a in range(m):
                log_ratio[a, :m][same_cam[a]] = neutral[a]
                log_ratio[a, m] = neutral[a]
        return cls(model, p_st, p_rand, p_diff, log_ratio, evidence)

    def node_index(self, node: np.ndarray) -> np.ndarray:
        """Table index of each node id (-1, unseen -> M)."""
        return np.where(node < 0, self.model.nodes.size, node).astype(np.int64)


def _rows(idx, n: int) -> np.ndarray:
    """The row numbers of an index array or a slice of n rows."""
    return np.arange(*idx.indices(n)) if isinstance(idx, slice) else idx


class BlockScorer:
    """score_fn(q_idx, g_idx) -> fused scores, for metrics.evaluate_ranking and the
    fused train ranking. Pairs the ST model does not cover keep their visual score
    (camera_sequence mode) or get P_st = 0 (tfusion mode: out of reach)."""

    def __init__(self, tables: STTables, query: FeatureSet, gallery: FeatureSet,
                 config: FusionRule, q_node: Optional[np.ndarray] = None,
                 g_node: Optional[np.ndarray] = None):
        model = tables.model
        nodes = model.nodes
        self.tables, self.q, self.g, self.config = tables, query, gallery, config
        q_node = nodes.lookup(query.camera, query.sequence) if q_node is None else q_node
        g_node = nodes.lookup(gallery.camera, gallery.sequence) if g_node is None else g_node
        grid = model.grid
        side = (nodes.size + 1) * grid.n_bins
        # flat table index = q_base + g_base + bin(Δ), bin(Δ) = (t_g − t_q − lo) // w
        self.q_base = tables.node_index(q_node) * side
        self.g_base = tables.node_index(g_node) * grid.n_bins
        self.tfusion = nodes.mode == "tfusion"
        self.max_delta = model.params.get("max_delta")
        lo_d = int(gallery.frame.min()) - int(query.frame.max())
        hi_d = int(gallery.frame.max()) - int(query.frame.min())
        self.clip = lo_d < grid.lo or hi_d >= grid.lo + grid.width * grid.n_bins
        # bin(Δ) without a division per pair: with t_g − lo = w·A_g + r_g and
        # t_q = w·A_q + r_q (0 ≤ r < w), bin = A_g − A_q − [r_g < r_q]; so the flat
        # index is a row term + a column term − [r_g < r_q] (fast_flat)
        a_q, self.r_q = np.divmod(query.frame.astype(np.int64), grid.width)
        a_g, self.r_g = np.divmod(gallery.frame.astype(np.int64) - grid.lo, grid.width)
        self.row_term = self.q_base - a_q
        self.col_term = self.g_base + a_g
        # int32 halves the memory traffic of a block's index where it cannot overflow
        small = lambda *a: max(np.abs(x).max(initial=0) for x in a) < 2**30  # noqa: E731
        if small(self.row_term, self.col_term):
            self.row_term = self.row_term.astype(np.int32)
            self.col_term = self.col_term.astype(np.int32)
        if small(self.r_q, self.r_g):
            self.r_q, self.r_g = self.r_q.astype(np.int32), self.r_g.astype(np.int32)
        self.vision_stats = (model.params.get("vision_mean", 0.0),
                             model.params.get("vision_scale", 1.0))

    def cosine(self, q_idx: np.ndarray, g_idx: np.ndarray) -> np.ndarray:
        return self.q.features[q_idx] @ self.g.features[g_idx].T

    def _flat(self, q_idx: np.ndarray, g_idx: np.ndarray, delta: np.ndarray) -> np.ndarray:
        grid = self.tables.model.grid
        b = (delta - grid.lo) // grid.width
        if self.clip:
            b = np.clip(b, 0, grid.n_bins - 1)
        b += self.q_base[q_idx]
        b += self.g_base[g_idx]
        return b

    def fast_flat(self, q_idx: np.ndarray, g_idx: np.ndarray) -> np.ndarray:
        """_flat of broadcastable index arrays when no bin needs clipping (not
        self.clip): the same index by additions and one comparison."""
        flat = self.row_term[q_idx] + self.col_term[g_idx]
        flat -= self.r_g[g_idx] < self.r_q[q_idx]
        return flat

    def _reach(self, q_idx: np.ndarray, g_idx: np.ndarray, delta: np.ndarray
               ) -> Optional[np.ndarray]:
        """Pairs in reach (None: all): |Δ| <= max_delta; in tfusion mode also the
        same sequence."""
        ok = None
        if self.tfusion:
            ok = self.q.sequence[q_idx] == self.g.sequence[g_idx]
        if self.max_delta is not None:
            near = np.abs(delta) <= self.max_delta
            ok = near if ok is None else ok & near
        return ok

    def __call__(self, q_idx, g_idx) -> np.ndarray:
        """Fused scores of the block q_idx × g_idx [len(q_idx), len(g_idx)]; each an
        index array or a slice (a slice reads the features as a view, not a copy)."""
        cos = self.cosine(q_idx, g_idx)
        q_rows = _rows(q_idx, len(self.q.frame))
        g_rows = _rows(g_idx, len(self.g.frame))
        return self._fused(q_rows[:, None], g_rows[None, :], cos)

    def pairs(self, q_idx: np.ndarray, g_idx: np.ndarray) -> np.ndarray:
        """Fused scores of the pairs (q_idx[i], g_idx[i]) [len(q_idx)] (the same
        formula as a block; the cosines by vision.pair_cosines)."""
        q_idx, g_idx = np.asarray(q_idx), np.asarray(g_idx)
        cos = vision.pair_cosines(self.q.features, q_idx, self.g.features, g_idx)
        return self._fused(q_idx, g_idx, cos)

    def _fused(self, q_idx: np.ndarray, g_idx: np.ndarray, cos: np.ndarray) -> np.ndarray:
        """The fused score of broadcastable query / gallery index arrays."""
        t = self.tables
        delta = None
        if self.clip or self.tfusion or self.max_delta is not None:
            delta = self.g.frame[g_idx] - self.q.frame[q_idx]
        flat = self._flat(q_idx, g_idx, delta) if self.clip else self.fast_flat(q_idx, g_idx)
        reach = None if delta is None else self._reach(q_idx, g_idx, delta)
        take = lambda tab: np.take(tab.reshape(-1), flat)  # noqa: E731
        cfg = self.config
        if cfg.fusion == "loglinear":
            lr = take(t.log_ratio)
            if reach is not None:
                lr = np.where(reach, lr, -np.inf)
            # one float64 block, overwritten step by step (the same values)
            x = np.array(cos, np.float64)
            log_p_v = fz.standardised_log_p_v(x, *self.vision_stats, in_place=True)
            return fz.log_linear_fusion(log_p_v, lr, cfg.weight, in_place=True)
        p_st = take(t.p_st)
        if reach is not None:
            p_st = np.where(reach, p_st, 0.0)
        p_v = fz.visual_probability(cos)
        if cfg.fusion == "bayes":
            p_diff = take(t.p_diff) if cfg.beta else 0.0
            p_rand = np.maximum(take(t.p_rand), fz.EPS)
            return fz.bayesian_fusion(p_v, p_st, p_diff, p_rand, cfg.alpha, cfg.beta)
        lam0, g0, lam1, g1 = cfg.logistic
        return fz.logistic_fusion(p_v, p_st, lam0, g0, lam1, g1)
