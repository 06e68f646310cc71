"""FusedRanker: Features + STModel -> FusedRanking (TFusion step 4 on the train split).

For every target train image, its top-N fused neighbours among the other train images
(`st_model.beam_transforms.WriteFusedRanking`, a Beam job over row blocks): the teacher
of the next RankNet round (schemas/fused_ranking.pbtxt).
"""
import apache_beam as beam
from tfx import v1 as tfx

from pipeline.artifacts import Features, FusedRanking, STModel
from pipeline.components.st_model_gen import fusion_inputs
from st_model.progress import log


@tfx.dsl.components.component(use_beam=True)
def FusedRanker(
    features: tfx.dsl.components.InputArtifact[Features],
    st_model: tfx.dsl.components.InputArtifact[STModel],
    fused_ranking: tfx.dsl.components.OutputArtifact[FusedRanking],
    fusion_config: tfx.dsl.components.Parameter[str] = "{}",
    beam_pipeline: tfx.dsl.components.BeamComponentParameter[beam.Pipeline] = None,
) -> None:
    """Write the fused top-N ranking of every train image."""
    from st_model.beam_transforms import WriteFusedRanking
    from st_model.st_artifact import load_st_model
    config, (train, _, _) = fusion_inputs(features.uri, fusion_config, "FusedRanker")
    model = load_st_model(st_model.uri)
    log(f"FusedRanker: top-{config.ranking_top_n} fused neighbours of {len(train)} "
        "train images")
    with beam_pipeline as p:
        _ = (p | "STModel" >> beam.Create([model])
             | "FusedRanking" >> WriteFusedRanking(train, config, fused_ranking.uri))
    fused_ranking.set_int_custom_property("anchors", len(train))
    fused_ranking.set_int_custom_property("top_n", config.ranking_top_n)
