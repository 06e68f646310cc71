"""Every knob of ST estimation and fusion, with a priori defaults.

No default is tuned on query/gallery labels. Data-dependent choices (bandwidth and
bin width) are made on the unlabeled train split by documented rules
(smoothing.choose_bandwidth, estimate.choose_grid).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Dict, Optional

from core.errors import InputError

FUSIONS = ("loglinear", "bayes", "logistic")
CHANCE_LEVELS = ("true_share", "whole")   # chance.true_pair_weight


@dataclass(frozen=True)
class FusionConfig:
    mode: str = "camera_sequence"     # ST node: camera_sequence | tfusion
    top_k: int = 10                   # visual neighbours per train image (visual model)
    sharpness: Optional[float] = 2.0  # β of the soft neighbour weights exp(β(z − z_best));
    #                                   None: hard top-k (TFusion), no chance subtraction
    noise_threshold: float = 2.0      # λ: deviations from chance within λ std. errors dropped
    bin_frames: int = 100             # widest bin (frames); auto-narrowed to h/2
    bandwidth: Optional[float] = None  # Parzen σ in frames; None = LOO choice on train
    chance_level: str = "true_share"  # chance-shaped part under the deviations: the
    #                                   true share (1 − c)·W·r or the "whole" W·r
    kappa: float = 20.0               # shrinkage n/(n+κ) of a node pair's log-ratio,
    #                                   n its effective number of deltas
    prior_count: float = 20.0         # pseudo-count of the random model in P_st
    floor: float = 1e-6               # probability floor of P_st and P_rand (per bin)
    fusion: str = "loglinear"         # loglinear | bayes | logistic
    weight: float = 1.0               # w of w·log P_v in the log-linear mix
    alpha: float = 0.0                # eq. 9 α (bayes)
    beta: float = 0.0                 # eq. 9 β (bayes)
    window_frames: int = 700          # tfusion: P_st counts deltas within ±window
    max_delta: Optional[int] = None   # |Δ| beyond this is out of reach (tfusion: 40000)
    rand_floor: float = 2e-5          # tfusion: P_rand floor
    logistic: tuple = (1.0, 5.0, 1.0, 5.0)  # st-ReID λ0, γ0, λ1, γ1
    ranking_top_n: int = 50           # fused neighbours per train image (RankNet teacher)
    frame_rate: float = 25.0          # frames per second (reporting, visit window)
    rerank: bool = False              # also rank query × gallery re-ranked (fused_rerank.py)
    rerank_k1: int = 30               # k1 of the k-reciprocal sets (rerank.py)
    rerank_k2: int = 6                # k2 of the local query expansion
    rerank_lambda: float = 0.4        # λ: weight of the fused distance beside Jaccard's
    rerank_tau: float = 4.0           # fused-score units per unit of distance
    visit_seconds: float = 4.0        # near-duplicates of one visit: same node, |Δ| ≤ this
    visit_fdr: float = 0.1            # estimated share of false visit links allowed
    visit_weight: float = 0.5         # β: weight of a linked detection in the pooled feature

    def as_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["logistic"] = list(self.logistic)
        return d

    @classmethod
    def from_dict(cls, values: Optional[Dict[str, Any]],
                  where: str = "fusion config") -> "FusionConfig":
        """From as_dict()-style values (JSON); unknown keys are an error."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{where}: unknown option(s) {unknown}; known: {sorted(known)}")
        if "logistic" in values:
            values["logistic"] = tuple(values["logistic"])
        return cls(**values)

    def resolved(self) -> "FusionConfig":
        """Mode presets: `tfusion` keeps the paper's rules unless overridden."""
        if self.mode == "tfusion":
            return replace(self, fusion="bayes" if self.fusion == "loglinear" else self.fusion,
                           max_delta=40000 if self.max_delta is None else self.max_delta,
                           sharpness=None)
        return self

    def validate(self) -> "FusionConfig":
        from st_model.nodes import MODES
        if self.mode not in MODES:
            raise InputError(f"unknown mode {self.mode!r}; known: {', '.join(MODES)}")
        if self.fusion not in FUSIONS:
            raise InputError(f"unknown fusion {self.fusion!r}; known: {', '.join(FUSIONS)}")
        if self.top_k < 1 or self.ranking_top_n < 1:
            raise InputError("top_k and ranking_top_n must be >= 1")
        if self.sharpness is not None and self.sharpness < 0:
            raise InputError("sharpness must be >= 0 (or None for a hard top-k)")
        if self.noise_threshold < 0:
            raise InputError("noise_threshold must be >= 0")
        if self.bin_frames < 1:
            raise InputError("bin_frames must be >= 1")
        if not (0 <= self.alpha < 1 and 0 <= self.beta < 1 and self.alpha + self.beta < 1):
            raise InputError("eq. 9 needs 0 <= α, β and α + β < 1")
        if self.chance_level not in CHANCE_LEVELS:
            raise InputError(f"unknown chance_level {self.chance_level!r}; known: "
                             f"{', '.join(CHANCE_LEVELS)}")
        if self.rerank_k1 < 1 or self.rerank_k2 < 1:
            raise InputError("rerank_k1 and rerank_k2 must be >= 1")
        if not (0 <= self.rerank_lambda <= 1 and self.rerank_tau > 0):
            raise InputError("re-ranking needs 0 <= λ <= 1 and τ > 0")
        if self.visit_seconds < 0 or not 0 < self.visit_fdr < 1 or self.visit_weight < 0:
            raise InputError("visit_seconds and visit_weight must be >= 0 and visit_fdr "
                             "in (0, 1)")
        if (self.alpha or self.beta) and self.fusion != "bayes":
            raise InputError(f"α and β belong to the bayes fusion (eq. 9), not to "
                             f"{self.fusion!r}; add --fusion bayes")
        return self
