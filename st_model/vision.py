"""Label-free statistics of the visual similarity on the train split."""
from __future__ import annotations

from typing import Tuple

import numpy as np


def cosine_moments(features: np.ndarray, camera: np.ndarray) -> Tuple[float, float]:
    """Exact mean and standard deviation of cos(x_i, x_j) over all ordered pairs of
    train images from different cameras, without enumerating pairs:
    Σ cos = |S|² − Σ_c |S_c|²,  Σ cos² = ‖Q‖² − Σ_c ‖Q_c‖²  (S = Σ x, Q = Σ x xᵀ).
    """
    x = np.asarray(features, np.float64)
    s_all = x.sum(axis=0)
    q_all = x.T @ x
    n = x.shape[0]
    sum1, sum2, count = float(s_all @ s_all), float((q_all ** 2).sum()), float(n) * n
    for c in np.unique(camera):
        xc = x[camera == c]
        sc = xc.sum(axis=0)
        qc = xc.T @ xc
        sum1 -= float(sc @ sc)
        sum2 -= float((qc ** 2).sum())
        count -= float(xc.shape[0]) ** 2
    if count <= 0:
        return 0.0, 1.0
    mean = sum1 / count
    var = max(sum2 / count - mean ** 2, 1e-12)
    return mean, float(np.sqrt(var))
