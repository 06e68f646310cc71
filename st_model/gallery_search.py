"""Top-k gallery search over a GalleryIndex: exhaustive, or pruned by the ST model's
support windows with the same top-k.

Scores are BlockScorer's (st_model/scoring.py), row slices of the (node, frame)-sorted
index scored in place. Pruning (log-linear fusion, camera_sequence nodes):

    fused(q, g) = w · (cos − μ) / σ + LR(a, b, bin(t_g − t_q))      (scoring.py)

with a, b the query's and the gallery row's nodes. Since cos ≤ 1, a row whose LR is
below τ scores below V + τ, V = w · (1 − μ) / σ. For a threshold τ the rows with
LR ≥ τ lie, per gallery node b, in the time windows where LR(a, b, ·) ≥ τ — a few
contiguous slices of the sorted index. Search:
  1. score the rows of the windows at τ₀ = 1 (P_st ≥ e·P_rand: the ST support);
     s_k = the k-th best score;
  2. if every LR outside the windows is < s_k − V, no row outside can enter the
     top-k (certified); else score the windows at τ₁ = s_k − V (a superset, since
     some LR outside was ≥ τ₁), whose k-th score s'_k ≥ s_k certifies the rest.
With fewer than k rows in the windows, τ is lowered (to the next LR level, by at
least WIDEN) and step 1 repeats. When the next τ would take every row (the ST
model's log-ratio never falls that low: its floor is not below s_k − V), after
MAX_PASSES, and for a query in a node the ST model never saw (LR neutral
everywhere): the full scan. So pruning pays where the model says "impossible"
outside its windows (log-ratio far below 0) and vision cannot make up for it; the
default estimator mixes a background share of the random model into P_st, which
bounds its log-ratio below by about log(share) — see README for what that means
for speed. Other fusion rules and tfusion mode use
the full scan.

Reach (STConfig.max_delta, when the ST model sets one): a row with
|t_g − t_q| > max_delta scores −∞ (scoring.py), so no pass and no fallback scans
outside [t_q − max_delta, t_q + max_delta] — per node one more contiguous slice. On a
gallery spanning far longer than the reach this, not the windows, is what makes the
search fast; its top-k stays the exhaustive scan's (which scores every row, −∞ out of
reach).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

from core.features import FeatureSet
from st_model.config import FusionRule
from st_model.gallery_index import GalleryIndex
from st_model.scoring import BlockScorer, STTables

COS_MARGIN = 1e-5   # float32 cosines of unit rows may exceed 1 by a few ulps
MAX_PASSES = 4      # then the full scan
WIDEN = 2.0         # with fewer than k rows in the windows, lower τ by at least this
REACH_SCAN = 4.0    # scan the reach at once when it holds <= this × the first windows' rows
TAU0 = 1.0          # first windows: P_st ≥ e · P_rand (a node pair without temporal
#                     structure has log-ratio 0 everywhere: not a window)


@dataclass
class Hit:
    """One ranked gallery row: its index row, fused score, cosine and ST term."""
    row: int
    fused: float
    vision: float
    st_factor: float


@dataclass
class SearchResult:
    hits: List[Hit]
    rows_scored: int
    passes: int                 # 0: full scan; 1 or 2: pruned passes
    notes: List[str] = field(default_factory=list)


def top_rows(scores: np.ndarray, rows: np.ndarray, name_rank: np.ndarray,
             k: int) -> Tuple[np.ndarray, np.ndarray]:
    """(rows, scores) of the k best, highest first, ties by name (as the evaluation
    breaks them by gallery index)."""
    ok = np.isfinite(scores) | (scores == np.inf)
    scores, rows = scores[ok], rows[ok]
    if scores.size > k:
        kth = np.partition(scores, scores.size - k)[scores.size - k]
        keep = scores >= kth
        scores, rows = scores[keep], rows[keep]
    order = np.lexsort((name_rank[rows], -scores))[:k]
    return rows[order], scores[order]


class GallerySearch:
    """Searches one index with one ST model and fusion config."""

    def __init__(self, index: GalleryIndex, tables: STTables, config: FusionRule):
        self.index, self.tables, self.config = index, tables, config
        model = tables.model
        self.m = model.nodes.size
        self.grid = model.grid
        prm = model.params
        self.mean = float(prm.get("vision_mean", 0.0))
        self.scale = float(prm.get("vision_scale", 1.0))
        self.prunable = (self.config.fusion == "loglinear" and model.nodes.mode != "tfusion"
                         and self.config.weight > 0)
        self.v_max = self.config.weight * (1.0 + COS_MARGIN - self.mean) / self.scale
        reach = model.params.get("max_delta")
        self.reach = int(reach) if reach is not None and self.prunable else None

    def scorer(self, query: FeatureSet) -> BlockScorer:
        return BlockScorer(self.tables, query, self.index.rows, self.config,
                           g_node=self.index.node)

    # ------------------------------------------------------------------ windows
    def reach_slices(self, t: int) -> List[Tuple[int, int]]:
        """Per node, the row slice within the reach of a query at frame t (every row
        when the model sets no reach)."""
        idx = self.index
        if self.reach is None:
            return [(0, len(idx.rows))]
        out = []
        for b in range(self.m + 1):
            s, e = int(idx.node_start[b]), int(idx.node_start[b + 1])
            frames = idx.rows.frame[s:e]
            r0 = int(np.searchsorted(frames, t - self.reach, side="left"))
            r1 = int(np.searchsorted(frames, t + self.reach, side="right"))
            if r1 > r0:
                out.append((s + r0, s + r1))
        return out

    def reach_is_small(self, a: int, t: int) -> bool:
        """True when the reach holds at most REACH_SCAN × the rows of the first
        windows: one scan of the reach then costs less than the windows' passes could
        save (both counts are binary searches, nothing scored)."""
        if self.reach is None:
            return False
        count = lambda slices: sum(e - s for s, e in slices)  # noqa: E731
        return count(self.reach_slices(t)) <= REACH_SCAN * max(
            1, count(self.windows(a, t, TAU0)))

    def windows(self, a: int, t: int, tau: float) -> List[Tuple[int, int]]:
        """Row slices [start, stop) of the index whose LR(a, node, bin) ≥ tau (and
        within the reach)."""
        idx, grid = self.index, self.grid
        lr = self.tables.log_ratio[a]
        big = np.iinfo(np.int64)
        reach_lo = big.min if self.reach is None else t - self.reach
        reach_hi = big.max if self.reach is None else t + self.reach + 1
        out = []
        for b in range(self.m + 1):
            s, e = int(idx.node_start[b]), int(idx.node_start[b + 1])
            if s == e:
                continue
            mask = lr[b] >= tau
            if mask.all():
                starts, stops = np.array([0]), np.array([grid.n_bins])
            elif not mask.any():
                continue
            else:
                d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
                starts, stops = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
            frames = idx.rows.frame[s:e]
            lo = np.where(starts == 0, big.min, t + grid.lo + starts * grid.width)
            hi = np.where(stops == grid.n_bins, big.max, t + grid.lo + stops * grid.width)
            lo, hi = np.maximum(lo, reach_lo), np.minimum(hi, reach_hi)
            r0 = np.searchsorted(frames, lo, side="left")
            r1 = np.searchsorted(frames, hi, side="left")
            out += [(s + int(x), s + int(y)) for x, y in zip(r0, r1) if y > x]
        return out

    def outside_max(self, a: int, tau: float) -> float:
        """The largest LR(a, b, ·) below tau over gallery nodes b that hold rows."""
        lr = self.tables.log_ratio[a]
        held = np.diff(self.index.node_start) > 0
        below = np.where(lr[held] < tau, lr[held], -np.inf)
        return float(below.max()) if below.size else -np.inf

    def lowest(self, a: int) -> float:
        """The smallest LR(a, b, ·) over gallery nodes b that hold rows."""
        held = np.diff(self.index.node_start) > 0
        return float(self.tables.log_ratio[a][held].min())

    # ------------------------------------------------------------------ search
    def _score_slices(self, scorer: BlockScorer, qi: int, slices, exclude):
        q = np.array([qi])
        parts, rows = [], []
        for s, e in slices:
            parts.append(scorer(q, slice(s, e))[0])
            rows.append(np.arange(s, e))
        if not parts:
            return np.empty(0), np.empty(0, np.int64)
        scores, rows = np.concatenate(parts), np.concatenate(rows)
        if exclude is not None:
            scores = np.where(exclude[rows], -np.inf, scores)
        return scores, rows

    def _hits(self, scorer: BlockScorer, qi: int, rows: np.ndarray,
              scores: np.ndarray) -> List[Hit]:
        if rows.size == 0:
            return []
        q = np.array([qi])
        cos = self.index.rows.features[rows] @ scorer.q.features[qi]
        st = self.st_factor(scorer, q, rows)
        return [Hit(int(r), float(f), float(c), float(x))
                for r, f, c, x in zip(rows, scores, cos, st)]

    def st_factor(self, scorer: BlockScorer, q: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The ST term of the fusion rule for (q, rows) (as trainer/fused_scoring.py)."""
        t, cfg = self.tables, self.config
        delta = self.index.rows.frame[rows][None, :] - scorer.q.frame[q][:, None]
        flat = scorer._flat(q, rows, delta)
        take = lambda tab: np.take(tab.reshape(-1), flat)[0].astype(np.float64)  # noqa: E731
        if cfg.fusion == "loglinear":
            return take(t.log_ratio)
        if cfg.fusion == "bayes":
            p_diff = take(t.p_diff) if cfg.beta else 0.0
            return ((take(t.p_st) * (1 - cfg.alpha) - cfg.beta * p_diff)
                    / np.maximum(take(t.p_rand), 1e-12))
        lam1, g1 = cfg.logistic[2], cfg.logistic[3]
        return 1.0 / (1.0 + lam1 * np.exp(-g1 * take(t.p_st)))

    def search_one(self, scorer: BlockScorer, qi: int, k: int, pruned: bool = True,
                   exclude: Optional[np.ndarray] = None) -> SearchResult:
        """Top-k of query row `qi` of the scorer's query set. `exclude` [N] bool:
        rows never returned (e.g. the Market protocol's junk)."""
        n = len(self.index.rows)
        a = int(scorer.q_base[qi] // ((self.m + 1) * self.grid.n_bins))  # query node
        name_rank = self.index.name_rank
        t = int(scorer.q.frame[qi])
        if pruned and self.prunable and a < self.m and not self.reach_is_small(a, t):
            tau = TAU0
            for passes in range(1, MAX_PASSES + 1):
                slices = self.windows(a, t, tau)
                scores, rows = self._score_slices(scorer, qi, slices, exclude)
                top, top_s = top_rows(scores, rows, name_rank, k)
                below = self.outside_max(a, tau)
                if below == -np.inf:          # every row was a candidate: exact
                    return SearchResult(self._hits(scorer, qi, top, top_s), rows.size, passes)
                if top.size < k:              # too few rows in the windows: widen them
                    tau = min(below, tau - WIDEN)
                else:
                    s_k = float(top_s[-1])
                    if below < s_k - self.v_max:  # no row outside can reach the top-k
                        return SearchResult(self._hits(scorer, qi, top, top_s), rows.size,
                                            passes)
                    tau = s_k - self.v_max
                if tau <= self.lowest(a):     # the next pass would score every row
                    break
        slices = self.reach_slices(t) if pruned else [(0, n)]
        scores, rows = self._score_slices(scorer, qi, slices, exclude)
        top, top_s = top_rows(scores, rows, name_rank, k)
        return SearchResult(self._hits(scorer, qi, top, top_s), rows.size, 0)

    def search(self, query: FeatureSet, k: int, pruned: bool = True,
               exclude_fn=None) -> List[SearchResult]:
        """Top-k of every query; exclude_fn(qi) -> [N] bool mask or None."""
        scorer = self.scorer(query)
        return [self.search_one(scorer, qi, k, pruned,
                                None if exclude_fn is None else exclude_fn(qi))
                for qi in range(len(query))]
