"""True-pair evidence from visual neighbours, read against the chance level
(the camera-topology view: Makris, Ellis & Black 2004; Tieu et al. 2005 read transit
times from the excess of cross-camera Δ histograms over chance).

The soft-weighted visual-neighbour histogram of node pair (a, b) mixes true pairs,
spread like the transit-time distribution T_ab, and false neighbours, spread like
all in-reach pairs (the exact random model r_ab), since a visual score says nothing
about when a *different* person passes:
    H_ab(Δ) = S_ab · T_ab(Δ) + (W_ab − S_ab) · r_ab(Δ),    W_ab = Σ_Δ H_ab(Δ).
So S · T = S · r + (H − W · r): the deviation of H from its chance level W · r,
added to the true mass spread like chance. W · r is exact up to sampling noise of
variance W2_ab · r_ab(Δ) per bin (W2 = Σ w²); after Parzen smoothing (σ bins):
    S_ab T̂_ab(Δ) = max((1 − c) W_ab r̂_ab(Δ) + soft(Ĥ_ab(Δ) − W_ab r̂_ab(Δ), λ · sd), 0)
(sd also holds one typical delta's smoothed peak k_0 · w̄, w̄ = W2 / W: a lone
delta where chance expects almost none — the tails of r — is not evidence), with c
the share of random-looking neighbours (the background weight of the mixture fitted
when choosing the bandwidth, smoothing.choose_bandwidth) and soft(x, t) soft
thresholding: deviations within λ standard errors of chance are dropped, so a node
pair with no temporal structure, or too few deltas to show it, keeps the chance
shape (its ST factor is the node-pair term alone) while deficits below chance (Δ a
true pair cannot have) are kept as evidence like excesses. Since Σ_Δ (S·(T − r))⁺ ≤ S,
a surplus above the true mass S = (1 − c)·W is noise and is scaled down to it: where
the mixture fit finds (almost) no true neighbours (c → 1), nothing is kept.

Revisits (dense networks: a person seen again much later, on Market most true
neighbour pairs): when the three-part mixture holds (smoothing.fit_broad), a share
g of the background is spread like the deltas smoothed at the broad width H (b̂,
normalised per node pair) — true pairs too, not chance. The chance level becomes
W · [(1 − c g) · r̂ + c g · b̂] and the true part keeps the broad mass:
    S T̂ = max((1 − c) W r̂ + c g W b̂ + soft(Ĥ − W [(1 − c g) r̂ + c g b̂], λ · sd), 0)
(g = 0: the formula above). A revisit within ±H of where the deltas are dense then
gets P_st above a random pair's, without having to pass the threshold bin by bin.

λ (noise_threshold None, the default) is chosen per node pair by Stein's unbiased
risk estimate of the soft threshold (SureShrink, Donoho & Johnstone 1995) on the
pair's standardised deviations z = (Ĥ − chance) / sd:
    SURE(t) = Σ_Δ [1 − 2·1(|z| ≤ t) + min(z², t²)],   λ = argmin over t ∈ {0, 0.1, …, 3},
so a pair whose deviations are mostly noise (a thin network: a few clumps anywhere)
gets a high threshold and a pair with broad real structure (a dense one) a low one.

chance_level "whole" keeps the whole chance level W · [(1 − c g) r̂ + c g b̂] under
the deviations instead of the true share: the extra chance-shaped mass flattens
every log-ratio toward the node-pair term (with the two-part estimator it cost 4–7
rank-1 on the small synthetic networks at noise 2.0, benchmarks/bench_fuse.py), so
it is not the default.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from st_model import smoothing


def _kernel(sigma_bins: float) -> np.ndarray:
    """The discrete Parzen kernel of gaussian_smooth (a unit spike below σ 0.25)."""
    if sigma_bins < 0.25:
        return np.ones(1)
    x = np.arange(-int(4 * sigma_bins + 0.5), int(4 * sigma_bins + 0.5) + 1)
    k = np.exp(-0.5 * (x / sigma_bins) ** 2)
    return k / k.sum()


def kernel_square_sum(sigma_bins: float) -> float:
    """Σ_t k_t² of the discrete Parzen kernel (1 when there is no smoothing)."""
    return float((_kernel(sigma_bins) ** 2).sum())


def kernel_peak(sigma_bins: float) -> float:
    """k_0: the share a single delta keeps in its own bin after smoothing."""
    return float(_kernel(sigma_bins).max())


def smoothed_variance(variance: np.ndarray, sigma_bins: np.ndarray) -> np.ndarray:
    """Variance [M, M, B] of Parzen-smoothed sums of independent bins:
    Σ_t k_t² Var_t ≈ Σk² · (Var smoothed by the kernel k², i.e. σ/√2)."""
    out = np.empty_like(variance, dtype=np.float64)
    for s in np.unique(sigma_bins):
        sel = sigma_bins == s
        out[sel] = kernel_square_sum(float(s)) * smoothing.gaussian_smooth(
            variance[sel], float(s) / np.sqrt(2.0) if s >= 0.25 else 0.0)
    return out


def soft_threshold(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """sign(x) · max(|x| − t, 0): deviations within t of 0 are noise."""
    return np.sign(x) * np.maximum(np.abs(x) - t, 0.0)


SURE_THRESHOLDS = np.arange(31) / 10   # λ tried by sure_threshold


def sure_threshold(z: np.ndarray) -> np.ndarray:
    """λ [M, M, 1] per node pair minimising Stein's unbiased risk estimate of soft
    thresholding its standardised deviations z [M, M, B]:
    SURE(t) = Σ_Δ [1 − 2·1(|z| ≤ t) + min(z², t²)] (the first of equal minima),
    for every t at once: each |z| falls between two thresholds, so per pair the
    count and Σ z² of the |z| ≤ t are cumulative sums over those slots."""
    m1, m2, b = z.shape
    t = SURE_THRESHOLDS
    slot = np.searchsorted(t, np.abs(z).reshape(m1 * m2, b), side="left")  # |z| ≤ t_i ⇔ slot ≤ i
    key = (np.arange(m1 * m2)[:, None] * (t.size + 1) + slot).reshape(-1)
    z2 = (z * z).reshape(-1)
    size = m1 * m2 * (t.size + 1)
    count = np.bincount(key, minlength=size).reshape(m1 * m2, t.size + 1)
    sq = np.bincount(key, weights=z2, minlength=size).reshape(m1 * m2, t.size + 1)
    within = np.cumsum(count, axis=1)[:, :t.size]          # #(|z| ≤ t_i)
    within_sq = np.cumsum(sq, axis=1)[:, :t.size]          # Σ_{|z| ≤ t_i} z²
    risk = within_sq + t * t * (b - within) - 2.0 * within
    return t[np.argmin(risk, axis=1)].reshape(m1, m2, 1)


def true_pair_weight(visual_smooth: np.ndarray, random_smooth: np.ndarray,
                     visual: np.ndarray, visual_sq: np.ndarray, random: np.ndarray,
                     sigma_bins: np.ndarray, threshold: Optional[float], background: float,
                     whole_chance: bool = False, broad: Optional[np.ndarray] = None,
                     broad_share: float = 0.0) -> np.ndarray:
    """S_ab · T̂_ab(Δ) [M, M, B] = max(S r̂ + c g W b̂ + soft(Ĥ − W [(1 − c g) r̂ + c g b̂],
    λ·sd), 0), S = (1 − c) W (the whole chance level in place of S r̂ + c g W b̂ with
    whole_chance), the thresholded deviation scaled down where its surplus exceeds S.
    `broad`: b̂ [M, M, B], the deltas smoothed at the broad width, each pair's summing
    to 1 (needed when broad_share g > 0); threshold None: λ by sure_threshold."""
    w = visual.sum(axis=2, keepdims=True)
    w2 = visual_sq.sum(axis=2, keepdims=True)
    r_total = random.sum(axis=2, keepdims=True).astype(np.float64)
    share = np.where(r_total > 0, 1.0 / np.maximum(r_total, 1.0), 0.0)
    chance = w * random_smooth * share
    revisits = background * broad_share
    if revisits > 0:
        chance = (1.0 - revisits) * chance + revisits * w * broad
    # one delta alone is never evidence: the noise floor is one typical delta's peak
    typical = np.where(w > 0, w2 / np.maximum(w, 1e-300), 0.0)
    peak = np.vectorize(kernel_peak)(sigma_bins)[..., None]
    sd = np.sqrt(np.maximum(smoothed_variance(w2 * random * share, sigma_bins), 0.0)
                 + (peak * typical) ** 2)
    deviation = visual_smooth - chance
    if threshold is None:
        threshold = sure_threshold(deviation / np.where(sd > 0, sd, 1.0))
    excess = soft_threshold(deviation, threshold * sd)
    # E = S · (T − r) has Σ E⁺ ≤ S: more surplus than the true mass the mixture fit
    # allows (S = (1 − c) W) is noise that passed the threshold; scale it down
    true_mass = (1.0 - background) * w
    surplus = np.maximum(excess, 0.0).sum(axis=2, keepdims=True)
    excess *= np.minimum(1.0, true_mass / np.maximum(surplus, 1e-300))
    if whole_chance:
        return np.maximum(chance + excess, 0.0)
    # chance mass that is not false neighbours: (1 − c) W r̂ + c g W b̂
    false_chance = (background - revisits) * w * random_smooth * share
    return np.maximum(chance - false_chance + excess, 0.0)
