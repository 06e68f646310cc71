"""TFMA metrics of the re-ID ranking and the eval config that gates on them.

The metrics read the per-query evaluation examples of pipeline/eval_examples.py
(the ranks of each query's true matches) and aggregate, in percent (0-100):

  CMC rank-k = mean over queries of [r_(1) <= k]        (st_model.metrics eq. 1)
  mAP        = mean over queries of AP_q                 (eq. 2)

with the per-query values from st_model.metrics (best_rank, average_precision), so
they agree with `st_model.metrics.evaluate_ranking` / `tfusion fuse`. Each class
emits ONE metric, named as thresholds reference it (TFMA matches thresholds by
name): vision_rank1, vision_rank5, vision_rank10, vision_mAP, fused_rank1,
fused_rank5, fused_rank10, fused_mAP, and query_count (evaluated queries); with
re-ranking also fused_reranked_rank1, _rank5, _rank10, _mAP (the re-ranked fused
list, feature fused_reranked_ranks). For the
model whose ModelSpec has is_baseline=True they read the baseline_* features, so a
change threshold compares the baseline model's own ranking with the candidate's.

In an EvalConfig name them with `tfma.MetricConfig(class_name=..., module=MODULE)`
(`ranking_eval_config` does); this module must be importable on every worker.
"""
from __future__ import annotations

import os
from typing import Dict, Iterable, List, Optional, Tuple

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # TFMA is written against tf.keras 2

import apache_beam as beam  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow_model_analysis as tfma  # noqa: E402
from tensorflow_model_analysis import constants as tfma_constants  # noqa: E402
from tensorflow_model_analysis.metrics import metric_types  # noqa: E402

from core import examples_layout  # noqa: E402
from pipeline.eval_examples import (BASELINE_PREFIX, FUSED_RANKS,  # noqa: E402
                                    FUSED_RERANKED_RANKS, PREDICTION, VISION_RANKS)
from st_model import metrics  # noqa: E402

MODULE = __name__
FUSED_RANK1 = "fused_rank1"
FUSED_RERANKED_RANK1 = "fused_reranked_rank1"
QUERY_COUNT = "query_count"
RANKS_FEATURES = {"vision": VISION_RANKS, "fused": FUSED_RANKS,
                  "fused_reranked": FUSED_RERANKED_RANKS}


def _ranks_feature(ranking: str, model_name: str,
                   eval_config: Optional[tfma.EvalConfig]) -> str:
    """The feature holding `ranking`'s ranks for this model (baseline_* for the
    baseline model)."""
    feature = RANKS_FEATURES[ranking]
    specs = eval_config.model_specs if eval_config is not None else []
    if any(s.is_baseline and s.name == model_name for s in specs):
        return BASELINE_PREFIX + feature
    return feature


class _Combiner(beam.CombineFn):
    """Sum and count of a per-query value over the evaluation examples."""

    def __init__(self, key: metric_types.MetricKey, feature: str, statistic: str):
        self._key, self._feature, self._statistic = key, feature, statistic

    def _value(self, ranks: np.ndarray) -> float:
        if self._statistic == "mAP":
            return metrics.average_precision(ranks)
        if self._statistic == "count":
            return 1.0
        return float(metrics.best_rank(ranks) <= int(self._statistic[len("rank"):]))

    def create_accumulator(self) -> List[float]:
        return [0.0, 0]

    def add_input(self, acc: List[float],
                  element: metric_types.StandardMetricInputs) -> List[float]:
        features = element.features or {}
        if self._feature not in features:
            raise ValueError(
                f"{self._key.name} (model {self._key.model_name or 'candidate'!r}): "
                f"evaluation example without feature {self._feature!r} (features: "
                f"{sorted(features)}); fused ranks are written only with an ST model, "
                f"fused_reranked ranks only with rerank on in the fusion rule, "
                f"baseline_* only with a baseline (pipeline/eval_examples.py)")
        ranks = np.asarray(features[self._feature]).reshape(-1)
        try:
            value = self._value(ranks.astype(np.int64))
        except ValueError as e:
            raise ValueError(f"{self._key.name}: bad {self._feature!r} in an "
                             f"evaluation example: {e}") from None
        acc[0] += value
        acc[1] += 1
        return acc

    def merge_accumulators(self, accs: Iterable[List[float]]) -> List[float]:
        out = self.create_accumulator()
        for a in accs:
            out[0] += a[0]
            out[1] += a[1]
        return out

    def extract_output(self, acc: List[float]) -> Dict[metric_types.MetricKey, float]:
        if self._statistic == "count":
            return {self._key: float(acc[1])}
        return {self._key: 100.0 * acc[0] / acc[1] if acc[1] else float("nan")}


