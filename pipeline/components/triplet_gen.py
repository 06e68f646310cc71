"""TripletGen: FusedRanking + target Examples -> Examples of RankNet triples.

TFusion step 5's training data: (a, i, j) with i drawn from the near and j from the
far fused-rank window of anchor a (RankNetConfig: by default i among the top-3
k-reciprocal fused neighbours, j from ranks 25-50) and the target P̄_ij from the fused
scores (`trainer.triplets.sample_for_config`, with the RankNet run's own configuration
and seed). Each triple carries its three encoded images, so the RankNet Trainer is the
stock TFX Trainer on this artifact and the ranking reaches it with lineage.
"""
import json
import os

from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import Examples

from core import examples_layout
from core.progress import log
from pipeline.artifacts import FusedRanking


@tfx.dsl.components.component
def TripletGen(
    fused_ranking: tfx.dsl.components.InputArtifact[FusedRanking],
    examples: tfx.dsl.components.InputArtifact[Examples],
    triplets: tfx.dsl.components.OutputArtifact[Examples],
    ranknet_config: tfx.dsl.components.Parameter[str] = "{}",
) -> None:
    """Sample the triples of one RankNet round and write them as tf.Examples: Split-train
    from the trained anchors, Split-eval from the held-out ones (holdout_fraction of
    the anchors; the Trainer measures its order accuracy there)."""
    import tensorflow as tf

    from trainer import data, triplets as trip_lib
    from trainer.config import RankNetConfig
    config = RankNetConfig.from_dict(json.loads(ranknet_config), "TripletGen ranknet_config")
    ranking = trip_lib.read_fused_ranking(fused_ranking.uri)
    table = data.read_split(data.split_files(examples.uri, "train"))
    where = f"train split of {examples.uri}"
    held = trip_lib.held_out_anchors(ranking.names, config.holdout_fraction, config.seed)
    trip = trip_lib.sample_for_config(ranking, table, config, where, exclude=held)
    held_trip = trip_lib.sample_held_out(ranking, held, table, config, where)
    for split, part in (("train", trip), ("eval", held_trip)):
        path = examples_layout.single_file(triplets.uri, split)
        tf.io.gfile.makedirs(os.path.dirname(path))
        with tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(compression_type="GZIP")) as w:
            for record in (trip_lib.triplet_examples(part, table.name, table.images)
                           if part is not None else ()):
                w.write(record)
    held_count = len(held_trip) if held_trip is not None else 0
    log(f"TripletGen: {len(trip)} triples, τ={trip.temperature:.4g}, "
        f"mean target {trip.target.mean():.3f}, skipped {trip.skipped}; "
        f"{held_count} held-out triples from {len(held)} anchors")
    triplets.split_names = artifact_utils.encode_split_names(["train", "eval"])
    triplets.set_int_custom_property("triplets", len(trip))
    triplets.set_int_custom_property("held_out_triplets", held_count)
    triplets.set_float_custom_property("temperature", float(trip.temperature))
    triplets.set_string_custom_property("skipped", json.dumps(trip.skipped))
