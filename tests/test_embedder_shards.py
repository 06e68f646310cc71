"""The Embedder's sharded output: each split a folder of row shards, rows ordered by
image name, the same rows as one sorted file would hold (bit for bit), written by
Beam workers that never hold a whole split; and the readers of Features artifacts."""
import os

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from core.features import load_features, make_feature_set, shard_layout
from pipeline.beam_options import LOCAL_BEAM_ARGS
from pipeline.component_io import split_path
from pipeline.components.embedder import WriteFeatureShards, embed_split_to_shards
from test_trainer import H, W, write_examples
from trainer.embed import concat_sorted, write_features

MULTI_PROCESS = [a for a in LOCAL_BEAM_ARGS if not a.startswith("--direct_")] + [
    "--direct_running_mode=multi_processing", "--direct_num_workers=2"]


def embedded_batches(n=23, d=5, batch=4, seed=0):
    """Embedder-like output: per batch a dict of arrays, rows in no particular order."""
    rng = np.random.default_rng(seed)
    names = np.array([f"{i:04d}_c{1 + i % 3}s1_{7 * i:06d}_00.jpg" for i in range(n)])
    order = rng.permutation(n)
    out = []
    for s in range(0, n, batch):
        i = order[s:s + batch]
        out.append({"camera": 1 + i % 3, "frame": 7 * i, "sequence": np.ones(len(i), np.int64),
                    "pid": i // 2, "name": names[i],
                    "features": rng.normal(size=(len(i), d)).astype(np.float32)})
    return out


def run_shards(batches, folder, rows, args=LOCAL_BEAM_ARGS):
    with beam.Pipeline(options=PipelineOptions(args)) as p:
        _ = p | beam.Create(batches, reshuffle=False) | WriteFeatureShards(folder, rows)


def assert_same_set(a, b):
    for k in ("features", "camera", "frame", "sequence", "pid", "name"):
        x, y = getattr(a, k), getattr(b, k)
        assert x.dtype == y.dtype and np.array_equal(x, y), k


@pytest.mark.parametrize("rows", [1, 7, 1024])
def test_shards_hold_the_sorted_rows_as_one_file_would(tmp_path, rows):
    batches = embedded_batches()
    folder = str(tmp_path / "train")
    run_shards(batches, folder, rows)
    # the single sorted file of the whole split, as the Embedder wrote it before
    whole = load_features(write_features(str(tmp_path / "train.npz"),
                                         concat_sorted(batches, "train")))
    assert_same_set(load_features(folder), whole)
    layout, _ = shard_layout(folder)
    n_shards = -(-23 // rows)
    assert [os.path.basename(s.path) for s in layout] == [
        f"features-{i:05d}-of-{n_shards:05d}.npz" for i in range(n_shards)]
    assert [(s.start, s.stop) for s in layout] == [
        (i * rows, min(23, (i + 1) * rows)) for i in range(n_shards)]
    assert split_path(str(tmp_path), "train") == folder


def test_a_rerun_with_other_shard_rows_leaves_no_stale_shards(tmp_path):
    folder = str(tmp_path / "query")
    run_shards(embedded_batches(), folder, 3)
    run_shards(embedded_batches(seed=1), folder, 10)
    assert sorted(os.listdir(folder)) == [f"features-0000{i}-of-00003.npz" for i in range(3)]
    expect = concat_sorted(embedded_batches(seed=1), "query")
    np.testing.assert_array_equal(load_features(folder).name, expect["name"])


def test_an_empty_split_or_a_repeated_name_is_an_error(tmp_path):
    with pytest.raises(Exception, match="no images"):
        run_shards([], str(tmp_path / "empty"), 4)
    batches = embedded_batches()
    batches[1]["name"][0] = batches[0]["name"][0]
    with pytest.raises(Exception, match=r"1 image name\(s\) occur more than once"):
        run_shards(batches, str(tmp_path / "dup"), 4)


def test_split_path_falls_back_to_one_file_per_split(tmp_path):
    write_features(str(tmp_path / "gallery.npz"), concat_sorted(embedded_batches(), "g"))
    assert split_path(str(tmp_path), "gallery") == str(tmp_path / "gallery.npz")
    assert len(load_features(split_path(str(tmp_path), "gallery"))) == 23


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """An untrained small ResNet exported as the Trainer exports it (the embedding
    only has to be deterministic here)."""
    from trainer import export, models
    spec = models.BackboneSpec("small", H, W, base_width=4, blocks=(1, 1, 1, 1))
    return export.export_model(str(tmp_path_factory.mktemp("model") / "serving"), spec,
                               models.small_resnet(spec))


def test_two_worker_processes_embed_the_same_shards(tmp_path, tiny_model):
    """Examples -> embedded shards in memory and with 2 worker processes: both equal
    the split embedded row by row and sorted by name (batches of one image, so the
    embedding of a row does not depend on how the runner batched it)."""
    from trainer.embed import embed_serialized
    from trainer.export import Embedder
    examples = str(tmp_path / "examples")
    records = write_examples(examples)
    embedder = Embedder(tiny_model)
    for mode, args in (("memory", LOCAL_BEAM_ARGS), ("processes", MULTI_PROCESS)):
        with beam.Pipeline(options=PipelineOptions(args)) as p:
            for split in ("train", "gallery"):
                embed_split_to_shards(p, examples, split, tiny_model,
                                      str(tmp_path / mode / split), batch_size=1,
                                      shard_rows=5)
    for split in ("train", "gallery"):
        a = concat_sorted([embed_serialized(embedder, [r]) for r in records[split]], split)
        expect = make_feature_set(a["features"], a["camera"], a["frame"], a["sequence"],
                                  a["pid"], a["name"])
        assert len(expect) == len(records[split]) > 5
        for mode in ("memory", "processes"):
            folder = split_path(str(tmp_path / mode), split)
            assert len(shard_layout(folder)[0]) == -(-len(expect) // 5)
            assert_same_set(load_features(folder), expect)