def _computations(name: str, ranking: str, statistic: str,
                  eval_config: Optional[tfma.EvalConfig] = None,
                  model_names: Optional[List[str]] = None
                  ) -> metric_types.MetricComputations:
    out = []
    for model_name in model_names or [""]:
        feature = _ranks_feature(ranking, model_name, eval_config)
        key = metric_types.MetricKey(name=name, model_name=model_name)
        out.append(metric_types.MetricComputation(
            keys=[key],
            preprocessors=[metric_types.FeaturePreprocessor(
                feature_keys=[feature], include_default_inputs=False)],
            combiner=_Combiner(key, feature, statistic)))
    return out


class _RankingMetric(metric_types.Metric):
    """One value of one ranking: rank-k or mAP (percent) or the query count."""
    ranking = "vision"
    statistic = "rank1"

    def __init__(self, name: Optional[str] = None):
        super().__init__(_computations, name=name or self.default_name(),
                         ranking=self.ranking, statistic=self.statistic)

    @classmethod
    def default_name(cls) -> str:
        if cls.statistic == "count":
            return QUERY_COUNT
        return f"{cls.ranking}_{cls.statistic}"

    def get_config(self):
        return {"name": self.name}


def _metric_class(class_name: str, ranking: str, statistic: str) -> type:
    """A module-level metric class (MetricConfig names it by class_name + MODULE)."""
    return type(class_name, (_RankingMetric,), {
        "ranking": ranking, "statistic": statistic, "__module__": __name__,
        "__doc__": f"{ranking} ranking: {statistic} over the evaluated queries."})


VisionRank1 = _metric_class("VisionRank1", "vision", "rank1")
VisionRank5 = _metric_class("VisionRank5", "vision", "rank5")
VisionRank10 = _metric_class("VisionRank10", "vision", "rank10")
VisionMAP = _metric_class("VisionMAP", "vision", "mAP")
FusedRank1 = _metric_class("FusedRank1", "fused", "rank1")
FusedRank5 = _metric_class("FusedRank5", "fused", "rank5")
FusedRank10 = _metric_class("FusedRank10", "fused", "rank10")
FusedMAP = _metric_class("FusedMAP", "fused", "mAP")
QueryCount = _metric_class("QueryCount", "vision", "count")
FusedRerankedRank1 = _metric_class("FusedRerankedRank1", "fused_reranked", "rank1")
FusedRerankedRank5 = _metric_class("FusedRerankedRank5", "fused_reranked", "rank5")
FusedRerankedRank10 = _metric_class("FusedRerankedRank10", "fused_reranked", "rank10")
FusedRerankedMAP = _metric_class("FusedRerankedMAP", "fused_reranked", "mAP")

METRIC_CLASSES = (VisionRank1, VisionRank5, VisionRank10, VisionMAP,
                  FusedRank1, FusedRank5, FusedRank10, FusedMAP, QueryCount)
RERANKED_METRIC_CLASSES = (FusedRerankedRank1, FusedRerankedRank5, FusedRerankedRank10,
                           FusedRerankedMAP)
METRIC_NAMES = tuple(c.default_name() for c in METRIC_CLASSES)
RERANKED_METRIC_NAMES = tuple(c.default_name() for c in RERANKED_METRIC_CLASSES)


def _check_gate(what: str, min_rank1: float, max_drop: float) -> None:
    if not 0.0 <= min_rank1 <= 100.0 or max_drop < 0.0:
        raise ValueError(f"gates: min_{what}_rank1 must lie in [0, 100] and "
                         f"max_{what}_rank1_drop be >= 0 (points), got "
                         f"{min_rank1}, {max_drop}")


