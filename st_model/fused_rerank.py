"""The re-ranked query × gallery list: near-duplicates of one visit pooled
(visits.py), then k-reciprocal re-ranking (rerank.py) of the fused score of the
pooled features over query ∪ gallery.

The fused score keeps the ST model as estimated (STTables); only the features
change: each detection's feature becomes the unit mean of its visit's. Query and
gallery are pooled together, as a re-ranking sees both; no label is read.
`reranked_train_top_n` re-ranks the fused train ranking the same way, over the train
split alone (the RankNet teacher with FusionRule.rerank_teacher).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Dict, Optional, Tuple

import numpy as np

from core.features import FeatureSet
from core.progress import log
from st_model import metrics, neighbours, rerank, visits
from st_model.config import FusionRule
from st_model.scoring import BlockScorer, STTables


def joint_set(query: FeatureSet, gallery: FeatureSet) -> FeatureSet:
    """Query rows followed by gallery rows (pid kept only when both carry it)."""
    cat = lambda a, b: None if a is None or b is None else np.concatenate([a, b])  # noqa: E731
    return FeatureSet(np.concatenate([query.features, gallery.features]),
                      cat(query.camera, gallery.camera), cat(query.frame, gallery.frame),
                      cat(query.sequence, gallery.sequence), cat(query.pid, gallery.pid),
                      None, f"{query.source} + {gallery.source}")


def pool_visits(items: FeatureSet, config: FusionRule, frame_rate: float
                ) -> Tuple[FeatureSet, Dict]:
    """`items` with visit-pooled features (visits.pool_visits with the rule's visit
    settings) and a report of the links."""
    return visits.pool_visits(items, config.visit_seconds, frame_rate, config.visit_fdr,
                              config.visit_weight)


def params_of(config: FusionRule) -> rerank.RerankParams:
    return rerank.RerankParams(config.rerank_k1, config.rerank_k2,
                               config.rerank_lambda, config.rerank_tau)


def reranked_score_fn(query: FeatureSet, gallery: FeatureSet, tables: STTables,
                      config: FusionRule, frame_rate: float,
                      q_node: Optional[np.ndarray] = None,
                      g_node: Optional[np.ndarray] = None
                      ) -> Tuple[metrics.ScoreFn, Dict]:
    """score_fn(q_idx, g_idx) of the re-ranked list (rerank eq. 6 on the fused
    score of the pooled features) and a report (visit links, set sizes); frame_rate
    (frames per second) sets the visit window."""
    items, info = pool_visits(joint_set(query, gallery), config, frame_rate)
    nq = len(query)
    node = None
    if q_node is not None and g_node is not None:
        node = np.concatenate([q_node, g_node])
    joint = BlockScorer(tables, items, items, config, node, node)
    params = params_of(config)
    overlap, sizes = rerank.rerank_overlap(joint, joint.pairs, nq, len(items), params)
    info.update(sizes)
    pq = replace(query, features=items.features[:nq])
    pg = replace(gallery, features=items.features[nq:])
    fused = BlockScorer(tables, pq, pg, config, q_node, g_node)
    return rerank.reranked_score(fused, overlap, params), info


def reranked_train_top_n(train: FeatureSet, tables: STTables, config: FusionRule,
                         frame_rate: float) -> Tuple[np.ndarray, np.ndarray, Dict]:
    """The re-ranked fused train ranking (the RankNet teacher with rerank_teacher):
    for every train image its top ranking_top_n other train images by eq. 6 over the
    train split alone (visits pooled, k-reciprocal sets among train images, the Jaccard
    overlap of every train image against every other), best first: (index [N, n],
    score [N, n], report). Out-of-reach pairs (fused score -inf) never enter a list
    (index -1)."""
    items, info = pool_visits(train, config, frame_rate)
    n = len(items)
    scorer = BlockScorer(tables, items, items, config)
    params = params_of(config)
    v, sizes = rerank.rerank_weights(scorer, scorer.pairs, n, params)
    # J of every item against every item: the items are both the queries and the gallery
    overlap = rerank.JaccardOverlap(v, v)
    info.update(sizes)
    score = rerank.reranked_score(scorer, overlap, params)

    def block(r: np.ndarray, c: np.ndarray) -> np.ndarray:
        s = np.asarray(score(r, c), np.float64)
        own = neighbours.self_pairs(r, c)
        if own is not None:
            s[own] = -np.inf
        return s
    top = min(config.ranking_top_n, max(n - 1, 1))
    idx, sc = neighbours.top_k(block, n, n, top)
    idx[~np.isfinite(sc)] = -1
    log(f"re-ranked train ranking: top-{top} of {n} images, "
        + ", ".join(f"{k} {v:.1f}" for k, v in sizes.items()))
    return idx, sc, info
