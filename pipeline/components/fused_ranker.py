"""FusedRanker: Features + STModel -> FusedRanking (TFusion step 4 on the train split).

For every target train image, its top-N fused neighbours among the other train images
(`st_model.beam_transforms.WriteFusedRanking`, a Beam job over row blocks): the teacher
of the next RankNet round (schemas/fused_ranking.pbtxt).
"""
import apache_beam as beam
from tfx import v1 as tfx

from core.progress import log
from pipeline.artifacts import Features, FusedRanking, STModel
from pipeline.component_io import settings_of, split_path
from st_model.config import FusionRule


@tfx.dsl.components.component(use_beam=True)
def FusedRanker(
    features: tfx.dsl.components.InputArtifact[Features],
    st_model: tfx.dsl.components.InputArtifact[STModel],
    fused_ranking: tfx.dsl.components.OutputArtifact[FusedRanking],
    fusion_rule: tfx.dsl.components.Parameter[str] = "{}",
    beam_pipeline: tfx.dsl.components.BeamComponentParameter[beam.Pipeline] = None,
) -> None:
    """Write the fused top-N ranking of every train image."""
    from core.features import read_header
    from st_model.beam_transforms import WriteFusedRanking
    from st_model.st_artifact import load_st_model
    config = settings_of(FusionRule, fusion_rule, "FusedRanker", "fusion_rule")
    train = read_header(split_path(features.uri, "train"))
    n_train = len(train)
    log(f"FusedRanker: top-{config.ranking_top_n} fused neighbours of {n_train} "
        "train images")
    with beam_pipeline as p:
        # the model's path travels in the job graph; a worker reads the artifact
        _ = (p | "STModelPath" >> beam.Create([st_model.uri])
             | "LoadSTModel" >> beam.Map(load_st_model)
             | "FusedRanking" >> WriteFusedRanking(train, config, fused_ranking.uri))
    fused_ranking.set_int_custom_property("anchors", n_train)
    fused_ranking.set_int_custom_property("top_n", config.ranking_top_n)
