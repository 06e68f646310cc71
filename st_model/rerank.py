"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) of a similarity, sparse and
blockwise: no [n, n] matrix is ever built.

Items are the query set followed by the gallery (n = Q + G), s(i, j) a similarity
(the fused score; higher = closer) and N(i, k) the k items of highest s(i, ·), i
itself first (ties by lower index):
  R(i, k)   = {j ∈ N(i, k) : i ∈ N(j, k)}                          (1)
  R*(i)     = R(i, k1+1) ∪ R(j, k1/2+1) for each j ∈ R(i, k1+1) with
              |R(j, k1/2+1) ∩ R(i, k1+1)| > 2/3 |R(j, k1/2+1)|     (2)
  V_ij      = exp((s_ij − s_i*) / τ) / Σ_{j' ∈ R*(i)} exp((s_ij' − s_i*) / τ)
              for j ∈ R*(i), else 0; s_i* the best non-self score of i, which
              self takes too                                        (3)
  V'_i      = mean of V_j over j ∈ N(i, k2)     (local query expansion)  (4)
  J(q, g)   = Σ_k min(V'_qk, V'_gk) / Σ_k max(V'_qk, V'_gk)           (5)
  s*(q, g)  = (1 − λ) · J(q, g) + λ · s(q, g) / τ                   (6)
(6) is Zhong's final distance d* = (1 − λ) d_J + λ d with d_J = 1 − J and the
distance d = −s / τ (an offset per query changes no ranking): τ is the score
difference that counts as one unit of distance. J > 0 only where the supports of
V'_q and V'_g meet: the overlaps of a query block are computed when a ranking
reaches it (JaccardOverlap).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

import numpy as np
from scipy import sparse

from core.progress import log
from st_model import neighbours

PairScore = Callable[[np.ndarray, np.ndarray], np.ndarray]
SELF_SCORE = np.finfo(np.float64).max   # an item is its own first neighbour
# blocks of the neighbour search: small enough that the scorer's temporaries stay in
# the allocator's heap (a 1024 × 4096 block scores at a third of the speed here)
ROW_BLOCK, COL_BLOCK = 256, 1024


@dataclass(frozen=True)
class RerankParams:
    k1: int = 30        # neighbours of the k-reciprocal sets
    k2: int = 6         # neighbours averaged by the local query expansion
    lam: float = 0.4    # λ of eq. 6: weight of the original distance
    tau: float = 4.0    # score units per unit of distance (eqs. 3, 6)


