"""Embedder: target Examples + a Model -> Features (one .npz per split).

A Beam component: each worker loads the exported SavedModel once (DoFn.setup) and
embeds batches of serialized tf.Examples through its `serving_default` signature; the
rows of a split are gathered, ordered by image name (the same order on any runner) and
written in the feature interchange format (st_model/features.py).
"""
import os
from typing import Dict, Iterable, List

import apache_beam as beam
import numpy as np
from tfx import v1 as tfx
from tfx.types.standard_artifacts import Examples, Model

from pipeline.artifacts import Features
from st_model.progress import log
from st_model.tracks import SPLITS

SPLIT_PATTERN = os.path.join("Split-{split}", "data_tfrecord-*.gz")


class EmbedBatches(beam.DoFn):
    """[serialized tf.Example] -> one dict of arrays per batch (trainer.embed)."""

    def __init__(self, model_dir: str):
        self.model_dir = model_dir
        self.embedder = None

    def setup(self):
        from trainer.export import Embedder
        self.embedder = Embedder(self.model_dir)

    def process(self, batch: List[bytes]) -> Iterable[Dict[str, np.ndarray]]:
        from trainer.embed import embed_serialized
        yield embed_serialized(self.embedder, batch)


def write_split(parts: List[Dict[str, np.ndarray]], path: str) -> str:
    from trainer.embed import concat_sorted, write_features
    return write_features(path, concat_sorted(parts, path))


@tfx.dsl.components.component(use_beam=True)
def Embedder(
    examples: tfx.dsl.components.InputArtifact[Examples],
    model: tfx.dsl.components.InputArtifact[Model],
    features: tfx.dsl.components.OutputArtifact[Features],
    batch_size: tfx.dsl.components.Parameter[int] = 128,
    beam_pipeline: tfx.dsl.components.BeamComponentParameter[beam.Pipeline] = None,
) -> None:
    """Embed every split of `examples` with `model` into features/<split>.npz."""
    from trainer.data import has_split
    from trainer.export import resolve_model_dir
    model_dir = resolve_model_dir(model.uri)
    splits = [s for s in SPLITS if has_split(examples.uri, s)]
    log(f"Embedder: {model_dir} on {examples.uri} splits {splits}")
    with beam_pipeline as p:
        for split in splits:
            _ = (p
                 | f"Read[{split}]" >> beam.io.ReadFromTFRecord(
                     os.path.join(examples.uri, SPLIT_PATTERN.format(split=split)),
                     compression_type=beam.io.filesystem.CompressionTypes.GZIP)
                 | f"Batch[{split}]" >> beam.BatchElements(min_batch_size=batch_size,
                                                           max_batch_size=batch_size)
                 | f"Embed[{split}]" >> beam.ParDo(EmbedBatches(model_dir))
                 | f"Gather[{split}]" >> beam.combiners.ToList()
                 | f"Write[{split}]" >> beam.Map(
                     write_split, os.path.join(features.uri, f"{split}.npz")))
    features.set_string_custom_property("splits", ",".join(splits))
    features.set_string_custom_property("model", model.uri)
