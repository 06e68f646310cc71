"""The pipeline's own artifact types (ML Metadata types), beside the TFX standard ones.

    Features      per split (train/query/gallery) a folder <split>/ of row shards
                  features-SSSSS-of-NNNNN.npz in the feature interchange format
                  (core/features.py) — the target embedded by one model
    STModel       st_model.npz (st_model/st_artifact.py) and its plot st_model.png
    FusedRanking  fused_ranking-*.tfrecord.gz (schemas/fused_ranking.pbtxt): per target
                  train image its top-N fused neighbours — RankNet's teacher
Images, triples and per-query evaluation records are standard `Examples`; models are
`Model`.
"""
from tfx import v1 as tfx


class Features(tfx.dsl.Artifact):
    TYPE_NAME = "TFusionFeatures"


class STModel(tfx.dsl.Artifact):
    TYPE_NAME = "TFusionSTModel"


class FusedRanking(tfx.dsl.Artifact):
    TYPE_NAME = "TFusionFusedRanking"
