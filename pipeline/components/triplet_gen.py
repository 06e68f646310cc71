"""TripletGen: FusedRanking + target Examples -> Examples of RankNet triples.

TFusion step 5's training data: (a, i, j) with i drawn from fused ranks 1-25 and j from
25-50 of anchor a and the target P̄_ij from the fused scores
(`trainer.triplets.sample_for_config`, with the RankNet run's own configuration and
seed). Each triple carries its three encoded images, so the RankNet Trainer is the
stock TFX Trainer on this artifact and the ranking reaches it with lineage.
"""
import json
import os

from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import Examples

from pipeline.artifacts import FusedRanking
from st_model.progress import log

TRIPLETS_FILE = os.path.join("Split-train", "data_tfrecord-00000-of-00001.gz")


@tfx.dsl.components.component
def TripletGen(
    fused_ranking: tfx.dsl.components.InputArtifact[FusedRanking],
    examples: tfx.dsl.components.InputArtifact[Examples],
    triplets: tfx.dsl.components.OutputArtifact[Examples],
    ranknet_config: tfx.dsl.components.Parameter[str] = "{}",
) -> None:
    """Sample the triples of one RankNet round and write them as tf.Examples."""
    import tensorflow as tf

    from trainer import data, triplets as trip_lib
    from trainer.config import RankNetConfig
    config = RankNetConfig.from_dict(json.loads(ranknet_config), "TripletGen ranknet_config")
    ranking = trip_lib.read_fused_ranking(fused_ranking.uri)
    table = data.read_split(data.split_files(examples.uri, "train"))
    trip = trip_lib.sample_for_config(ranking, table, config,
                                      f"train split of {examples.uri}")
    path = os.path.join(triplets.uri, TRIPLETS_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(compression_type="GZIP")) as w:
        for record in trip_lib.triplet_examples(trip, table.name, table.images):
            w.write(record)
    log(f"TripletGen: {len(trip)} triples, τ={trip.temperature:.4g}, "
        f"mean target {trip.target.mean():.3f}, skipped {trip.skipped}")
    triplets.split_names = artifact_utils.encode_split_names(["train"])
    triplets.set_int_custom_property("triplets", len(trip))
    triplets.set_float_custom_property("temperature", float(trip.temperature))
    triplets.set_string_custom_property("skipped", json.dumps(trip.skipped))
