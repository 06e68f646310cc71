"""Evaluating a query × gallery ranking by vision, fusion or re-ranked fusion (the
Market protocol of st_model.metrics), and the checks of its inputs: what `tfusion
fuse`, the pipeline's RankingEvalGen and the run report score a round with.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple, Union

import numpy as np

from core.features import FeatureFileError, FeatureHeader, FeatureSet
from core.progress import log
from st_model import fused_rerank, metrics
from st_model.config import FusionRule
from st_model.scoring import BlockScorer, STTables
from st_model.st_artifact import STModel


def check_inputs(train: Union[FeatureSet, FeatureHeader], query: FeatureSet,
                 gallery: FeatureSet) -> None:
    """Same feature dimension everywhere; query/gallery carry pid for evaluation;
    train spans at least two cameras. (Query/gallery cameras that train lacks are
    allowed: their pairs get the neutral ST factor, see unseen_report.)"""
    d = train.dim
    for fs in (query, gallery):
        if fs.dim != d:
            raise FeatureFileError(f"{fs.source}: features have dimension "
                                   f"{fs.dim}, but {train.source} has {d}")
        if fs.pid is None:
            raise FeatureFileError(f"{fs.source}: missing array pid (needed to evaluate "
                                   f"the query/gallery ranking)")
    known = np.unique(train.camera)
    if len(known) < 2:
        raise FeatureFileError(f"{train.source}: the train split has a single camera; "
                               f"an ST model needs pairs across cameras")


def unseen_report(model: STModel, query: FeatureSet, gallery: FeatureSet,
                  q_node: Optional[np.ndarray] = None,
                  g_node: Optional[np.ndarray] = None) -> Dict:
    """Counts of query/gallery images (and query × gallery pairs) in cameras or
    nodes the train split never saw (node ids looked up when not given); logged as
    a warning when there are any."""
    if q_node is None:
        q_node = model.nodes.lookup(query.camera, query.sequence)
    if g_node is None:
        g_node = model.nodes.lookup(gallery.camera, gallery.sequence)
    report = {"query": model.nodes.unseen(query.camera, query.sequence),
              "gallery": model.nodes.unseen(gallery.camera, gallery.sequence)}
    q_bad, g_bad = int((q_node < 0).sum()), int((g_node < 0).sum())
    report["neutral_pairs"] = int(q_bad * len(gallery) + g_bad * len(query)
                                  - q_bad * g_bad)
    report["pairs"] = int(len(query) * len(gallery))
    if q_bad or g_bad:
        q, g = report["query"], report["gallery"]
        log(f"WARNING: train ({model.params.get('train_images')} images) never saw "
            f"camera(s) {sorted(set(q['unseen_cameras']) | set(g['unseen_cameras']))} "
            f"or some (camera, sequence) nodes: query {q['images_unseen_camera']} images "
            f"in unseen cameras + {q['images_unseen_node']} in unseen nodes "
            f"({query.source}), gallery {g['images_unseen_camera']} + "
            f"{g['images_unseen_node']} ({gallery.source}); their "
            f"{report['neutral_pairs']} of {report['pairs']} query-gallery pairs get "
            f"the neutral ST factor (vision decides)")
    return report


def score_function(query: FeatureSet, gallery: FeatureSet, tables: Optional[STTables],
                   config: FusionRule, q_node: Optional[np.ndarray] = None,
                   g_node: Optional[np.ndarray] = None) -> metrics.ScoreFn:
    """score_fn(q_idx, g_idx) of the query × gallery ranking: cosine similarity of the
    (unit) features for vision (tables None), else the fused score (BlockScorer)."""
    if tables is None:
        return lambda q, g: query.features[q] @ gallery.features[g].T
    return BlockScorer(tables, query, gallery, config, q_node, g_node)


def match_ranks(query: FeatureSet, gallery: FeatureSet, tables: Optional[STTables],
                config: FusionRule, q_node: Optional[np.ndarray] = None,
                g_node: Optional[np.ndarray] = None) -> metrics.MatchRanks:
    """Ranks of every query's true matches (metrics.query_match_ranks) by vision
    (tables None: cosine of the unit features) or by the fused score (node ids of
    query / gallery looked up when not given); errors name the files."""
    score = score_function(query, gallery, tables, config, q_node, g_node)
    return ranks_of(score, query, gallery, "vision" if tables is None else "fusion")


def ranks_of(score: metrics.ScoreFn, query: FeatureSet, gallery: FeatureSet,
             what: str) -> metrics.MatchRanks:
    """metrics.query_match_ranks of score_fn `score`; errors name the files."""
    try:
        return metrics.query_match_ranks(score, query.pid, query.camera, gallery.pid,
                                         gallery.camera, source=f"{what} ranking")
    except ValueError as e:
        raise FeatureFileError(f"{query.source} / {gallery.source}: {e}") from None


def evaluate(query: FeatureSet, gallery: FeatureSet, tables: Optional[STTables],
             config: FusionRule, q_node: Optional[np.ndarray] = None,
             g_node: Optional[np.ndarray] = None) -> metrics.RankingResult:
    """Rank-1/5/10 and mAP of vision (tables None) or of the fusion (node ids of
    query / gallery looked up when not given)."""
    return metrics.ranking_result(match_ranks(query, gallery, tables, config,
                                              q_node, g_node))


def reranked_match_ranks(query: FeatureSet, gallery: FeatureSet, tables: STTables,
                         config: FusionRule, frame_rate: float,
                         q_node: Optional[np.ndarray] = None,
                         g_node: Optional[np.ndarray] = None
                         ) -> Tuple[metrics.MatchRanks, Dict]:
    """Ranks of every query's true matches in the re-ranked fused list
    (fused_rerank.py: visit pooling, then k-reciprocal eq. 6 on the fused score) and
    its report (visit links, k-reciprocal set sizes); frame_rate (frames per second)
    sets the visit window."""
    score, info = fused_rerank.reranked_score_fn(query, gallery, tables, config,
                                                 frame_rate, q_node, g_node)
    return ranks_of(score, query, gallery, "re-ranked fusion"), info


def evaluate_reranked(query: FeatureSet, gallery: FeatureSet, tables: STTables,
                      config: FusionRule, frame_rate: float,
                      q_node: Optional[np.ndarray] = None,
                      g_node: Optional[np.ndarray] = None
                      ) -> Tuple[metrics.RankingResult, Dict]:
    """Rank-1/5/10 and mAP of the re-ranked fused list (reranked_match_ranks) and its
    report (visit links, k-reciprocal set sizes)."""
    matched, info = reranked_match_ranks(query, gallery, tables, config, frame_rate,
                                         q_node, g_node)
    return metrics.ranking_result(matched), info
