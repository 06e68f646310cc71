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
difference that counts as one unit of distance. J > 0 only where the supports of V'_q and V'_g meet, so the
overlaps are a sparse [Q, G] matrix, accumulated query block by query block.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

import numpy as np
from scipy import sparse

from core.progress import log
from st_model import neighbours, workers

PairScore = Callable[[np.ndarray, np.ndarray], np.ndarray]
SELF_SCORE = np.finfo(np.float64).max   # an item is its own first neighbour
QUERY_BLOCK = 256
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


def jaccard_overlap(v: sparse.csr_matrix, n_query: int,
                    query_block: int = QUERY_BLOCK) -> sparse.csr_matrix:
    """J(q, g) (eq. 5) of every query row q < n_query against every gallery row
    (items n_query..n-1), as a sparse [Q, G] matrix of its non-zero values."""
    n = v.shape[0]
    n_gallery = n - n_query
    vg = v[n_query:].tocsc()
    mass = np.asarray(v.sum(axis=1)).ravel()

    def overlaps(lo: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(J, gallery column, row count) of the query rows lo..hi, row-major."""
        hi = min(lo + query_block, n_query)
        block = v[lo:hi].tocoo()
        start, stop = vg.indptr[block.col], vg.indptr[block.col + 1]
        count = stop - start
        pos = np.repeat(start - np.cumsum(count) + count, count) + np.arange(count.sum())
        g = vg.indices[pos]
        mins = np.minimum(np.repeat(block.data, count), vg.data[pos])
        key = np.repeat(block.row.astype(np.int64), count) * n_gallery + g
        acc = np.bincount(key, weights=mins, minlength=(hi - lo) * n_gallery)
        flat = np.flatnonzero(acc)           # row-major, as np.nonzero, far faster
        r, c = np.divmod(flat, n_gallery)
        smin = acc[flat]
        smax = mass[lo + r] + mass[n_query + c] - smin
        return smin / smax, c, np.bincount(r, minlength=hi - lo)
    # the blocks' row-major entries are the CSR arrays themselves, in order
    parts = list(workers.pmap(overlaps, range(0, n_query, query_block)))
    if not parts:
        return sparse.csr_matrix((0, n_gallery))
    data, cols, counts = (np.concatenate(x) for x in zip(*parts))
    indptr = np.concatenate([[0], np.cumsum(counts)])
    return sparse.csr_matrix((data, cols, indptr), shape=(n_query, n_gallery))


def reranked_score(score_fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
                   overlap: sparse.csr_matrix, params: RerankParams
                   ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """score_fn(q_idx, g_idx) of the re-ranked list: eq. 6 blockwise (the
    overlaps of the latest query block are kept dense, per thread: a ranking scans
    the gallery block by block for one query block)."""
    last = threading.local()

    def score(q_idx: np.ndarray, g_idx: np.ndarray) -> np.ndarray:
        if getattr(last, "q", None) is None or not np.array_equal(last.q, q_idx):
            last.q, last.rows = q_idx.copy(), overlap[q_idx].toarray()
        j = last.rows[:, g_idx]
        s = np.asarray(score_fn(q_idx, g_idx), np.float64)
        return (1.0 - params.lam) * j + params.lam * s / params.tau
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
                   ) -> Tuple[sparse.csr_matrix, Dict[str, float]]:
    """The Jaccard overlaps J [Q, G] (eq. 5) of n_query queries followed by a
    gallery, from the similarity of all n items (block and pair scorers), and the
    mean sizes of the sets."""
    v, sizes = rerank_weights(score_block, pair_score, n, params)
    overlap = jaccard_overlap(v, n_query)
    sizes["overlaps_per_query"] = overlap.nnz / max(n_query, 1)
    log("re-ranking: " + ", ".join(f"{k} {v:.1f}" for k, v in sizes.items()))
    return overlap, sizes
