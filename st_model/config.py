"""Every knob of TFusion, with a priori defaults, as two typed configs:

    STConfig     how the ST model is estimated from the unlabeled train split
    FusionRule   how a visual score and the ST model are fused into one score
                 (and the fused train ranking, the optional re-ranking)

`resolve_settings` applies the mode's presets and validates both, once, where the
settings enter (a CLI flag, a run config); the math receives its result and never
resolves again. Each field's `metadata["help"]` is its documentation and the help of
its generated CLI flag (pipeline/commands/flags.py).

No default is tuned on query/gallery labels. Data-dependent choices (bandwidth, bin
width, background and revisit shares, the noise threshold λ) are made on the
unlabeled train split by documented rules (smoothing.choose_bandwidth,
estimate.choose_grid, chance.sure_threshold).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import NamedTuple, Optional, Tuple

from core.errors import InputError
from st_model.nodes import MODES

FUSIONS = ("loglinear", "bayes", "logistic")
CHANCE_LEVELS = ("true_share", "whole")   # chance.true_pair_weight
TFUSION_MAX_DELTA = 40000                 # tfusion mode: |Δ| beyond this is out of reach
VISIT_SECONDS = 4.0                       # window of one visit's near-duplicates

# Keys of earlier versions and the keys that replaced them (the widest bin is
# max_bin_frames; the ST model's bin_frames is the width chosen).
RENAMED_ST_KEYS = {"bin_frames": "max_bin_frames"}


def _opt(default, help: str, **flag):
    """A field with its help text and flag options (choices, group, none_flag)."""
    return field(default=default, metadata={"help": help, **flag})


@dataclass(frozen=True)
class STConfig:
    """ST estimation: nodes, the visual model of train neighbours, histograms."""
    mode: str = _opt("camera_sequence",
                     "ST node: (camera, sequence) or TFusion's faithful rules "
                     "(same-sequence pairs only, ±700-frame windows)", choices=MODES)
    top_k: int = _opt(10, "visual neighbours per train image")
    sharpness: Optional[float] = _opt(
        2.0, "β of the soft neighbour weights exp(β·(z − best z)), z in random-pair "
        "standard deviations; None (--hard-top-k): TFusion's weight 1 per neighbour",
        none_flag=("--hard-top-k", "TFusion's visual model: every top-k neighbour counts "
                   "1 and no chance level is subtracted (always so in --mode tfusion)"))
    noise_threshold: Optional[float] = _opt(
        None, "λ: deviations of the neighbour histogram from its chance level within λ "
        "standard errors are dropped (default: chosen per node pair by Stein's unbiased "
        "risk estimate of the soft threshold, chance.sure_threshold)")
    chance_level: str = _opt(
        "true_share", "chance-shaped evidence under the deviations: the true share "
        "(1 − c)·W·r (+ the revisits' broad part) or the whole chance level (flatter "
        "log-ratios; measured with the two-part estimator: 4–7 rank-1 lost on small "
        "networks at noise 2.0)",
        choices=CHANCE_LEVELS)
    max_bin_frames: int = _opt(
        100, "widest histogram bin in frames; narrowed to half the bandwidth when that "
        "is smaller (the ST model records the width chosen as bin_frames)")
    bandwidth: Optional[float] = _opt(
        None, "Parzen σ in frames (default: leave-one-out choice on train)")
    kappa: float = _opt(20.0, "shrinkage n/(n+κ) of a node pair's log-ratio, n its "
                              "effective number of deltas")
    prior_count: float = _opt(20.0, "random-model pseudo-count in P_st")
    floor: float = _opt(1e-6, "probability floor of P_st and P_rand (per bin)")
    window_frames: int = _opt(700, "tfusion mode: P_st counts deltas within ±window")
    max_delta: Optional[int] = _opt(
        None, "reach in frames: a pair further apart in time is out of reach (log-ratio "
        "−∞, P_st = 0; what the pruned gallery search skips without scoring) — set it "
        "only where nobody reappears later (default: none; "
        f"{TFUSION_MAX_DELTA} in tfusion mode)")
    rand_floor: float = _opt(2e-5, "tfusion mode: P_rand floor")
    frame_rate: float = _opt(
        25.0, "frames per second, for reporting and the visit window (tfusion fuse: "
        "from the naming convention of the train names, e.g. Market 25, Duke 60)")
    thin_visit_fdr: Optional[float] = _opt(
        0.5, "thin evidence: when the first estimate shows no transit (a cross-validated "
        "bandwidth of a fold's time block or more without revisits, or log-ratios "
        "spanning < 0.5: estimate.shows_no_transit), the detections of one visit "
        f"({VISIT_SECONDS:g} s in a node) are pooled, with at most this estimated share of "
        "false links, and the neighbours searched again on the pooled features",
        none_flag=("--no-thin-visit-pooling", "never pool visits for the ST evidence"))


@dataclass(frozen=True)
class FusionRule:
    """Scoring: the fusion rule and its weights, the fused train ranking, re-ranking."""
    fusion: str = _opt(
        "loglinear", "loglinear, bayes (eq. 9) or logistic (st-ReID); tfusion mode "
        "uses bayes in place of loglinear", choices=FUSIONS)
    weight: float = _opt(1.0, "w of w·log P_v in the log-linear mix")
    alpha: float = _opt(0.0, "eq. 9 α (bayes rule only)")
    beta: float = _opt(0.0, "eq. 9 β (bayes rule only)")
    logistic: Tuple[float, float, float, float] = _opt(
        (1.0, 5.0, 1.0, 5.0), "st-ReID's λ0 γ0 λ1 γ1 (logistic rule)")
    ranking_top_n: int = _opt(50, "fused neighbours per train image in the ranking "
                                  "(the RankNet teacher)")
    rerank: bool = _opt(False, "also rank query × gallery re-ranked: detections of one "
                               "visit pooled, then k-reciprocal re-ranking of the fused "
                               "score", group="re-ranking")
    rerank_k1: int = _opt(30, "k1 of the k-reciprocal sets", group="re-ranking")
    rerank_k2: int = _opt(6, "k2 of the local query expansion", group="re-ranking")
    rerank_lambda: float = _opt(0.4, "λ: weight of the fused distance beside the "
                                     "Jaccard distance", group="re-ranking")
    rerank_tau: float = _opt(4.0, "fused-score units per unit of distance",
                             group="re-ranking")
    visit_seconds: float = _opt(VISIT_SECONDS, "window of one visit's near-duplicates in a node; "
                                     "0: no pooling", group="re-ranking")
    visit_fdr: float = _opt(0.1, "estimated share of false visit links allowed",
                            group="re-ranking")
    visit_weight: float = _opt(0.5, "β: weight of a linked detection in a pooled "
                                    "feature beside the detection's own 1",
                               group="re-ranking")
    rerank_teacher: bool = _opt(False, "the fused train ranking RankNet learns from is "
                                       "re-ranked too (visit pooling and k-reciprocal "
                                       "re-ranking of the train split with the settings "
                                       "above; the pipeline's FusedRanker)",
                                group="re-ranking")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise InputError(message)


def validate_st(st: STConfig) -> None:
    _check(st.mode in MODES, f"unknown mode {st.mode!r}; known: {', '.join(MODES)}")
    _check(st.top_k >= 1, "top_k and ranking_top_n must be >= 1")
    _check(st.sharpness is None or st.sharpness >= 0,
           "sharpness must be >= 0 (or None for a hard top-k)")
    _check(st.noise_threshold is None or st.noise_threshold >= 0,
           "noise_threshold must be >= 0 (or unset: chosen per node pair)")
    _check(st.max_bin_frames >= 1, "max_bin_frames must be >= 1")
    _check(st.max_delta is None or st.max_delta >= 1, "max_delta must be >= 1 (frames)")
    _check(st.thin_visit_fdr is None or 0 < st.thin_visit_fdr < 1,
           "thin_visit_fdr must be in (0, 1) (or None: no visit pooling)")
    _check(st.chance_level in CHANCE_LEVELS, f"unknown chance_level {st.chance_level!r}; "
                                             f"known: {', '.join(CHANCE_LEVELS)}")


def validate_rule(rule: FusionRule) -> None:
    _check(rule.fusion in FUSIONS,
           f"unknown fusion {rule.fusion!r}; known: {', '.join(FUSIONS)}")
    _check(rule.ranking_top_n >= 1, "top_k and ranking_top_n must be >= 1")
    _check(0 <= rule.alpha < 1 and 0 <= rule.beta < 1 and rule.alpha + rule.beta < 1,
           "eq. 9 needs 0 <= α, β and α + β < 1")
    _check(len(rule.logistic) == 4, "logistic needs four numbers: λ0 γ0 λ1 γ1")
    _check(rule.rerank_k1 >= 1 and rule.rerank_k2 >= 1, "rerank_k1 and rerank_k2 must be >= 1")
    _check(0 <= rule.rerank_lambda <= 1 and rule.rerank_tau > 0,
           "re-ranking needs 0 <= λ <= 1 and τ > 0")
    _check(rule.visit_seconds >= 0 and 0 < rule.visit_fdr < 1 and rule.visit_weight >= 0,
           "visit_seconds and visit_weight must be >= 0 and visit_fdr in (0, 1)")
    _check(not (rule.alpha or rule.beta) or rule.fusion == "bayes",
           f"alpha and beta belong to the bayes rule (eq. 9), not to {rule.fusion!r}: "
           "name the rule with fusion = bayes (flag --fusion bayes)")


RERANK_FIELDS = ("rerank", "rerank_k1", "rerank_k2", "rerank_lambda", "rerank_tau",
                 "visit_seconds", "visit_fdr", "visit_weight", "rerank_teacher")


def scoring_rule(rule: FusionRule) -> FusionRule:
    """`rule` with its re-ranking settings at their defaults: what the fused score of a
    pair and a served bundle depend on (so turning re-ranking on or tuning it re-runs
    only the evaluation of a pipeline)."""
    defaults = FusionRule()
    return replace(rule, **{k: getattr(defaults, k) for k in RERANK_FIELDS})


def evaluation_rule(rule: FusionRule) -> FusionRule:
    """What a query × gallery evaluation depends on: `rule` without rerank_teacher
    (which changes only the fused train ranking)."""
    return replace(rule, rerank_teacher=False)


def teacher_rule(rule: FusionRule) -> FusionRule:
    """What the fused train ranking depends on: scoring_rule, or with rerank_teacher
    the re-ranking settings too (`rerank`, which only adds an evaluation, reset)."""
    if not rule.rerank_teacher:
        return scoring_rule(rule)
    return replace(rule, rerank=False)


class Settings(NamedTuple):
    """Resolved ST estimation and fusion rule, as the math receives them."""
    st: STConfig
    rule: FusionRule


def resolve_settings(st: STConfig = STConfig(), rule: FusionRule = FusionRule()
                     ) -> Settings:
    """The settings the math runs with: the mode's presets applied (`tfusion` keeps
    the paper's rules: hard top-k, |Δ| <= 40000 unless set, bayes in place of
    loglinear), then validated. Idempotent; the default configs are resolved already
    for the default mode."""
    if st.mode == "tfusion":
        st = replace(st, sharpness=None,
                     max_delta=TFUSION_MAX_DELTA if st.max_delta is None else st.max_delta)
        if rule.fusion == "loglinear":
            rule = replace(rule, fusion="bayes")
    validate_st(st)
    validate_rule(rule)
    return Settings(st, rule)
