"""STModelGen: Features -> STModel (TFusion steps 2-3 as a Beam job).

Runs `st_model.beam_transforms.EstimateSTModel` — the visual-neighbour, exact random
and diff models and the data-chosen smoothing — on the pipeline's Beam runner, and
writes st_model.npz and its plot st_model.png into the artifact.
"""
import json
from typing import Sequence

import apache_beam as beam
from tfx import v1 as tfx

from pipeline.artifacts import Features, STModel
# split_path(uri, split): the shard folder or .npz of one split of a Features artifact
from core.features import split_features_path as split_path
from core.progress import log


def load_split_features(features_uri: str,
                        splits: Sequence[str] = ("train", "query", "gallery")):
    """The FeatureSets of `splits` of a Features artifact (default train, query,
    gallery), in that order."""
    from core.features import load_features
    return tuple(load_features(split_path(features_uri, s)) for s in splits)


def fusion_config_of(fusion_config: str, component: str):
    """The FusionConfig of a fusion component's `fusion_config` parameter (JSON)."""
    from st_model.config import FusionConfig
    return FusionConfig.from_dict(json.loads(fusion_config), f"{component} fusion_config")


@tfx.dsl.components.component(use_beam=True)
def STModelGen(
    features: tfx.dsl.components.InputArtifact[Features],
    st_model: tfx.dsl.components.OutputArtifact[STModel],
    fusion_config: tfx.dsl.components.Parameter[str] = "{}",
    beam_pipeline: tfx.dsl.components.BeamComponentParameter[beam.Pipeline] = None,
) -> None:
    """Estimate the target's ST model from the train split of `features`."""
    from core.features import load_st_points, read_header
    from core.files import join_path
    from st_model import estimate
    from st_model.beam_transforms import EstimateSTModel
    from st_model.plot import plot_st_model
    from st_model.st_artifact import FILENAME, load_st_model, save_st_model
    config = fusion_config_of(fusion_config, "STModelGen")
    # the launcher reads ST points only; the workers read the train features by blocks
    train = read_header(split_path(features.uri, "train"))
    query, gallery = (load_st_points(split_path(features.uri, s))
                      for s in ("query", "gallery"))
    span = estimate.frame_span(train, query, gallery)
    path = join_path(st_model.uri, FILENAME)
    log(f"STModelGen: {len(train)} train images from {features.uri}")
    with beam_pipeline as p:
        _ = (p | "EstimateSTModel" >> EstimateSTModel(train, config, span)
             | "Save" >> beam.Map(save_st_model, path))
    model = load_st_model(path)
    plot_st_model(model, train, join_path(st_model.uri, "st_model.png"))
    header = model.header()
    st_model.set_string_custom_property("nodes", json.dumps(header["nodes"]))
    st_model.set_float_custom_property("bin_frames", float(header["bin_frames"]))
    st_model.set_float_custom_property("frame_rate", float(config.frame_rate))
    st_model.set_float_custom_property("visual_weight", float(header["visual_weight"]))
