"""Per-query evaluation examples: the input of the TFMA ranking metrics
(pipeline/ranking_metrics.py).

One tf.Example per evaluated query (a query with a true match under the Market
protocol of st_model.metrics), in query order (schema: schemas/eval_examples.pbtxt):

  query_name (bytes), query_index (int64, index into the query set),
  vision_ranks (int64 list): the sorted 1-based ranks r_(1) < ... < r_(m) of the
      query's true matches after junk / same-camera removal (metrics eq. 4), ranked
      by the cosine of the features,
  fused_ranks (int64 list): the same under the fused score (when an ST model is given),
  fused_reranked_ranks (int64 list): the same under the re-ranked fused score
      (st_model/fused_rerank.py; when an ST model is given and the fusion rule has
      rerank on),
  baseline_vision_ranks, baseline_fused_ranks, baseline_fused_reranked_ranks: the
      same for a baseline model's features and ST model (when a baseline is given),
  prediction (float): the query's AP (eq. 2) under the fused ranking (vision without
      an ST model); TFMA's materialized_prediction mode needs a prediction_key, no
      metric reads it.

Queries without a true match are not written; they are counted and listed in
URI/eval_examples.json. The examples are GZIP TFRecords in the layout of a TFX
Examples artifact: URI/Split-eval/data_tfrecord-00000-of-00001.gz.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from core import examples_layout
from core.features import FeatureFileError, FeatureSet
from st_model import metrics
from st_model.config import FusionRule
from st_model.evaluation import match_ranks, reranked_match_ranks
from st_model.scoring import STTables

QUERY_NAME = "query_name"
QUERY_INDEX = "query_index"
VISION_RANKS = "vision_ranks"
FUSED_RANKS = "fused_ranks"
FUSED_RERANKED_RANKS = "fused_reranked_ranks"
BASELINE_PREFIX = "baseline_"
PREDICTION = "prediction"
SPLIT = "eval"
REPORT_FILE = "eval_examples.json"


@dataclass(frozen=True)
class EvalModel:
    """One model's query / gallery features and, for the fused ranking, the ST
    tables estimated on its train features."""
    query: FeatureSet
    gallery: FeatureSet
    tables: Optional[STTables] = None


@dataclass(frozen=True)
class EvalExamples:
    """The ranks of every evaluated query, per ranking feature (names above)."""
    query_names: np.ndarray            # [n_query] names of all queries
    queries: np.ndarray                # [n_eval] evaluated query indices, ascending
    ranks: Dict[str, List[np.ndarray]]  # feature -> [n_eval] sorted match ranks
    # feature -> re-ranking report (visit links, k-reciprocal set sizes)
    rerank_info: Dict[str, Dict] = field(default_factory=dict)

    @property
    def excluded(self) -> np.ndarray:
        """Indices of the queries without a true match (not written)."""
        return np.setdiff1d(np.arange(self.query_names.size), self.queries)

    def counts(self) -> Dict[str, int]:
        return {"queries": int(self.query_names.size),
                "evaluated": int(self.queries.size),
                "excluded": int(self.excluded.size)}


def _same_labels(a: FeatureSet, b: FeatureSet, what: str) -> None:
    """The baseline must rank the same images: same pid / camera (and names)."""
    same = len(a) == len(b) and np.array_equal(a.pid, b.pid) \
        and np.array_equal(a.camera, b.camera) \
        and (a.name is None or b.name is None or np.array_equal(a.name, b.name))
    if not same:
        raise FeatureFileError(f"{b.source}: the baseline {what} set is not the "
                               f"candidate's ({a.source}): the images (count, pid, "
                               f"camera or name) differ")


def _model_ranks(model: EvalModel, config: FusionRule, prefix: str,
                 rerank_info: Dict[str, Dict]) -> Dict[str, metrics.MatchRanks]:
    out = {prefix + VISION_RANKS: match_ranks(model.query, model.gallery, None, config)}
    if model.tables is not None:
        out[prefix + FUSED_RANKS] = match_ranks(model.query, model.gallery,
                                                model.tables, config)
        if config.rerank:
            feature = prefix + FUSED_RERANKED_RANKS
            out[feature], rerank_info[feature] = reranked_match_ranks(
                model.query, model.gallery, model.tables, config,
                model.tables.model.frame_rate)
    return out


def build_eval_examples(candidate: EvalModel, baseline: Optional[EvalModel] = None,
                        config: FusionRule = FusionRule()) -> EvalExamples:
    """Match ranks of every query under vision and fusion (st_model.evaluation.match_ranks,
    as `tfusion fuse` evaluates) and, when config.rerank, re-ranked fusion
    (reranked_match_ranks), for the candidate and optionally the baseline."""
    if baseline is not None:
        _same_labels(candidate.query, baseline.query, "query")
        _same_labels(candidate.gallery, baseline.gallery, "gallery")
        if candidate.tables is not None and baseline.tables is None:
            raise ValueError("the candidate has an ST model but the baseline has none: "
                             "its fused ranks cannot be compared")
    info: Dict[str, Dict] = {}
    ranked = _model_ranks(candidate, config, "", info)
    if baseline is not None:
        ranked.update(_model_ranks(baseline, config, BASELINE_PREFIX, info))
    queries = np.sort(ranked[VISION_RANKS].queries)
    ranks = {}
    for feature, matched in ranked.items():
        # every ranking has the same evaluated queries (same labels), maybe reordered
        order = np.argsort(matched.queries)
        assert np.array_equal(matched.queries[order], queries), feature
        ranks[feature] = [matched.ranks[i] for i in order]
    return EvalExamples(np.asarray(candidate.query.names), queries, ranks, info)


def _example(examples: EvalExamples, i: int) -> bytes:
    import tensorflow as tf  # lazily: only the writer needs it
    q = int(examples.queries[i])
    ranks = {k: v[i] for k, v in examples.ranks.items()}
    main = ranks.get(FUSED_RANKS, ranks[VISION_RANKS])
    feat = {
        QUERY_NAME: tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[str(examples.query_names[q]).encode()])),
        QUERY_INDEX: tf.train.Feature(int64_list=tf.train.Int64List(value=[q])),
        PREDICTION: tf.train.Feature(float_list=tf.train.FloatList(
            value=[metrics.average_precision(main)])),
        **{k: tf.train.Feature(int64_list=tf.train.Int64List(value=r.tolist()))
           for k, r in ranks.items()},
    }
    return tf.train.Example(features=tf.train.Features(feature=feat)).SerializeToString()


def write_eval_examples(uri: str, examples: EvalExamples) -> Dict[str, int]:
    """URI/Split-eval/data_tfrecord-00000-of-00001.gz and URI/eval_examples.json
    (counts, ranking features, names of the excluded queries); returns the counts."""
    import tensorflow as tf  # lazily: only the writer needs it
    tf.io.gfile.makedirs(examples_layout.split_dir(uri, SPLIT))
    opts = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(examples_layout.single_file(uri, SPLIT), opts) as w:
        for i in range(examples.queries.size):
            w.write(_example(examples, i))
    counts = examples.counts()
    report = {**counts, "features": sorted(examples.ranks),
              "excluded_queries": [str(examples.query_names[q])
                                   for q in examples.excluded]}
    with tf.io.gfile.GFile(os.path.join(uri, REPORT_FILE), "w") as f:
        f.write(json.dumps(report, indent=2))
    return counts
