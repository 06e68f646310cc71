"""Re-ID ranking metrics: CMC rank-k and mAP under the Market-1501 protocol.

Protocol (Zheng et al., ICCV 2015; torchreid / open-reid `eval_market1501`):
for a query q with identity p_q seen by camera c_q, the gallery is ranked by score
(higher = more similar) after removing

* junk images (gallery pid -1), and
* images of the query's own identity seen by the query's own camera;

distractors (gallery pid 0) stay in the ranking as negatives. The *true matches*
are the remaining gallery images of identity p_q (so from other cameras). A query
with no true match -- including a query whose own pid is -1 or 0, which names
nobody -- is excluded from the averages and counted in `RankingResult.excluded`.

With r_(1) < r_(2) < ... < r_(m) the 1-based ranks of q's m true matches:

    CMC_q(k) = [r_(1) <= k]                                                (1)
    AP_q     = (1/m) * sum_i  i / r_(i)   (precision at each true match)  (2)
    INP_q    = m / r_(m)                  (Ye et al., TPAMI 2021)         (3)

and rank-k / mAP / mINP are the means of (1) / (2) / (3) over evaluated queries,
in percent.

Ties: a gallery image g ranks above g' when its score is strictly higher, or equal
and its gallery index is lower -- a stable descending sort by score.

Memory stays flat as the gallery grows: no [n_query, n_gallery] matrix is ever
built. Queries are processed in blocks; first the scores of the block's true
matches are fetched, then the gallery is streamed in blocks counting, for every
true match m = (q, g_m) with score s_m, how many valid gallery images rank above it:

    r_m = 1 + #{g valid for q : s(q,g) > s_m  or  (s(q,g) = s_m and g < g_m)}   (4)

Junk is never scored. Peak memory is O(query_block * gallery_block) plus O(queries
+ true matches), whatever the gallery size.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

import numpy as np

from core.errors import InputError
from core.progress import log
from st_model import workers

ScoreFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

DEFAULT_QUERY_BLOCK = 128
DEFAULT_GALLERY_BLOCK = 2048
DEFAULT_MAX_RANK = 50
_EXACT_CHUNK = 1 << 20   # score entries per exact tie-resolving comparison
# cost of ranking one candidate item by binary search, in units of one score
# comparison; below it, few candidates are searched instead of comparing every item
_SPARSE_COST = 90
_NORM_CHUNK = 4096       # feature rows per chunk when computing norms
JUNK_PID = -1
DISTRACTOR_PID = 0


@dataclass(frozen=True)
class RankingResult:
    """CMC / mAP of one ranking (percent, 0-100) and how many queries it covers.

    cmc[k-1] is the CMC at rank k for k = 1..max_rank; `mINP` is the mean inverse
    negative penalty (eq. 3). `queries` were evaluated, `excluded` had no true match.
    """
    rank1: float
    rank5: float
    rank10: float
    mAP: float
    queries: int
    excluded: int
    mINP: float = float("nan")
    cmc: Tuple[float, ...] = ()

    def as_dict(self) -> Dict[str, float]:
        """{"rank1", "rank5", "rank10", "mAP", "queries"}, as written to metrics.json."""
        return {"rank1": self.rank1, "rank5": self.rank5, "rank10": self.rank10,
                "mAP": self.mAP, "queries": self.queries}

    def __str__(self) -> str:
        return (f"rank-1 {self.rank1:.2f}  rank-5 {self.rank5:.2f}  "
                f"rank-10 {self.rank10:.2f}  mAP {self.mAP:.2f}  "
                f"({self.queries} queries, {self.excluded} excluded)")


# --------------------------------------------------------------------------- inputs

def _labels(arr, what: str, source: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim != 1:
        raise InputError(f"{source}: '{what}' must be a 1-D array, got shape {a.shape}")
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or a.size == 0):
        if np.issubdtype(a.dtype, np.floating) and np.isfinite(a).all() \
                and (a == np.round(a)).all():
            return a.astype(np.int64)
        raise InputError(f"{source}: '{what}' must hold integers, got dtype {a.dtype}")
    return np.asarray(a, dtype=np.int64)


def _pair(pid, cam, side: str, source: str) -> Tuple[np.ndarray, np.ndarray]:
    p = _labels(pid, f"{side}_pid", source)
    c = _labels(cam, f"{side}_cam", source)
    if p.shape != c.shape:
        raise InputError(f"{source}: length mismatch: {side}_pid has {p.size} entries, "
                         f"{side}_cam has {c.size}")
    return p, c


def _positive_int(value, what: str, source: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < 1:
        raise InputError(f"{source}: {what} must be a positive integer, got {value!r}")
    return int(value)


def _score_block(score_fn: ScoreFn, q_idx: np.ndarray, g_idx: np.ndarray,
                 source: str, private: bool = False) -> np.ndarray:
    """score_fn(q_idx, g_idx) checked: shape [len(q), len(g)], real, no NaN.

    private: return an array nobody else holds (score_fn's own if it is a fresh
    array referenced nowhere else, otherwise a copy), so it may be written to.
    """
    s = np.asarray(score_fn(q_idx, g_idx))
    if s.shape != (q_idx.size, g_idx.size):
        raise InputError(f"{source}: score_fn returned shape {s.shape} for "
                         f"{q_idx.size} queries x {g_idx.size} gallery items, expected "
                         f"({q_idx.size}, {g_idx.size})")
    if s.dtype.kind not in "fiub":
        raise InputError(f"{source}: score_fn returned non-real dtype {s.dtype}")
    if s.dtype not in (np.float32, np.float64):
        s = s.astype(np.float64)
    if np.isnan(s).any():
        r, c = np.argwhere(np.isnan(s))[0]
        raise InputError(f"{source}: score_fn returned NaN scores (first: query "
                         f"{q_idx[r]}, gallery {g_idx[c]}); scores must be ordered")
    if private and not (s.flags.owndata and s.flags.writeable
                        and sys.getrefcount(s) <= 2):
        s = s.copy()
    return s


# ----------------------------------------------------------------- true matches

@dataclass
class _Matches:
    """True matches of the evaluated queries, grouped per query (gallery order)."""
    queries: np.ndarray   # [n_eval] query indices, sorted by match count
    start: np.ndarray     # [n_eval] offset of each query's matches in `gallery`
    count: np.ndarray     # [n_eval] number of true matches (>= 1)
    gallery: np.ndarray   # [sum(count)] gallery indices of the true matches
    ignored_start: np.ndarray    # [n_eval] the same for the ignored images: the
    ignored_count: np.ndarray    # query's identity seen by the query's camera
    ignored_gallery: np.ndarray


def _true_matches(query_pid: np.ndarray, query_cam: np.ndarray,
                  gallery_pid: np.ndarray, gallery_cam: np.ndarray) -> _Matches:
    """Gallery images of the query's identity from another camera, per query."""
    identity = np.flatnonzero(gallery_pid > DISTRACTOR_PID)
    order = identity[np.argsort(gallery_pid[identity], kind="stable")]
    sorted_pid = gallery_pid[order]
    lo = np.searchsorted(sorted_pid, query_pid, side="left")
    hi = np.searchsorted(sorted_pid, query_pid, side="right")
    same_pid = np.where(query_pid > DISTRACTOR_PID, hi - lo, 0)
    # every (query, same-pid gallery image) pair, then drop the query's own camera
    q_of_pair = np.repeat(np.arange(query_pid.size), same_pid)
    first = np.cumsum(same_pid) - same_pid
    within = np.arange(q_of_pair.size) - np.repeat(first, same_pid)
    g_of_pair = order[np.repeat(lo, same_pid) + within]
    keep = gallery_cam[g_of_pair] != query_cam[q_of_pair]
    count = np.bincount(q_of_pair[keep], minlength=query_pid.size)
    n_ignored = np.bincount(q_of_pair[~keep], minlength=query_pid.size)
    # evaluated queries, fewest matches first so query blocks are evenly filled
    queries = np.flatnonzero(count > 0)
    queries = queries[np.argsort(count[queries], kind="stable")]
    offsets = np.cumsum(count) - count
    ignored_offsets = np.cumsum(n_ignored) - n_ignored
    return _Matches(queries, offsets[queries], count[queries], g_of_pair[keep],
                    ignored_offsets[queries], n_ignored[queries], g_of_pair[~keep])


