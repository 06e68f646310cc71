"""`fuse` as a job that runs on real workers: inputs and outputs on a non-local Beam
filesystem, and a job graph for Dataflow that carries paths, not features."""
import json

import numpy as np
import pytest

pytest.importorskip("apache_beam")

from core.features import load_features  # noqa: E402
from pipeline.fuse_job import fuse  # noqa: E402
from st_model.config import FusionRule, STConfig, resolve_settings  # noqa: E402

IN_PROCESS = ["--runner=DirectRunner", "--direct_running_mode=in_memory",
              "--direct_num_workers=1"]
DATAFLOW = ["--runner=DataflowRunner", "--project=proj", "--region=europe-west4",
            "--temp_location=gs://bucket/tmp"]


def write_split(path, n, seed, ids=40, d=16):
    """Raw arrays of one split (identities shared across splits, moving between
    cameras in time) as an .npz file."""
    rng = np.random.default_rng(seed)
    proto = np.random.default_rng(99).standard_normal((ids + 1, d))
    pid = rng.integers(1, ids + 1, n)
    cam = rng.integers(1, 4, n)
    x = proto[pid] + 0.8 * rng.standard_normal((n, d))
    frame = pid * 300 + cam * 40 + rng.integers(0, 30, n)
    np.savez(path, features=x.astype(np.float32), camera=cam, frame=frame,
             sequence=np.ones(n, np.int64), pid=pid,
             name=np.array([f"s{seed}_{i:04d}" for i in range(n)]))


def test_fuse_reads_and_writes_another_filesystem(store):
    """Feature files, the ST model, metrics, plot and fused ranking all on
    `tfusiontest://` (the fixture fails the test if anything lands in the working
    folder); the Beam path (train staged for its workers) and the in-memory path
    write the same artifacts."""
    from st_model.fused_ranking import read_ranking
    from st_model.st_artifact import load_st_model
    (store / "in").mkdir()
    for split, n, seed in (("train", 300, 0), ("query", 60, 1), ("gallery", 200, 2)):
        write_split(store / "in" / f"{split}.npz", n, seed)
    train, query, gallery = (load_features(f"tfusiontest://in/{s}.npz")
                             for s in ("train", "query", "gallery"))
    config = resolve_settings(STConfig(top_k=4), FusionRule(ranking_top_n=10))
    mem = fuse(train, query, gallery, config, "tfusiontest://mem")
    beam = fuse(train, query, gallery, config, "tfusiontest://beam", beam_args=IN_PROCESS)
    assert beam["path"] == "beam" and beam["fusion"] == mem["fusion"]
    for out in ("mem", "beam"):
        assert sorted(p.name for p in (store / out).iterdir()) == [
            "fused_ranking-00000-of-00001.tfrecord.gz", "metrics.json", "st_model.npz",
            "st_model.png"]
        assert json.loads((store / out / "metrics.json").read_text())["fusion"] == \
            mem["fusion"]
    a = load_st_model("tfusiontest://mem")
    assert a.visual.sum() > 0 and a.same_as(load_st_model("tfusiontest://beam"))
    ranking = read_ranking(str(store / "mem"))
    assert len(ranking) == len(train) and ranking == read_ranking(str(store / "beam"))
    # the train split as row shards on that filesystem, the launcher holding its
    # header only: listed, planned and read by the workers there
    from core.features import read_header, save_feature_shards
    save_feature_shards(train, "tfusiontest://in/train_shards", 128)
    assert len(list((store / "in" / "train_shards").iterdir())) == 3
    shards = fuse(read_header("tfusiontest://in/train_shards"), query, gallery, config,
                  "tfusiontest://shards", beam_args=IN_PROCESS,
                  train_path="tfusiontest://in/train_shards")
    assert shards["fusion"] == mem["fusion"]
    assert a.same_as(load_st_model("tfusiontest://shards"))
    assert read_ranking(str(store / "shards")) == ranking


@pytest.mark.parametrize("storage", ["file", "shards"])
def test_dataflow_fuse_job_graph_of_a_market_size_train_split_stays_under_1mb(
        tmp_path, storage):
    """fuse's Beam job built for Dataflow (nothing runs, no cloud is contacted) over
    13k × 2048 float32 train features (106 MB), one file or 13 row shards: the graph
    holds paths and row ranges."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from core.features import load_st_points
    from pipeline.beam_options import beam_args
    from pipeline.fuse_job import build_st_job
    n, d = 13_000, 2048
    rng = np.random.default_rng(0)
    arrays = dict(features=rng.standard_normal((n, d), dtype=np.float32),
                  camera=rng.integers(1, 7, n), frame=rng.integers(0, 200_000, n),
                  sequence=rng.integers(1, 7, n))
    if storage == "file":
        path = str(tmp_path / "train.npz")
        np.savez(path, **arrays)
    else:
        from core.features import shard_name
        path = str(tmp_path / "train")
        (tmp_path / "train").mkdir()
        for i in range(13):
            np.savez(f"{path}/{shard_name(i, 13)}",
                     **{k: v[i * 1000:(i + 1) * 1000] for k, v in arrays.items()})
    frames = load_st_points(path)[1]
    span = int(frames.max() - frames.min())
    p = beam.Pipeline(options=PipelineOptions(beam_args(DATAFLOW + ["--dry_run=True"])))
    model_path = build_st_job(p, path, resolve_settings(), span, "gs://bucket/out")
    assert model_path == "gs://bucket/out/st_model.npz"
    size = len(p.to_runner_api().SerializeToString())
    print(f"job graph: {size} bytes")
    assert size < 1_000_000, f"job graph of {size} bytes"
