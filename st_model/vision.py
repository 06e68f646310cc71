"""The visual similarity: cosines of row pairs, and its label-free statistics on the
train split."""
from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np

from st_model import workers

PAIR_CHUNK = 1 << 14      # row pairs per chunk of pair_cosines (stay in cache)
MOMENT_BLOCK = 1024       # rows per partial sum: the same blocks in every path
FIXED_POINT = 2.0 ** 32   # partial sums as integers in units of 2⁻³², so adding them
                          # is exact and order-free (Beam combines in any order)


def pair_cosines(x: np.ndarray, i: np.ndarray, y: np.ndarray, j: np.ndarray
                 ) -> np.ndarray:
    """cos(x_i[k], y_j[k]) of unit rows for every k, float64, in chunks on
    workers.pmap's threads (gathering all rows at once took 0.5 s for 600k pairs)."""
    i, j = np.asarray(i), np.asarray(j)

    def chunk(lo: int) -> np.ndarray:
        return np.einsum("ij,ij->i", x[i[lo:lo + PAIR_CHUNK]], y[j[lo:lo + PAIR_CHUNK]])
    parts = list(workers.pmap(chunk, range(0, i.size, PAIR_CHUNK)))
    return np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)


class CosineSums(NamedTuple):
    """Per-camera sums of a set of unit rows, in fixed point: S_c = Σ x [C, D] and
    Q_c = Σ x xᵀ [C, D, D] (int64), and the row count n_c [C], for `cameras`."""
    cameras: np.ndarray
    count: np.ndarray
    s: np.ndarray
    q: np.ndarray


def _fixed(a: np.ndarray) -> np.ndarray:
    return np.round(a * FIXED_POINT).astype(np.int64)


def cosine_sums(features: np.ndarray, camera: np.ndarray, cameras: Sequence[int]
                ) -> CosineSums:
    """CosineSums of one block of rows (at most MOMENT_BLOCK of them: the fixed-point
    partial sums must not overflow int64 when added over up to 2³⁰ rows)."""
    x = np.asarray(features, np.float64)
    cams = np.asarray(cameras, np.int64)
    d = x.shape[1]
    s = np.zeros((cams.size, d), np.int64)
    q = np.zeros((cams.size, d, d), np.int64)
    count = np.zeros(cams.size, np.int64)
    for ci, c in enumerate(cams):
        xc = x[camera == c]
        if xc.shape[0]:
            s[ci], q[ci], count[ci] = _fixed(xc.sum(axis=0)), _fixed(xc.T @ xc), len(xc)
    return CosineSums(cams, count, s, q)


def add_cosine_sums(a: Optional[CosineSums], b: Optional[CosineSums]
                    ) -> Optional[CosineSums]:
    """a + b (exact integer sums; None is the empty sum)."""
    if a is None or b is None:
        return a if b is None else b
    return CosineSums(a.cameras, a.count + b.count, a.s + b.s, a.q + b.q)


def moments_of_sums(sums: Optional[CosineSums]) -> Tuple[float, float]:
    """Mean and standard deviation of cos(x_i, x_j) over all ordered pairs of rows
    from different cameras, from the per-camera sums (no pair enumerated):
    Σ cos = |S|² − Σ_c |S_c|²,  Σ cos² = ‖Q‖² − Σ_c ‖Q_c‖²  (S = Σ_c S_c, Q = Σ_c Q_c).
    """
    if sums is None:
        return 0.0, 1.0
    s_c = sums.s.astype(np.float64) / FIXED_POINT
    q_c = sums.q.astype(np.float64) / FIXED_POINT
    s_all, q_all = s_c.sum(axis=0), q_c.sum(axis=0)
    n = float(sums.count.sum())
    sum1 = float(s_all @ s_all) - float(np.einsum("cd,cd->", s_c, s_c))
    sum2 = float((q_all ** 2).sum()) - float((q_c ** 2).sum())
    count = n * n - float((sums.count.astype(np.float64) ** 2).sum())
    if count <= 0:
        return 0.0, 1.0
    mean = sum1 / count
    var = max(sum2 / count - mean ** 2, 1e-12)
    return mean, float(np.sqrt(var))


def cosine_moments(features: np.ndarray, camera: np.ndarray) -> Tuple[float, float]:
    """Exact mean and standard deviation of cos(x_i, x_j) over all ordered pairs of
    train images from different cameras (moments_of_sums of the MOMENT_BLOCK row
    blocks' cosine_sums: the Beam path sums the same blocks)."""
    cameras = np.unique(camera)
    total = None
    for start in range(0, len(camera), MOMENT_BLOCK):
        rows = slice(start, start + MOMENT_BLOCK)
        total = add_cosine_sums(total, cosine_sums(features[rows], camera[rows], cameras))
    return moments_of_sums(total)

