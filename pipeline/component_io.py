"""What the pipeline's components read of each other's artifacts, and the JSON
parameters they share — one place for each, so no component borrows from another:

    Features        per split a folder <split>/ of row shards, or <split>.npz
                    (split_path, load_split_features; core/features.py)
    Examples        core/examples_layout.py
    evaluation      RankingEvalGen's Examples also hold METRICS_FILE
    fusion_config   the JSON of st_model.config.FusionConfig (fusion_config_of)
"""
from __future__ import annotations

import json
from typing import Sequence, Tuple

from core.features import FeatureSet, load_features, split_features_path
from st_model.config import FusionConfig

METRICS_FILE = "metrics.json"


def split_path(features_uri: str, split: str) -> str:
    """The shard folder or .npz of one split of a Features artifact."""
    return split_features_path(features_uri, split)


def load_split_features(features_uri: str,
                        splits: Sequence[str] = ("train", "query", "gallery")
                        ) -> Tuple[FeatureSet, ...]:
    """The FeatureSets of `splits` of a Features artifact (default train, query,
    gallery), in that order."""
    return tuple(load_features(split_path(features_uri, s)) for s in splits)


def fusion_config_of(fusion_config: str, component: str) -> FusionConfig:
    """The FusionConfig of a fusion component's `fusion_config` parameter (JSON)."""
    return FusionConfig.from_dict(json.loads(fusion_config), f"{component} fusion_config")