def _gate(cfg: tfma.MetricConfig, min_rank1: float, max_drop: float,
          with_baseline: bool) -> None:
    """rank-1 >= min_rank1 and, with_baseline, rank-1 - baseline's >= -max_drop."""
    cfg.threshold.value_threshold.lower_bound.value = min_rank1
    if with_baseline:
        change = cfg.threshold.change_threshold
        change.direction = tfma.MetricDirection.HIGHER_IS_BETTER
        change.absolute.value = -max_drop


def ranking_eval_config(min_fused_rank1: float, max_fused_rank1_drop: float,
                        with_baseline: bool, gated: bool = True,
                        reranked: Optional[Tuple[float, float]] = None
                        ) -> tfma.EvalConfig:
    """EvalConfig of the ranking gates on the evaluation examples' `prediction`.

    Model specs in materialized_prediction mode: "candidate" and, with_baseline,
    "baseline" (is_baseline=True); the 8 ranking metrics and query_count; gates
    fused_rank1 >= min_fused_rank1 and, with_baseline, fused_rank1 - baseline's
    fused_rank1 >= -max_fused_rank1_drop (points). `reranked` = (min rank-1, max
    rank-1 drop) adds the 4 metrics of the re-ranked fused list and the same two
    gates on fused_reranked_rank1 with these bounds. The candidate spec is named even
    alone, so TFMA never adds a baseline copy of it; the TFX Evaluator drops the
    baseline spec and the change threshold when no baseline model is given.
    Without `gated` the metrics carry no threshold, so the Evaluator measures and
    never blesses.
    """
    _check_gate("fused", min_fused_rank1, max_fused_rank1_drop)
    gates = {FUSED_RANK1: (min_fused_rank1, max_fused_rank1_drop)}
    classes = METRIC_CLASSES
    if reranked is not None:
        _check_gate("fused_reranked", *reranked)
        gates[FUSED_RERANKED_RANK1] = tuple(reranked)
        classes = METRIC_CLASSES + RERANKED_METRIC_CLASSES
    names = [tfma.CANDIDATE_KEY] + ([tfma.BASELINE_KEY] if with_baseline else [])
    specs = [tfma.ModelSpec(name=n, model_type=tfma_constants.MATERIALIZED_PREDICTION,
                            prediction_key=PREDICTION,
                            is_baseline=n == tfma.BASELINE_KEY) for n in names]
    configs = []
    for cls in classes:
        cfg = tfma.MetricConfig(class_name=cls.__name__, module=MODULE)
        if gated and cls.default_name() in gates:
            _gate(cfg, *gates[cls.default_name()], with_baseline)
        configs.append(cfg)
    return tfma.EvalConfig(model_specs=specs,
                           metrics_specs=[tfma.MetricsSpec(metrics=configs)],
                           slicing_specs=[tfma.SlicingSpec()])


def run_ranking_analysis(examples_uri: str, output_path: str,
                         eval_config: tfma.EvalConfig, has_baseline: bool,
                         beam_args: Optional[List[str]] = None) -> bool:
    """TFMA over URI/Split-eval as the TFX Evaluator runs it; returns whether the
    candidate passed the thresholds. Results: `tfma.load_eval_result(output_path)`.

    Like the Evaluator: the config gets TFMA's defaults with `has_baseline` (a
    baseline model was given) and rubber_stamp=True (without a baseline the
    baseline spec and change thresholds are dropped); one EvalSharedModel per
    model spec (materialized_prediction: nothing is loaded).
    """
    from apache_beam.options.pipeline_options import PipelineOptions
    config = tfma.utils.update_eval_config_with_defaults(
        eval_config, has_baseline=has_baseline, rubber_stamp=True)
    tfma.utils.verify_eval_config(config)
    models = [tfma.default_eval_shared_model(eval_saved_model_path="",
                                             model_name=spec.name, eval_config=config)
              for spec in config.model_specs]
    tfma.run_model_analysis(
        eval_shared_model=models[0] if len(models) == 1 else models,
        eval_config=config,
        data_location=examples_layout.split_files_pattern(examples_uri, "eval"),
        output_path=output_path, pipeline_options=PipelineOptions(beam_args or []))
    return tfma.load_validation_result(output_path).validation_ok