def _match_table(m: _Matches, sel: slice) -> Tuple[np.ndarray, np.ndarray]:
    """[b, M] gallery indices of the true matches of queries `sel` (-1 = padding)."""
    count, start = m.count[sel], m.start[sel]
    width = int(count.max())
    slot = np.arange(width)
    filled = slot[None, :] < count[:, None]
    table = np.full((count.size, width), -1, np.int64)
    table[filled] = m.gallery[(start[:, None] + slot[None, :])[filled]]
    return table, filled


def _ignored_pairs(m: _Matches, sel: slice) -> Tuple[np.ndarray, np.ndarray]:
    """(row in block, gallery index) of the images ignored for queries `sel`,
    in gallery order."""
    count, start = m.ignored_count[sel], m.ignored_start[sel]
    rows = np.repeat(np.arange(count.size), count)
    first = np.cumsum(count) - count
    gallery = m.ignored_gallery[np.repeat(start - first, count) + np.arange(rows.size)]
    order = np.argsort(gallery, kind="stable")
    return rows[order], gallery[order]


def _match_scores(score_fn: ScoreFn, q_idx: np.ndarray, table: np.ndarray,
                  filled: np.ndarray, gallery_block: int, source: str) -> np.ndarray:
    """Scores s(q, g) of every true match in `table` ([b, M], NaN = padding)."""
    wanted = np.unique(table[filled])
    rows, cols = np.nonzero(filled)
    pos = np.searchsorted(wanted, table[filled])
    out = np.full(table.shape, np.nan)
    step = max(1, gallery_block)
    for lo in range(0, wanted.size, step):
        block = _score_block(score_fn, q_idx, wanted[lo:lo + step], source)
        here = (pos >= lo) & (pos < lo + step)
        out[rows[here], cols[here]] = block[rows[here], pos[here] - lo]
    return out


