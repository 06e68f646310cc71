"""What the pipeline's components read of each other's artifacts, and the JSON
parameters they share — one place for each, so no component borrows from another:

    Features        per split a folder <split>/ of row shards, or <split>.npz
                    (split_path, load_split_features; core/features.py)
    Examples        core/examples_layout.py
    evaluation      RankingEvalGen's Examples also hold METRICS_FILE
    st_config       the JSON of a resolved st_model.config.STConfig
    fusion_rule     the JSON of a resolved st_model.config.FusionRule
                    (both written by settings_json, read by settings_of)
"""
from __future__ import annotations

import json
from typing import Sequence, Tuple, Type, TypeVar

from core.dataclass_dict import from_dict, to_dict
from core.features import FeatureSet, load_features, split_features_path

T = TypeVar("T")

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


def settings_json(settings) -> str:
    """A component's settings parameter (st_config, fusion_rule): the JSON of the
    resolved config (pipeline/run_config.py resolves it once)."""
    return json.dumps(to_dict(settings), sort_keys=True)


def settings_of(cls: Type[T], text: str, component: str, parameter: str) -> T:
    """The typed settings of a component's JSON parameter (what settings_json wrote;
    already resolved and validated, so read back as they are)."""
    return from_dict(cls, json.loads(text), f"{component} {parameter}")
