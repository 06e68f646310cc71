"""Fusing visual similarity with the ST model (paper §3.3 and two alternatives).

All functions are elementwise on arrays of any (equal, broadcastable) shape.
"""
from __future__ import annotations

import numpy as np

EPS = 1e-12


def visual_probability(cosine: np.ndarray) -> np.ndarray:
    """P_v of eqs. 9 and the logistic fusion: (1 + cos) / 2 ∈ [0, 1]."""
    return np.clip((1.0 + np.asarray(cosine, np.float64)) * 0.5, 0.0, 1.0)


def standardised_log_p_v(cosine: np.ndarray, mean: float, scale: float,
                         in_place: bool = False) -> np.ndarray:
    """log P_v of the log-linear mix, up to a constant: (cos − μ) / σ.

    μ, σ: mean and standard deviation of the cosine over all cross-camera train
    pairs (vision.cosine_moments), so vision is measured in units of its own
    random-pair spread whatever the embedding's cosine range. `in_place`: `cosine`
    is a float64 array the result may overwrite (the same values, fewer copies).
    """
    if not in_place:
        return (np.asarray(cosine, np.float64) - mean) / scale
    cosine -= mean
    cosine /= scale
    return cosine


def bayesian_fusion(p_v: np.ndarray, p_st: np.ndarray, p_diff: np.ndarray,
                    p_rand: np.ndarray, alpha: float = 0.0, beta: float = 0.0) -> np.ndarray:
    """Paper eq. 9: (P_st(1−α) − β·P_diff) · (P_v + α/(1−α−β)) / P_rand.

    With α = β = 0 this is P_v · P_st / P_rand.
    """
    st = p_st * (1.0 - alpha) - beta * p_diff
    return st * (p_v + alpha / (1.0 - alpha - beta)) / p_rand


def log_linear_fusion(log_p_v: np.ndarray, log_ratio: np.ndarray, weight: float = 1.0,
                      in_place: bool = False) -> np.ndarray:
    """w · log P_v + log(P_st / P_rand) (the ST log-ratio already shrunk).
    `in_place`: log_p_v is a float64 array of the result's shape it may overwrite."""
    if not in_place:
        return weight * log_p_v + log_ratio
    if weight != 1.0:           # w · x is x itself for w = 1, bit for bit
        log_p_v *= weight
    log_p_v += log_ratio
    return log_p_v


def logistic(x: np.ndarray, lam: float, gamma: float) -> np.ndarray:
    """st-ReID's logistic smoothing f(x; λ, γ) = 1 / (1 + λ e^{−γx})."""
    return 1.0 / (1.0 + lam * np.exp(-gamma * np.asarray(x, np.float64)))


def logistic_fusion(p_v: np.ndarray, p_st: np.ndarray, lam0: float = 1.0,
                    gamma0: float = 5.0, lam1: float = 1.0, gamma1: float = 5.0
                    ) -> np.ndarray:
    """st-ReID (Wang et al. 2019): f(P_v; λ0, γ0) · f(P_st; λ1, γ1)."""
    return logistic(p_v, lam0, gamma0) * logistic(p_st, lam1, gamma1)
