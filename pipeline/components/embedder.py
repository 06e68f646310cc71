"""Embedder: target Examples + a Model -> Features (per split, a folder of row shards).

A Beam component: each worker loads the exported SavedModel once (DoFn.setup) and
embeds batches of serialized tf.Examples through its `serving_default` signature. The
rows of a split are ordered by image name (the same order on any runner) and written
as `<features>/<split>/features-SSSSS-of-NNNNN.npz` (core/features.py): shard i
holds the sorted rows [i·R, (i+1)·R). Only the image names travel to every worker (a
side input giving each name its row); each shard's rows are grouped and written by one
worker, so no element holds a whole split.
"""
from typing import Dict, Iterable, List, Tuple

import apache_beam as beam
import numpy as np
from tfx import v1 as tfx
from tfx.types.standard_artifacts import Examples, Model

from core.datasets import SPLITS
from core.errors import InputError
from core.progress import log
from pipeline.artifacts import Features
from st_model.neighbours import DEFAULT_ROW_BLOCK

Arrays = Dict[str, np.ndarray]


class EmbedBatches(beam.DoFn):
    """[serialized tf.Example] -> one dict of arrays per batch (trainer.embed)."""

    def __init__(self, model_dir: str):
        self.model_dir = model_dir
        self.embedder = None

    def setup(self):
        from trainer.export import Embedder
        self.embedder = Embedder(self.model_dir)

    def process(self, batch: List[bytes]) -> Iterable[Arrays]:
        from trainer.embed import embed_serialized
        yield embed_serialized(self.embedder, batch)


class RowOrder:
    """Image name -> its row in the split (names sorted); `shards` files of `rows`
    rows each."""

    def __init__(self, names: Iterable[str], rows: int, what: str):
        ordered = sorted(names)
        if not ordered:
            raise InputError(f"embed {what}: no images (empty split)")
        repeated = [a for a, b in zip(ordered, ordered[1:]) if a == b]
        if repeated:
            raise InputError(f"embed {what}: {len(set(repeated))} image name(s) occur more "
                             f"than once, e.g. {repeated[0]!r}; every row must be a "
                             "distinct image")
        self.row = {n: i for i, n in enumerate(ordered)}
        self.rows = int(rows)
        self.shards = -(-len(ordered) // self.rows)

    def shard_size(self, shard: int) -> int:
        return min(self.rows, len(self.row) - shard * self.rows)


def split_by_shard(arrays: Arrays, order: RowOrder) -> Iterable[Tuple[int, Arrays]]:
    """(shard index, the rows of `arrays` that shard holds) for each shard they touch."""
    shard = np.array([order.row[str(n)] for n in arrays["name"]], np.int64) // order.rows
    for s in np.unique(shard):
        pick = shard == s
        yield int(s), {k: v[pick] for k, v in arrays.items()}


def write_shard(shard: Tuple[int, Iterable[Arrays]], folder: str, order: RowOrder) -> str:
    """Write one shard's rows, ordered by name, as folder/features-SSSSS-of-NNNNN.npz
    (the rows of load_features(folder) are those of the whole split sorted by name,
    trainer.embed.concat_sorted)."""
    from core.features import make_feature_set, save_features, shard_name
    from core.files import join_path
    from trainer.embed import concat_sorted
    index, parts = shard
    path = join_path(folder, shard_name(index, order.shards))
    a = concat_sorted(list(parts), path)
    if len(a["name"]) != order.shard_size(index):
        raise InputError(f"{path}: {len(a['name'])} rows embedded, expected "
                         f"{order.shard_size(index)}")
    return save_features(make_feature_set(a["features"], a["camera"], a["frame"],
                                          a["sequence"], a["pid"], a["name"], source=path),
                         path)


class WriteFeatureShards(beam.PTransform):
    """Embedded batches (dicts of arrays, any order) -> the split written as a folder
    of row shards of `shard_rows` rows, ordered by image name; outputs the paths."""

    def __init__(self, folder: str, shard_rows: int = DEFAULT_ROW_BLOCK):
        super().__init__()
        if int(shard_rows) < 1:
            raise ValueError(f"shard_rows must be a positive number of rows, got "
                             f"{shard_rows}")
        self.folder, self.shard_rows = folder, int(shard_rows)

    def expand(self, batches):
        from core.features import SHARD_PREFIX, SHARD_SUFFIX
        from core.files import make_folder, remove_files
        make_folder(self.folder)  # a rerun's shards of another count are not mixed in
        remove_files(self.folder, SHARD_PREFIX, SHARD_SUFFIX)
        order = beam.pvalue.AsSingleton(
            batches
            | "Names" >> beam.FlatMap(lambda a: [str(n) for n in a["name"]])
            | "AllNames" >> beam.combiners.ToList()
            | "RowOrder" >> beam.Map(RowOrder, self.shard_rows, self.folder))
        return (batches
                | "ByShard" >> beam.FlatMap(split_by_shard, order)
                | "GroupShard" >> beam.GroupByKey()
                | "WriteShard" >> beam.Map(write_shard, self.folder, order))


def embed_split_to_shards(p: beam.Pipeline, examples_uri: str, split: str, model_dir: str,
                          folder: str, batch_size: int = 128,
                          shard_rows: int = DEFAULT_ROW_BLOCK):
    """Add to `p`: read a split of an Examples artifact, embed it, write its shards."""
    from core.examples_layout import split_files_pattern
    return (p
            | f"Read[{split}]" >> beam.io.ReadFromTFRecord(
                split_files_pattern(examples_uri, split),
                compression_type=beam.io.filesystem.CompressionTypes.GZIP)
            | f"Batch[{split}]" >> beam.BatchElements(min_batch_size=batch_size,
                                                      max_batch_size=batch_size)
            | f"Embed[{split}]" >> beam.ParDo(EmbedBatches(model_dir))
            | f"Write[{split}]" >> WriteFeatureShards(folder, shard_rows))


@tfx.dsl.components.component(use_beam=True)
def Embedder(
    examples: tfx.dsl.components.InputArtifact[Examples],
    model: tfx.dsl.components.InputArtifact[Model],
    features: tfx.dsl.components.OutputArtifact[Features],
    batch_size: tfx.dsl.components.Parameter[int] = 128,
    shard_rows: tfx.dsl.components.Parameter[int] = DEFAULT_ROW_BLOCK,
    beam_pipeline: tfx.dsl.components.BeamComponentParameter[beam.Pipeline] = None,
) -> None:
    """Embed every split of `examples` with `model` into features/<split>/ (row shards
    of `shard_rows` rows)."""
    from core.files import join_path
    from trainer.data import has_split
    from trainer.export import resolve_model_dir
    model_dir = resolve_model_dir(model.uri)
    splits = [s for s in SPLITS if has_split(examples.uri, s)]
    log(f"Embedder: {model_dir} on {examples.uri} splits {splits}")
    with beam_pipeline as p:
        for split in splits:
            embed_split_to_shards(p, examples.uri, split, model_dir,
                                  join_path(features.uri, split), batch_size, shard_rows)
    features.set_string_custom_property("splits", ",".join(splits))
    features.set_string_custom_property("model", model.uri)