def _with_self(s: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Scores of a block with every self pair set to SELF_SCORE."""
    s = np.asarray(s, np.float64)
    own = neighbours.self_pairs(r, c)
    if own is not None:
        s = s.copy()
        s[own] = SELF_SCORE
    return s


def neighbour_lists(score_block: neighbours.ScoreBlock, n: int, k: int,
                    row_block: int = ROW_BLOCK, col_block: int = COL_BLOCK
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """N(i, k) of every item (neighbours.top_k, each item its own first): (index
    [n, k], score [n, k]; self's score SELF_SCORE)."""
    return neighbours.top_k(lambda r, c: _with_self(score_block(r, c), r, c), n, n,
                            min(k, n), row_block, col_block)


def membership(index: np.ndarray, k: int, n: int) -> sparse.csr_matrix:
    """[n, n] 0/1 matrix of the first k entries of each row of `index` (−1 skipped)."""
    idx = index[:, :k]
    rows = np.repeat(np.arange(idx.shape[0]), idx.shape[1])
    cols = idx.reshape(-1)
    ok = cols >= 0
    data = np.ones(int(ok.sum()), np.float64)
    return sparse.csr_matrix((data, (rows[ok], cols[ok])), shape=(n, n))


def reciprocal(index: np.ndarray, k: int, n: int) -> sparse.csr_matrix:
    """R(i, k) (eq. 1) as a 0/1 [n, n] matrix: j ∈ N(i, k) and i ∈ N(j, k)."""
    a = membership(index, k, n)
    return a.multiply(a.T).tocsr()


def expanded_sets(index: np.ndarray, k1: int, n: int) -> sparse.csr_matrix:
    """R*(i) (eq. 2) as a 0/1 [n, n] matrix."""
    r = reciprocal(index, k1 + 1, n)
    h = reciprocal(index, int(np.around(k1 / 2)) + 1, n)
    size_h = np.asarray(h.sum(axis=1)).ravel()
    overlap = r.multiply(r @ h.T).tocoo()          # |R(i) ∩ R_half(j)| for j ∈ R(i)
    keep = overlap.data > 2.0 / 3.0 * size_h[overlap.col]
    chosen = sparse.csr_matrix((np.ones(int(keep.sum())),
                                (overlap.row[keep], overlap.col[keep])), shape=(n, n))
    e = (r + chosen @ h).tocsr()
    e.data[:] = 1.0
    e.sort_indices()
    return e


def set_weights(sets: sparse.csr_matrix, pair_score: PairScore, tau: float
                ) -> sparse.csr_matrix:
    """V (eq. 3): softmax of s(i, ·) / τ over R*(i), self scored as the best other."""
    coo = sets.tocoo()
    rows, cols = coo.row.astype(np.int64), coo.col.astype(np.int64)
    s = np.asarray(pair_score(rows, cols), np.float64)
    own = rows == cols
    n = sets.shape[0]
    best = np.full(n, -np.inf)
    np.maximum.at(best, rows[~own], s[~own])
    top = np.where(np.isfinite(best), best, 0.0)
    s[own] = top[rows[own]]
    w = np.exp(np.clip((s - top[rows]) / tau, -700.0, 0.0))
    w /= np.bincount(rows, weights=w, minlength=n)[rows]
    return sparse.csr_matrix((w, (rows, cols)), shape=sets.shape)


def query_expansion(weights: sparse.csr_matrix, index: np.ndarray, k2: int
                    ) -> sparse.csr_matrix:
    """V' (eq. 4): each row the mean of the rows of its k2 first neighbours."""
    if k2 <= 1:
        return weights
    m = membership(index, k2, weights.shape[0])
    count = np.asarray(m.sum(axis=1)).ravel()
    m = sparse.diags(1.0 / np.maximum(count, 1.0)) @ m
    return (m @ weights).tocsr()


class JaccardOverlap:
    """J(q, g) (eq. 5) of query rows against every gallery row, computed on demand
    as dense rows of a query block: J > 0 only where the supports of V'_q and V'_g
    meet, so each block walks the query rows' entries through the gallery's columns
    (an inverted index) — no [Q, G] matrix is kept."""

    def __init__(self, v_query: sparse.csr_matrix, v_gallery: sparse.csr_matrix):
        self.vq = v_query.tocsr()
        self.vg = v_gallery.tocsc()
        self.mass_q = np.asarray(self.vq.sum(axis=1)).ravel()
        self.mass_g = np.asarray(self.vg.sum(axis=1)).ravel()
        self.shape = (self.vq.shape[0], self.vg.shape[0])

    def rows(self, q_idx: np.ndarray) -> np.ndarray:
        """J of the query rows q_idx against every gallery row [len(q_idx), G]."""
        block = self.vq[q_idx]
        n_rows, n_gallery = block.shape[0], self.shape[1]
        vg = self.vg
        start = vg.indptr[block.indices]
        count = vg.indptr[block.indices + 1] - start
        # positions in vg of every (query entry, gallery row sharing its item)
        pos = np.repeat(start - (np.cumsum(count) - count), count) + np.arange(count.sum())
        row_of = np.repeat(np.arange(n_rows, dtype=np.int64) * n_gallery,
                           np.diff(block.indptr))
        key = np.repeat(row_of, count)
        key += vg.indices[pos]
        mins = vg.data[pos]
        np.minimum(mins, np.repeat(block.data, count), out=mins)
        smin = np.bincount(key, weights=mins, minlength=n_rows * n_gallery)
        smin = smin.reshape(n_rows, n_gallery)
        # Σ max = |V'_q| + |V'_g| − Σ min (≥ the larger mass; 0 / tiny = 0 for two
        # empty rows)
        smax = self.mass_q[q_idx][:, None] + self.mass_g[None, :]
        smax -= smin
        np.maximum(smax, np.finfo(np.float64).tiny, out=smax)
        return np.divide(smin, smax, out=smax)

    def toarray(self) -> np.ndarray:
        """The whole [Q, G] matrix (small sets: tests and reports)."""
        return self.rows(np.arange(self.shape[0]))


def reranked_score(score_fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
                   overlap: JaccardOverlap, params: RerankParams
                   ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """score_fn(q_idx, g_idx) of the re-ranked list: eq. 6 blockwise (the
    overlaps of the latest query block are computed once and kept, per thread: a
    ranking scans the gallery block by block for one query block)."""
    last = threading.local()

    def score(q_idx: np.ndarray, g_idx: np.ndarray) -> np.ndarray:
        if getattr(last, "q", None) is None or not np.array_equal(last.q, q_idx):
            last.q, last.rows = q_idx.copy(), overlap.rows(q_idx)
            last.rows *= 1.0 - params.lam
        g_idx = np.asarray(g_idx)
        if g_idx.size and g_idx[-1] - g_idx[0] == g_idx.size - 1 and \
                np.all(np.diff(g_idx) == 1):
            j = last.rows[:, g_idx[0]:g_idx[-1] + 1]     # a run of columns: a view
        else:
            j = last.rows[:, g_idx]
        s = np.multiply(score_fn(q_idx, g_idx), params.lam / params.tau, dtype=np.float64)
        s += j
        return s
    return score


def rerank_weights(score_block: neighbours.ScoreBlock, pair_score: PairScore, n: int,
                   params: RerankParams) -> Tuple[sparse.csr_matrix, Dict[str, float]]:
    """V' (eqs. 1-4) of all n items from their similarity (block and pair scorers),
    and the mean sizes of the sets."""
    k = max(params.k1 + 1, params.k2)
    log(f"re-ranking: top-{k} neighbours of {n} items")
    index, _ = neighbour_lists(score_block, n, k)
    sets = expanded_sets(index, params.k1, n)
    v = query_expansion(set_weights(sets, pair_score, params.tau), index, params.k2)
    return v, {"reciprocal_set": sets.nnz / n, "expanded_support": v.nnz / n}


def rerank_overlap(score_block: neighbours.ScoreBlock, pair_score: PairScore,
                   n_query: int, n: int, params: RerankParams,
                   ) -> Tuple[JaccardOverlap, Dict[str, float]]:
    """The Jaccard overlaps J [Q, G] (eq. 5) of n_query queries followed by a
    gallery, from the similarity of all n items (block and pair scorers), and the
    mean sizes of the sets."""
    v, sizes = rerank_weights(score_block, pair_score, n, params)
    overlap = JaccardOverlap(v[:n_query], v[n_query:])
    log("re-ranking: " + ", ".join(f"{k} {v:.1f}" for k, v in sizes.items()))
    return overlap, sizes
