"""Training configuration shared by pretraining and RankNet transfer.

TFX passes it as `custom_config` (a JSON-able dict); the CLI builds it from flags. Unknown
keys are an error so a misspelt option never silently falls back to a default.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple, Type, TypeVar

from core.dataclass_dict import from_dict, to_dict
from core.errors import InputError

T = TypeVar("T", bound="TrainConfig")


def _check(ok: bool, name: str, value: Any, expected: str) -> None:
    if not ok:
        raise InputError(f"training option {name} = {value!r}, expected {expected}")


def check_windows(near: Tuple[int, int], far: Tuple[int, int], reciprocal_k: int = 0
                  ) -> None:
    """InputError unless RankNet's fused-rank windows are 1-based, ordered and leave
    room for j (trainer/triplets.py draws i from `near` and j from `far`)."""
    if not (1 <= near[0] <= near[1] and 1 <= far[0] <= far[1] and far[1] > near[0]):
        raise InputError(f"bad rank ranges near={tuple(near)} far={tuple(far)} "
                         "(1-based, inclusive, first <= last, far reaching below near)")
    if reciprocal_k < 0:
        raise InputError(f"reciprocal_k must be >= 0, got {reciprocal_k}")


@dataclass
class TrainConfig:
    # model
    backbone: str = "small"          # small (CPU) | resnet50 (GPU)
    height: int = 0                  # 0: the backbone's default (128x64 / 256x128)
    width: int = 0
    base_width: int = 32             # small ResNet first-stage channels
    weights: Optional[str] = None    # local weights file for the backbone (never fetched)
    # optimisation
    steps: int = 1000
    learning_rate: float = 1e-3      # Adam; linear warm-up then cosine decay to 0
    warmup_fraction: float = 0.05
    epoch_steps: int = 100           # steps between progress lines / TensorBoard epochs
    seed: int = 0
    # augmentation
    flip: bool = True
    crop_padding: float = 0.08
    erasing: float = 0.5
    # accelerators: auto = on iff GPUs are visible
    mixed_precision: Any = "auto"
    xla: Any = False
    multi_gpu: Any = "auto"
    deterministic: Any = "auto"      # TF op determinism: auto = on iff no GPU is visible

    def __post_init__(self) -> None:
        """Values out of range are named here, before any data is read."""
        _check(self.steps >= 1, "steps", self.steps, ">= 1")
        _check(self.epoch_steps >= 1, "epoch_steps", self.epoch_steps, ">= 1")
        _check(self.learning_rate > 0, "learning_rate", self.learning_rate, "> 0")
        _check(0 <= self.crop_padding < 0.5, "crop_padding", self.crop_padding, "in [0, 0.5)")
        _check(0 <= self.erasing <= 1, "erasing", self.erasing, "in [0, 1]")

    @classmethod
    def from_dict(cls: Type[T], values: Optional[Dict[str, Any]], where: str = "custom_config"
                  ) -> T:
        """core.dataclass_dict.from_dict; a None value keeps the default, and the
        passthrough keys (artifact URIs) are accepted."""
        return from_dict(cls, values, where, passthrough=cls.passthrough_keys(),
                         none_is_default=True)

    @classmethod
    def passthrough_keys(cls) -> Tuple[str, ...]:
        """custom_config keys read elsewhere (artifact URIs), accepted without a field."""
        return ()

    def to_dict(self) -> Dict[str, Any]:
        return to_dict(self)


@dataclass
class PretrainConfig(TrainConfig):
    """Source pretraining: identity classification (+ optional pair verification)."""
    p: int = 16                      # identities per batch
    k: int = 4                       # images per identity (batch = p * k)
    label_smoothing: float = 0.1
    verification: bool = False       # TFusion pair-verification head on in-batch pairs
    verification_weight: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.p >= 1 and self.k >= 1, "p, k", (self.p, self.k), ">= 1")


@dataclass
class RankNetConfig(TrainConfig):
    """RankNet transfer on the target from fused-ranking triplets.

    The defaults are the design measured by benchmarks/bench_ranknet.py: a learned-scale
    cosine score on the embedding, i among the top-3 k-reciprocal (k = 5) fused
    neighbours, j from fused ranks 25-50, the whole backbone trained at 3e-4.
    PAPER_RANKNET holds the paper's formulation (TFusion §3.4) as field values.
    """
    steps: int = 500
    learning_rate: float = 3e-4
    batch_triplets: int = 16         # triplets per step (3 images each)
    near_ranks: Tuple[int, int] = (1, 3)    # i drawn from these fused ranks (1-based)
    far_ranks: Tuple[int, int] = (25, 50)   # j drawn from these, always below i
    temperature: float = 0.0         # τ of the target sigmoid((s_i − s_j)/τ); 0 = auto
    freeze_fraction: float = 0.0     # first part of the backbone kept frozen
    same_camera_pairs: bool = False  # draw j from i's camera only (no camera shortcut)
    reciprocal_k: int = 5            # i only among k-reciprocal fused neighbours; 0 = off
    confident_fraction: float = 1.0  # i only among this top share of near-window fused scores
    score: str = "cosine"            # pair score: cosine (γ·ê_a·ê_b) | verification (paper)
    score_scale: float = 10.0        # initial γ of the cosine score (learned)
    holdout_fraction: float = 0.1    # anchors kept out of training to measure order accuracy
    triples_per_anchor: float = 2.5  # at least this many triples per trained anchor: a
    #                                  larger target trains longer (steps raised); 0 = off

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.batch_triplets >= 1, "batch_triplets", self.batch_triplets, ">= 1")
        _check(0 <= self.freeze_fraction <= 1, "freeze_fraction", self.freeze_fraction,
               "in [0, 1]")
        check_windows(tuple(self.near_ranks), tuple(self.far_ranks), self.reciprocal_k)
        _check(self.score in ("cosine", "verification"), "score", self.score,
               "cosine or verification")
        _check(self.score_scale > 0, "score_scale", self.score_scale, "> 0")
        _check(0 < self.confident_fraction <= 1, "confident_fraction",
               self.confident_fraction, "in (0, 1]")
        _check(0 <= self.holdout_fraction < 1, "holdout_fraction", self.holdout_fraction,
               "in [0, 1)")
        _check(self.triples_per_anchor >= 0, "triples_per_anchor", self.triples_per_anchor,
               ">= 0")

    @classmethod
    def passthrough_keys(cls) -> Tuple[str, ...]:
        return ("fused_ranking_uri", "base_model_uri")


# The paper's RankNet (TFusion §3.4): the verification-head score, i from fused ranks
# 1-25 and j from 25-50, two thirds of the backbone frozen (`tfusion transfer --paper`,
# or these values in a run config's "ranknet").
PAPER_RANKNET: Dict[str, Any] = {"score": "verification", "near_ranks": (1, 25),
                                 "far_ranks": (25, 50), "reciprocal_k": 0,
                                 "freeze_fraction": 2 / 3, "learning_rate": 1e-4}
