"""Blockwise top-k search: never an N×N score matrix in one piece.

`top_k(score_block, n_rows, n_cols, k)` scans column blocks for each row block,
keeping a running top-k. Ties are broken by the lower column index, so the result
does not depend on the block sizes' effect on the order of equal scores. Excluded
pairs score -inf and never enter a result (rows with fewer than k candidates are
padded with index -1 and score -inf).
"""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import numpy as np

from st_model import workers

ScoreBlock = Callable[[np.ndarray, np.ndarray], np.ndarray]

DEFAULT_ROW_BLOCK = 1024
DEFAULT_COL_BLOCK = 4096
FIRST_WIDTH_PER_K = 8   # see top_k_rows
SEED_ORDER, SEED_SPARE, SEED_GROUPS = 8, 3, 64   # see _seed_threshold
BUFFER_PER_K = 4        # hits buffered per row (× k) before a merge


def self_pairs(rows: np.ndarray, cols: np.ndarray) -> Optional[np.ndarray]:
    """[R, C] mask of the pairs row == col of a block whose rows and columns index one
    set, or None when the block cannot hold any (its index ranges do not overlap)."""
    if rows.size == 0 or cols.size == 0 or rows.min() > cols.max() or cols.min() > rows.max():
        return None
    return rows[:, None] == cols[None, :]


