"""Training configuration shared by pretraining and RankNet transfer.

TFX passes it as `custom_config` (a JSON-able dict); the CLI builds it from flags. Unknown
keys are an error so a misspelt option never silently falls back to a default.
"""
from __future__ import annotations

from dataclasses import dataclass, field
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


def _field(default: Any, help: str, **meta: Any) -> Any:
    """A dataclass field whose `metadata["help"]` (and e.g. `choices`, `group`, `flag`)
    the CLI turns into a flag."""
    return field(default=default, metadata={"help": help, **meta})


_AUTO = ("auto", "on", "off")


@dataclass
class TrainConfig:
    backbone: str = _field("small", "small: half-width ResNet-18 at 128x64 (CPU); "
                           "resnet50: 256x128 (GPU)", choices=("small", "resnet50"),
                           group="model")
    height: int = _field(0, "input height (0 = per backbone)", group="model")
    width: int = _field(0, "input width (0 = per backbone)", group="model")
    base_width: int = _field(32, "small ResNet first-stage channels", group="model")
    weights: Optional[str] = _field(None, "local backbone weights file (nothing is "
                                    "downloaded)", group="model")
    steps: int = _field(1000, "training steps")
    learning_rate: float = _field(1e-3, "Adam learning rate, warm-up then cosine decay")
    warmup_fraction: float = _field(0.05, "share of the steps in linear warm-up")
    epoch_steps: int = _field(100, "steps between progress lines / TensorBoard epochs")
    seed: int = _field(0, "random seed")
    flip: bool = _field(True, "random horizontal flip")
    crop_padding: float = _field(0.08, "pad-and-random-crop fraction (0 = off)")
    erasing: float = _field(0.5, "random-erasing probability (0 = off)")
    mixed_precision: Any = _field("auto", "float16 compute with float32 variables "
                                  "(auto: on iff a GPU is visible)", choices=_AUTO,
                                  group="accelerators")
    xla: Any = _field(False, "compile the train step with XLA", group="accelerators")
    multi_gpu: Any = _field("auto", "MirroredStrategy (auto: on iff several GPUs are "
                            "visible)", choices=_AUTO, group="accelerators")
    deterministic: Any = _field("auto", "TensorFlow op determinism: same seed, same "
                                "results (auto: on iff no GPU is visible; on a GPU it "
                                "costs speed)", choices=_AUTO, group="accelerators")

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
    p: int = _field(16, "P of P×K batches: identities per batch", flag="ids_per_batch",
                    group="objective")
    k: int = _field(4, "K of P×K batches: images per identity", flag="images_per_id",
                    group="objective")
    label_smoothing: float = _field(0.1, "label smoothing of the identity loss",
                                    group="objective")
    verification: bool = _field(False, "add TFusion's pair-verification head on in-batch "
                                "pairs (initialises RankNet)", group="objective")
    verification_weight: float = _field(1.0, "weight of the verification loss",
                                        group="objective")

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
    steps: int = _field(500, "training steps")
    learning_rate: float = _field(3e-4, "Adam learning rate, warm-up then cosine decay")
    batch_triplets: int = _field(16, "triples per step, 3 images each", group="ranknet")
    near_ranks: Tuple[int, int] = _field((1, 3), "fused ranks i is drawn from (1-based)",
                                         metavar=("FIRST", "LAST"), group="ranknet")
    far_ranks: Tuple[int, int] = _field((25, 50), "fused ranks j is drawn from, always "
                                        "below i", metavar=("FIRST", "LAST"),
                                        group="ranknet")
    temperature: float = _field(0.0, "τ of the target sigmoid((s_i − s_j)/τ); 0 = auto "
                                "(median → 0.9)", group="ranknet")
    freeze_fraction: float = _field(0.0, "fraction of the backbone kept frozen",
                                    group="ranknet")
    same_camera_pairs: bool = _field(False, "draw j only from i's camera, so the network "
                                     "cannot rank by camera appearance (useful when the "
                                     "fused ranking is weak)", group="ranknet")
    reciprocal_k: int = _field(5, "draw i only among near neighbours that hold the anchor "
                               "in their own fused top-k (k-reciprocal; 0 = off)",
                               group="ranknet")
    confident_fraction: float = _field(1.0, "draw i only among this top share of "
                                       "near-window fused scores", group="ranknet")
    score: str = _field("cosine", "pair score: cosine = learned scale × cosine of the "
                        "embeddings; verification = the paper's sigmoid head",
                        choices=("cosine", "verification"), group="ranknet")
    score_scale: float = _field(10.0, "initial (learned) scale of the cosine score",
                                group="ranknet")
    holdout_fraction: float = _field(0.1, "anchors kept out of training to measure order "
                                     "accuracy", group="ranknet")
    triples_per_anchor: float = _field(2.5, "at least this many triples per trained "
                                       "anchor: a larger target trains longer (steps "
                                       "raised); 0 = off", group="ranknet")

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
