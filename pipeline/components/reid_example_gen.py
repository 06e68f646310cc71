"""ReidExampleGen: a re-ID dataset folder -> an Examples artifact (train/query/gallery).

A Beam component: it runs `pipeline.reid_examples.ingest` on the pipeline's Beam
runner (DirectRunner locally, Dataflow in production). Unreadable images are listed in
`ingest_report.json` inside the artifact and counted in its `bad_images` property;
more than `max_bad_fraction` of them fails the execution.
"""

import json

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import Examples

from core.datasets import SPLITS
from schemas import schema_path

from pipeline.reid_examples import REPORT_NAME, ingest_folder


@tfx.dsl.components.component(use_beam=True)
def ReidExampleGen(
    examples: tfx.dsl.components.OutputArtifact[Examples],
    dataset_dir: tfx.dsl.components.Parameter[str],
    layout: tfx.dsl.components.Parameter[str] = "",
    convention: tfx.dsl.components.Parameter[str] = "",
    max_bad_fraction: tfx.dsl.components.Parameter[float] = 0.01,
    dataset_fingerprint: tfx.dsl.components.Parameter[str] = "",
    beam_pipeline: tfx.dsl.components.BeamComponentParameter[beam.Pipeline] = None,
) -> None:
    """Ingest `dataset_dir` (Market/Duke, TFusion or manifest layout) as tf.Examples.

    `dataset_fingerprint` (pipeline.fingerprint.dataset_fingerprint) is not read here:
    as a parameter it is part of the cache key, so a folder whose content changed is
    ingested again instead of being served from the cache."""
    examples.split_names = artifact_utils.encode_split_names(list(SPLITS))
    report = ingest_folder(dataset_dir, examples.uri, beam_pipeline,
                           schema_path("reid_examples"), layout=layout or None,
                           convention=convention or None,
                           max_bad_fraction=max_bad_fraction)
    examples.set_int_custom_property("bad_images", int(report["bad_images"]))
    examples.set_string_custom_property("dataset_dir", dataset_dir)
    examples.set_string_custom_property("dataset_fingerprint", dataset_fingerprint)
    examples.set_string_custom_property(
        "split_counts", json.dumps({s: v["count"] for s, v in report["splits"].items()}))
    examples.set_string_custom_property("report", FileSystems.join(examples.uri, REPORT_NAME))