def _merge_top_k(idx: np.ndarray, score: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Top-k of each row of (idx, score) by score desc, then index asc."""
    if idx.shape[1] > k:
        part = np.argpartition(-score, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(score, part, 1).min(axis=1, keepdims=True)
        # keep everything tied with the k-th score so the index tie-break is exact
        keep = score >= kth
        width = int(keep.sum(axis=1).max())
        if width == k:  # no ties at the k-th score: the partition is the top-k set
            order = part
        else:
            order = np.argsort(~keep, axis=1, kind="stable")[:, :width]
        idx = np.take_along_axis(idx, order, 1)
        score = np.take_along_axis(score, order, 1)
    key_idx = np.where(idx < 0, np.iinfo(np.int64).max, idx)
    order = np.lexsort((key_idx, -score), axis=1) if idx.size else np.zeros_like(idx)
    idx = np.take_along_axis(idx, order, 1)[:, :k]
    score = np.take_along_axis(score, order, 1)[:, :k]
    return idx, score


def _above(s: np.ndarray, cols: np.ndarray, thresh: np.ndarray
           ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column, score) of the entries of a block above each row's threshold,
    row-major. A later (higher-index) column tied with a row's k-th score loses the
    tie-break, so only strictly greater scores can enter."""
    # a flat index split by the width is 15× faster than numpy's two-dimensional
    # nonzero on a 256 × 1024 block
    hit_row, hit_col = np.divmod(np.flatnonzero(s > thresh[:, None]), s.shape[1])
    return hit_row, cols[hit_col], s[hit_row, hit_col]


def _merge_hits(best_i: np.ndarray, best_s: np.ndarray, hits, k: int
                ) -> Tuple[np.ndarray, np.ndarray]:
    """The running top-k (best_i, best_s) [R, k] merged with buffered hits, a list of
    _above results in column order: each row's hits laid out in one padded row."""
    hit_row, hit_col, hit_s = (np.concatenate(x) for x in zip(*hits))
    if len(hits) > 1:
        order = np.argsort(hit_row, kind="stable")     # columns stay ascending
        hit_row, hit_col, hit_s = hit_row[order], hit_col[order], hit_s[order]
    counts = np.bincount(hit_row, minlength=best_i.shape[0])
    rows = np.flatnonzero(counts)
    first = np.cumsum(counts) - counts
    slot = np.arange(hit_row.size) - first[hit_row]
    line = np.cumsum(counts > 0)[hit_row] - 1
    idx = np.full((rows.size, int(counts.max())), -1, np.int64)
    sc = np.full(idx.shape, -np.inf)
    idx[line, slot], sc[line, slot] = hit_col, hit_s
    best_i, best_s = best_i.copy(), best_s.copy()
    best_i[rows], best_s[rows] = _merge_top_k(np.concatenate([best_i[rows], idx], axis=1),
                                              np.concatenate([best_s[rows], sc], axis=1), k)
    return best_i, best_s


def _seed_threshold(score_block: ScoreBlock, rows: np.ndarray, n_cols: int, k: int,
                    col_start: int) -> Optional[np.ndarray]:
    """A guess at each row's k-th best score from evenly spaced columns, so many
    that about SEED_SPARE · k of the row's columns beat their SEED_ORDER-th best:
    the SEED_ORDER-th best of the maxima of SEED_GROUPS interleaved groups (at most
    the sample's SEED_ORDER-th best; a partition of the whole sample costs more than
    scoring it). None where such a sample would not be much narrower than the row."""
    width = n_cols - col_start
    groups = -(-SEED_ORDER * width // (SEED_SPARE * k * SEED_GROUPS))
    m = groups * SEED_GROUPS
    if 4 * m > width:
        return None
    cols = col_start + np.arange(m, dtype=np.int64) * width // m
    s = np.asarray(score_block(rows, cols), np.float64)
    tops = s.reshape(len(rows), groups, SEED_GROUPS).max(axis=1)
    return np.partition(tops, SEED_GROUPS - SEED_ORDER, axis=1)[:, SEED_GROUPS - SEED_ORDER]


def top_k_rows(score_block: ScoreBlock, rows: np.ndarray, n_cols: int, k: int,
               col_block: int = DEFAULT_COL_BLOCK, col_start: int = 0,
               seed: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """Top-k columns col_start..n_cols-1 of the given rows: (index int64 [R, k],
    score float [R, k]); col_start > 0 searches one tile of a blocked join
    (merge_top_k of a row's tiles gives its top-k over all columns).

    Entries above a row's threshold are buffered and merged into its top-k when
    BUFFER_PER_K · k have gathered (and at the end); the threshold is then the k-th
    best so far. A wide row starts from a guess (_seed_threshold): rows where fewer
    than k columns beat it are searched again without one, so the result is exact
    either way. A narrow row starts from its first FIRST_WIDTH_PER_K · k columns."""
    r = rows.shape[0]
    best_i = np.full((r, k), -1, np.int64)
    best_s = np.full((r, k), -np.inf, np.float64)
    guess = _seed_threshold(score_block, rows, n_cols, k, col_start) if seed else None
    thresh = np.full(r, -np.inf) if guess is None else guess
    hits, pending = [], np.zeros(r, np.int64)
    for start in range(col_start, n_cols, col_block):
        cols = np.arange(start, min(start + col_block, n_cols), dtype=np.int64)
        s = np.asarray(score_block(rows, cols), np.float64)
        if start == col_start and guess is None:
            # the block's first columns set a threshold, the rest enter as hits (the
            # same merge, so the same result; one argpartition over the whole block
            # cost 3× more)
            head = min(s.shape[1], FIRST_WIDTH_PER_K * k)
            best_i, best_s = _merge_top_k(
                np.concatenate([best_i, np.broadcast_to(cols[:head], (r, head))], axis=1),
                np.concatenate([best_s, s[:, :head]], axis=1), k)
            thresh = best_s[:, -1]
            if head == s.shape[1]:
                continue
            s, cols = s[:, head:], cols[head:]
        found = _above(s, cols, thresh)
        if found[0].size == 0:
            continue
        hits.append(found)
        pending += np.bincount(found[0], minlength=r)
        if pending.max() > BUFFER_PER_K * k:
            best_i, best_s = _merge_hits(best_i, best_s, hits, k)
            thresh = best_s[:, -1] if guess is None else np.maximum(guess, best_s[:, -1])
            hits, pending = [], np.zeros(r, np.int64)
    if hits:
        best_i, best_s = _merge_hits(best_i, best_s, hits, k)
    if guess is not None:
        # exact only where k columns beat the guess (or it let every column in)
        missed = np.isfinite(guess) & ~(best_s[:, -1] > guess)
        if missed.any():
            best_i[missed], best_s[missed] = top_k_rows(
                score_block, rows[missed], n_cols, k, col_block, col_start, seed=False)
    best_i = np.where(np.isfinite(best_s), best_i, -1)
    return best_i, best_s


def merge_top_k(parts, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Top-k of the same rows over several (index, score) results of top_k_rows on
    disjoint column ranges. Exact, in any order of the parts: the top-k follow one
    total order (score desc, index asc), and equal column blocks score bit for bit
    alike in every path."""
    parts = list(parts)
    idx, score = _merge_top_k(np.concatenate([p[0] for p in parts], axis=1),
                              np.concatenate([p[1] for p in parts], axis=1), k)
    return np.where(np.isfinite(score), idx, -1), score


def top_k(score_block: ScoreBlock, n_rows: int, n_cols: int, k: int,
          row_block: int = DEFAULT_ROW_BLOCK, col_block: int = DEFAULT_COL_BLOCK,
          progress: Callable[[int, int], None] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Top-k columns of every row, blockwise over rows and columns (row blocks on
    workers.pmap's threads: score_block must be safe to call from several)."""
    out_i = np.empty((n_rows, k), np.int64)
    out_s = np.empty((n_rows, k), np.float64)
    blocks = [np.arange(start, min(start + row_block, n_rows), dtype=np.int64)
              for start in range(0, n_rows, row_block)]
    search = lambda rows: top_k_rows(score_block, rows, n_cols, k, col_block)  # noqa: E731
    for rows, (idx, score) in zip(blocks, workers.pmap(search, blocks)):
        out_i[rows], out_s[rows] = idx, score
        if progress is not None:
            progress(rows[-1] + 1, n_rows)
    return out_i, out_s


def row_blocks(n_rows: int, row_block: int = DEFAULT_ROW_BLOCK):
    """(start, stop) of each row block — the unit of work of the Beam transforms."""
    return [(s, min(s + row_block, n_rows)) for s in range(0, n_rows, row_block)]


def tiles(row_block: Tuple[int, int], n_cols: int, col_block: int = DEFAULT_COL_BLOCK):
    """((row start, row stop), (col start, col stop)) of one row block's tiles: the
    column blocks top_k_rows scans, so every path scores the same blocks."""
    return [(row_block, c) for c in row_blocks(n_cols, col_block)]


def visual_score_block(x_rows: np.ndarray, x_cols: np.ndarray, cam_rows: np.ndarray,
                       cam_cols: np.ndarray, self_pairs: bool,
                       offsets: Tuple[int, int] = (0, 0)) -> ScoreBlock:
    """Cosine similarity (rows of x are unit vectors), -inf for same-camera pairs.

    With `self_pairs=True` rows and columns index the same set (train vs train).
    x_rows / x_cols hold the rows and columns from offsets[0] / offsets[1] on (a
    part of the set, as a worker reads it); the score takes global indices.
    """
    r0, c0 = offsets

    def score(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        s = x_rows[rows - r0] @ x_cols[cols - c0].T
        s = s.astype(np.float64)
        s[cam_rows[rows - r0][:, None] == cam_cols[cols - c0][None, :]] = -np.inf
        return s
    return score