# ------------------------------------------------------------- streamed ranks

def _count_greater(scores: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """[b, M] counts #{g : scores[r, g] > cut[r, j]} (NaN on either side never counts).

    Only items above a row's lowest cut can count. When they are few (a good
    ranking) they are located among the row's sorted cuts by one binary search;
    otherwise every cut is compared with the whole row.
    """
    lowest = np.fmin.reduce(cut, axis=1)
    candidate = scores > lowest[:, None]
    n_candidates = int(np.count_nonzero(candidate))
    if n_candidates * _SPARSE_COST < scores.size * cut.shape[1]:
        return _count_greater_sparse(scores, cut, candidate)
    count = np.zeros(cut.shape, np.int64)
    for j in range(cut.shape[1]):
        count[:, j] = np.add.reduce(scores > cut[:, j, None], axis=1, dtype=np.int64)
    return count


def _count_greater_sparse(scores: np.ndarray, cut: np.ndarray,
                          candidate: np.ndarray) -> np.ndarray:
    """_count_greater from the candidate items only: key (row, score) as a complex
    number (numpy orders complex numbers lexicographically), searched among the
    sorted (row, cut) keys; h = how many of its row's cuts an item exceeds."""
    b, width = cut.shape
    order = np.argsort(cut, axis=1)                       # NaN padding last
    sorted_cut = np.take_along_axis(cut, order, axis=1)
    filled = ~np.isnan(sorted_cut)
    t_row, t_slot = np.nonzero(filled)
    t_key = np.empty(t_row.size, np.complex128)
    t_key.real, t_key.imag = t_row, sorted_cut[t_row, t_slot]
    per_row = filled.sum(axis=1)
    row_start = np.cumsum(per_row) - per_row
    rows, cols = np.divmod(np.flatnonzero(candidate), scores.shape[1])
    key = np.empty(rows.size, np.complex128)
    key.real, key.imag = rows, scores[rows, cols]
    h = np.searchsorted(t_key, key, side="left") - row_start[rows]
    hist = np.bincount(rows * (width + 1) + h, minlength=b * (width + 1))
    # items exceeding the j-th smallest cut of a row: those with h > j
    above = np.cumsum(hist.reshape(b, width + 1)[:, ::-1], axis=1)[:, ::-1][:, 1:]
    count = np.empty((b, width), np.int64)
    np.put_along_axis(count, order, above, axis=1)
    return count


def _ranked_above(scores: np.ndarray, g_idx: np.ndarray, g_lo: int, g_hi: int,
                  thresh: np.ndarray, table: np.ndarray) -> np.ndarray:
    """For every true match (row r, slot j), how many valid gallery items of this
    block rank above it (the count of eq. 4, restricted to the block).

    `scores` [b, B] are the scores of gallery items `g_idx` (ascending, the non-junk
    items of [g_lo, g_hi)), NaN for ignored items (NaN compares false); `thresh`
    [b, M] the matches' scores s_m (NaN = padding), `table` their gallery indices.
    """
    width = scores.shape[1]
    dtype = scores.dtype
    t = thresh.astype(dtype)
    # a block wholly before g_m counts ties (s >= s_m, i.e. s > prev_float(s_m)),
    # any other block counts s > s_m only
    here = (table >= g_lo) & (table < g_hi)
    before = table >= g_hi
    cut = np.where(before, np.nextafter(t, dtype.type(-np.inf)), t)
    count = _count_greater(scores, cut)
    # what the cut cannot express: ties in the block holding g_m (those before g_m
    # count, g_m itself never does) and ties at s_m = -inf (no float lies below it)
    rows, slots = np.nonzero(here | (before & np.isneginf(t)))
    step = max(1, _EXACT_CHUNK // width)
    for lo in range(0, rows.size, step):
        r, j = rows[lo:lo + step], slots[lo:lo + step]
        s, tm = scores[r], t[r, j][:, None]
        ties = np.count_nonzero(s == tm, axis=1)
        own = here[r, j]
        own_col = np.minimum(np.searchsorted(g_idx, table[r, j]), width - 1)
        self_score = s[np.arange(r.size), own_col]
        count[r, j] += np.where(own, -(self_score > tm[:, 0]).astype(np.int64), ties)
        tangled = own & (ties > (self_score == tm[:, 0]))
        if tangled.any():                   # another item ties with the match here
            k = np.flatnonzero(tangled)
            gm, sk, tk = table[r[k], j[k]][:, None], s[k], tm[k]
            above = ((sk > tk) & (g_idx != gm)) | ((sk == tk) & (g_idx < gm))
            count[r[k], j[k]] = np.count_nonzero(above, axis=1)
    return count


def _block_ranks(score_fn: ScoreFn, q_idx: np.ndarray, table: np.ndarray,
                 thresh: np.ndarray, ignored: Tuple[np.ndarray, np.ndarray],
                 gallery_pid: np.ndarray, gallery_block: int,
                 source: str) -> np.ndarray:
    """1-based rank of every true match of the query block (eq. 4), streamed over
    the gallery; junk is never scored, the query's own-camera images are masked."""
    count = np.zeros(table.shape, np.int64)
    ignored_rows, ignored_g = ignored
    n_gallery = gallery_pid.size
    for g_lo in range(0, n_gallery, gallery_block):
        g_hi = min(g_lo + gallery_block, n_gallery)
        g_idx = g_lo + np.flatnonzero(gallery_pid[g_lo:g_hi] != JUNK_PID)
        if g_idx.size == 0:
            continue
        s = _score_block(score_fn, q_idx, g_idx, source, private=True)
        a, b = np.searchsorted(ignored_g, [g_lo, g_hi])
        s[ignored_rows[a:b], np.searchsorted(g_idx, ignored_g[a:b])] = np.nan
        count += _ranked_above(s, g_idx, g_lo, g_hi, thresh, table)
    return 1 + count


def _sorted_ranks(ranks: np.ndarray, filled: np.ndarray) -> List[np.ndarray]:
    """Each row's match ranks (eq. 4), ascending, without the padding."""
    r = np.sort(np.where(filled, ranks, np.iinfo(np.int64).max // 2), axis=1)
    i = np.arange(1, r.shape[1] + 1)[None, :]
    # distinct matches hold distinct ranks; should score_fn jitter between calls
    # (re-blocked float sums), keep r_(i) > r_(i-1) so AP stays a precision mean
    r = np.maximum.accumulate(r - i, axis=1) + i
    return [row[:m] for row, m in zip(r, filled.sum(axis=1))]


# ------------------------------------------------------------------ public API

@dataclass(frozen=True)
class MatchRanks:
    """The ranks of every evaluated query's true matches (eq. 4).

    ranks[i] holds the 1-based ranks r_(1) < ... < r_(m) of the true matches of
    query `queries[i]` (an index into the query set); queries come in evaluation
    order (fewest matches first, then by index). `n_query` counts all queries,
    the `excluded` ones had no true match.
    """
    queries: np.ndarray
    ranks: Tuple[np.ndarray, ...]
    n_query: int

    @property
    def excluded(self) -> int:
        return self.n_query - int(self.queries.size)


def _checked_ranks(ranks) -> np.ndarray:
    r = np.asarray(ranks)
    if r.ndim != 1 or r.size == 0 or not np.issubdtype(r.dtype, np.integer):
        raise ValueError(f"match ranks must be a non-empty 1-D integer array, got "
                         f"shape {r.shape}, dtype {r.dtype}")
    if r[0] < 1 or (r.size > 1 and (np.diff(r) <= 0).any()):
        raise ValueError(f"match ranks must be strictly increasing and >= 1, got "
                         f"{r.tolist()[:10]}")
    return r


def best_rank(ranks) -> int:
    """r_(1): the query counts as a hit at CMC rank k iff best_rank <= k (eq. 1)."""
    return int(_checked_ranks(ranks)[0])


def average_precision(ranks) -> float:
    """AP_q = (1/m) sum_i i / r_(i) (eq. 2), summed left to right."""
    r = _checked_ranks(ranks)
    return float(np.cumsum(np.arange(1, r.size + 1) / r)[-1] / r.size)


def inverse_negative_penalty(ranks) -> float:
    """INP_q = m / r_(m) (eq. 3)."""
    r = _checked_ranks(ranks)
    return float(r.size / r[-1])


def query_match_ranks(score_fn: ScoreFn, query_pid, query_cam, gallery_pid,
                      gallery_cam, query_block: int = DEFAULT_QUERY_BLOCK,
                      gallery_block: int = DEFAULT_GALLERY_BLOCK, *,
                      progress: bool = False,
                      source: str = "query_match_ranks") -> MatchRanks:
    """Ranks (eq. 4) of the true matches of every query that has one.

    score_fn(q_idx, g_idx) -> [len(q_idx), len(g_idx)] scores (higher = more
    similar) for query indices q_idx and gallery indices g_idx; it is called with
    at most query_block x gallery_block pairs at a time, from workers.pmap's threads
    (query blocks side by side), and must give a pair the same score whatever else
    is in the call. Junk and the query's own-camera
    images of its identity are removed; ties follow the stable rule of the module
    docstring. `progress` reports to stderr; `source` prefixes error messages.

    Raises ValueError on length mismatches, non-integer labels, NaN scores, an
    empty query set, and a split with no valid query.
    """
    qp, qc = _pair(query_pid, query_cam, "query", source)
    gp, gc = _pair(gallery_pid, gallery_cam, "gallery", source)
    query_block = _positive_int(query_block, "query_block", source)
    gallery_block = _positive_int(gallery_block, "gallery_block", source)
    if qp.size == 0:
        raise InputError(f"{source}: the query set is empty")
    if gp.size == 0:
        raise InputError(f"{source}: the gallery is empty, no query can be evaluated")
    matches = _true_matches(qp, qc, gp, gc)
    n_eval = matches.queries.size
    if n_eval == 0:
        raise InputError(f"{source}: a split with no valid queries: none of the "
                         f"{qp.size} queries has a true match (same pid > 0, other "
                         f"camera) in the {gp.size}-image gallery")
    ranks: List[np.ndarray] = []
    t0, shown = time.monotonic(), time.monotonic()

    def rank_block(sel: slice) -> List[np.ndarray]:
        q_idx = matches.queries[sel]
        table, filled = _match_table(matches, sel)
        thresh = _match_scores(score_fn, q_idx, table, filled, gallery_block, source)
        block = _block_ranks(score_fn, q_idx, table, thresh,
                             _ignored_pairs(matches, sel), gp, gallery_block, source)
        return _sorted_ranks(block, filled)
    blocks = [slice(lo, min(lo + query_block, n_eval)) for lo in range(0, n_eval, query_block)]
    for sel, block_ranks in zip(blocks, workers.pmap(rank_block, blocks)):
        ranks.extend(block_ranks)
        if progress and (time.monotonic() - shown > 2.0 or sel.stop == n_eval):
            shown = time.monotonic()
            log(f"{source}: ranked {sel.stop}/{n_eval} queries against "
                f"{gp.size} gallery images ({shown - t0:.1f} s)")
    return MatchRanks(matches.queries, tuple(ranks), int(qp.size))


def evaluate_ranking(score_fn: ScoreFn, query_pid, query_cam, gallery_pid, gallery_cam,
                     query_block: int = DEFAULT_QUERY_BLOCK,
                     gallery_block: int = DEFAULT_GALLERY_BLOCK, *,
                     max_rank: int = DEFAULT_MAX_RANK, progress: bool = False,
                     source: str = "evaluate_ranking") -> RankingResult:
    """CMC rank-1/5/10, mAP and mINP (eqs. 1-3) of `score_fn` under the Market
    protocol: the means over the queries of `query_match_ranks` (same arguments)."""
    max_rank = _positive_int(max_rank, "max_rank", source)
    matched = query_match_ranks(score_fn, query_pid, query_cam, gallery_pid,
                                gallery_cam, query_block, gallery_block,
                                progress=progress, source=source)
    return ranking_result(matched, max_rank)


def ranking_result(matched: MatchRanks,
                   max_rank: int = DEFAULT_MAX_RANK) -> RankingResult:
    """Rank-k (eq. 1), mAP (eq. 2) and mINP (eq. 3): means over the evaluated
    queries of the per-query values, in percent."""
    max_rank = _positive_int(max_rank, "max_rank", "ranking_result")
    n_eval = matched.queries.size
    best = np.array([best_rank(r) for r in matched.ranks], np.int64)
    ap = np.array([average_precision(r) for r in matched.ranks])
    inp = np.array([inverse_negative_penalty(r) for r in matched.ranks])
    cmc = [100.0 * float(np.count_nonzero(best <= k)) / n_eval
           for k in range(1, max(max_rank, 10) + 1)]
    return RankingResult(rank1=cmc[0], rank5=cmc[4], rank10=cmc[9],
                         mAP=100.0 * float(ap.mean()), queries=int(n_eval),
                         excluded=matched.excluded, mINP=100.0 * float(inp.mean()),
                         cmc=tuple(cmc[:max_rank]))


def evaluable_queries(query_pid, query_cam, gallery_pid, gallery_cam,
                      source: str = "evaluable_queries") -> np.ndarray:
    """Indices (ascending) of the queries with at least one true match: those that
    evaluate_ranking averages over."""
    qp, qc = _pair(query_pid, query_cam, "query", source)
    gp, gc = _pair(gallery_pid, gallery_cam, "gallery", source)
    return np.sort(_true_matches(qp, qc, gp, gc).queries)


def ranked_gallery(score_fn: ScoreFn, q: int, query_pid, query_cam, gallery_pid,
                   gallery_cam, top: int, gallery_block: int = DEFAULT_GALLERY_BLOCK,
                   source: str = "ranked_gallery"
                   ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first `top` gallery images of query q's ranking under the protocol of the
    module docstring (junk and q's identity seen by q's camera removed, ties by
    gallery index): (gallery indices, scores, whether each is a true match)."""
    qp, qc = _pair(query_pid, query_cam, "query", source)
    gp, gc = _pair(gallery_pid, gallery_cam, "gallery", source)
    top = _positive_int(top, "top", source)
    if not 0 <= q < qp.size:
        raise ValueError(f"{source}: query index {q} outside [0, {qp.size})")
    pid, cam = qp[q], qc[q]
    same_id = (gp == pid) & (pid > DISTRACTOR_PID)
    valid = np.flatnonzero((gp != JUNK_PID) & ~(same_id & (gc == cam)))
    q_idx = np.array([q], np.int64)
    step = _positive_int(gallery_block, "gallery_block", source)
    scores = np.concatenate(
        [_score_block(score_fn, q_idx, valid[lo:lo + step], source)[0]
         for lo in range(0, valid.size, step)] or [np.zeros(0)])
    order = np.argsort(-scores, kind="stable")[:top]   # stable: ties by gallery index
    g = valid[order]
    return g, scores[order], same_id[g] & (gc[g] != cam)


def _checked_features(x, what: str, source: str) -> np.ndarray:
    """Features as an [N, D] array whose rows are finite and non-zero (checked in
    chunks, so no copy of the whole matrix is made)."""
    a = np.asarray(x)
    if a.ndim != 2 or a.shape[1] == 0:
        raise InputError(f"{source}: '{what}' must be an [N, D] matrix, got shape "
                         f"{a.shape}")
    if a.dtype.kind not in "fiu":
        raise InputError(f"{source}: '{what}' has non-numeric dtype {a.dtype}")
    for lo in range(0, a.shape[0], _NORM_CHUNK):
        part = a[lo:lo + _NORM_CHUNK]
        finite = np.isfinite(part).all(axis=1)
        if not finite.all():
            raise InputError(f"{source}: '{what}' has NaN/inf values (first at row "
                             f"{lo + int(np.flatnonzero(~finite)[0])})")
        zero = ~part.any(axis=1)
        if zero.any():
            raise InputError(f"{source}: '{what}' has an all-zero row (row "
                             f"{lo + int(np.flatnonzero(zero)[0])}); cosine "
                             f"similarity is undefined for it")
    return a


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm in float64 (max-abs first: no under/overflow)."""
    x = x.astype(np.float64)
    x /= np.abs(x).max(axis=1)[:, None]
    return x / np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]


def cosine_score_fn(query_features, gallery_features,
                    source: str = "cosine") -> ScoreFn:
    """score_fn(q, g) = <x_q, x_g> / (|x_q| |x_g|), in float64, block by block."""
    q = _checked_features(query_features, "query_features", source)
    g = _checked_features(gallery_features, "gallery_features", source)
    if q.shape[1] != g.shape[1]:
        raise InputError(f"{source}: query features have dimension {q.shape[1]}, "
                         f"gallery features {g.shape[1]}")

    def score(q_idx: np.ndarray, g_idx: np.ndarray) -> np.ndarray:
        return _unit(q[q_idx]) @ _unit(g[g_idx]).T

    return score


def evaluate_features(query_features, gallery_features, query_pid, query_cam,
                      gallery_pid, gallery_cam, query_block: int = DEFAULT_QUERY_BLOCK,
                      gallery_block: int = DEFAULT_GALLERY_BLOCK, *,
                      max_rank: int = DEFAULT_MAX_RANK, progress: bool = False,
                      source: str = "evaluate_features") -> RankingResult:
    """CMC / mAP (eqs. 1-2) of cosine similarity between query and gallery features.

    Features are [N, D] (any scale; rows are L2-normalised, all-zero rows rejected);
    scoring is blockwise, so memory stays O(query_block x gallery_block).
    """
    score_fn = cosine_score_fn(query_features, gallery_features, source)
    for side, x, pid in (("query", query_features, query_pid),
                         ("gallery", gallery_features, gallery_pid)):
        n_pid = _labels(pid, f"{side}_pid", source).size
        if np.shape(x)[0] != n_pid:
            raise InputError(f"{source}: length mismatch: {np.shape(x)[0]} {side} "
                             f"feature rows, {n_pid} {side} pids")
    return evaluate_ranking(score_fn, query_pid, query_cam, gallery_pid, gallery_cam,
                            query_block, gallery_block, max_rank=max_rank,
                            progress=progress, source=source)
