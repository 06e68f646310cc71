"""STModelGen: Features -> STModel (TFusion steps 2-3 as a Beam job).

Runs `st_model.beam_transforms.EstimateSTModel` — the visual-neighbour, exact random
and diff models and the data-chosen smoothing — on the pipeline's Beam runner, and
writes st_model.npz and its plot st_model.png into the artifact.
"""
import json

import apache_beam as beam
from tfx import v1 as tfx

from core.progress import log
from pipeline.artifacts import Features, STModel
from pipeline.component_io import settings_of, split_path
from st_model.config import STConfig


@tfx.dsl.components.component(use_beam=True)
def STModelGen(
    features: tfx.dsl.components.InputArtifact[Features],
    st_model: tfx.dsl.components.OutputArtifact[STModel],
    st_config: tfx.dsl.components.Parameter[str] = "{}",
    beam_pipeline: tfx.dsl.components.BeamComponentParameter[beam.Pipeline] = None,
) -> None:
    """Estimate the target's ST model from the train split of `features`."""
    from core.features import load_st_points, read_header
    from core.files import join_path
    from st_model import estimate
    from st_model.beam_transforms import EstimateSTModel, with_thin_retry
    from st_model.plot import plot_st_model
    from st_model.st_artifact import FILENAME, PLOT_FILENAME, save_st_model
    config = settings_of(STConfig, st_config, "STModelGen", "st_config")
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

    def run_again(retry) -> None:        # thin evidence: again on visit-pooled features
        with beam.Pipeline(options=beam_pipeline.options) as p:
            _ = (p | "EstimateSTModel" >> EstimateSTModel(retry[0], config, span,
                                                          retry=retry[1])
                 | "Save" >> beam.Map(save_st_model, path))
    model = with_thin_retry(path, train, config, span, st_model.uri, run_again)
    plot_st_model(model, train, join_path(st_model.uri, PLOT_FILENAME))
    header = model.header()
    st_model.set_string_custom_property("nodes", json.dumps(header["nodes"]))
    st_model.set_float_custom_property("bin_frames", float(header["bin_frames"]))
    st_model.set_float_custom_property("frame_rate", float(config.frame_rate))
    st_model.set_float_custom_property("visual_weight", float(header["visual_weight"]))
