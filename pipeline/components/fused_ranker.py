"""FusedRanker: Features + STModel -> FusedRanking (TFusion step 4 on the train split).

For every target train image, its top-N fused neighbours among the other train images
(`st_model.beam_transforms.WriteFusedRanking`, a Beam job over row blocks): the teacher
of the next RankNet round (schemas/fused_ranking.pbtxt). With the fusion rule's
rerank_teacher the ranking is re-ranked (st_model.fused_rerank.reranked_train_top_n:
visit pooling and k-reciprocal re-ranking need the neighbour sets of the whole train
split, so it runs in this process, not as row blocks on Beam workers).
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
    if config.rerank_teacher:
        n_train = _write_reranked(features.uri, st_model.uri, config, fused_ranking.uri)
        fused_ranking.set_int_custom_property("anchors", n_train)
        fused_ranking.set_int_custom_property("top_n", config.ranking_top_n)
        fused_ranking.set_int_custom_property("reranked", 1)
        return
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


def _write_reranked(features_uri: str, st_model_uri: str, config: FusionRule,
                    out_dir: str) -> int:
    """The re-ranked fused train ranking written under out_dir; returns the anchors."""
    import numpy as np

    from pipeline.component_io import load_split_features
    from st_model.fused_ranking import ranking_records, write_ranking
    from st_model.fused_rerank import reranked_train_top_n
    from st_model.scoring import STTables
    from st_model.st_artifact import load_st_model
    train, = load_split_features(features_uri, ("train",))
    model = load_st_model(st_model_uri)
    log(f"FusedRanker: top-{config.ranking_top_n} re-ranked fused neighbours of "
        f"{len(train)} train images")
    idx, scores, _ = reranked_train_top_n(train, STTables.from_model(model), config,
                                          model.frame_rate)
    rows = np.arange(len(train))
    write_ranking(out_dir, ranking_records(train.names, rows, idx, scores))
    return len(train)
