"""ReidExampleGen as a TFX component in a LocalDagRunner pipeline with SQLite MLMD."""
import os

import pytest

from image_folders import MARKET, build_folder, read_examples

tfx = pytest.importorskip("tfx.v1")


def run_pipeline(tmp_path, dataset_dir, max_bad_fraction=0.01):
    from pipeline.beam_options import LOCAL_BEAM_ARGS
    from pipeline.components.reid_example_gen import ReidExampleGen
    gen = ReidExampleGen(dataset_dir=dataset_dir, max_bad_fraction=max_bad_fraction)
    db = str(tmp_path / "mlmd.sqlite")
    p = tfx.dsl.Pipeline(
        pipeline_name="ingest-test", pipeline_root=str(tmp_path / "root"),
        components=[gen], enable_cache=False,
        metadata_connection_config=tfx.orchestration.metadata
        .sqlite_metadata_connection_config(db),
        beam_pipeline_args=LOCAL_BEAM_ARGS)
    tfx.orchestration.LocalDagRunner().run(p)
    return db


def test_component_writes_examples_with_lineage(tmp_path):
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2
    build_folder(str(tmp_path / "ds"), MARKET)
    db = run_pipeline(tmp_path, str(tmp_path / "ds"))
    cfg = metadata_store_pb2.ConnectionConfig()
    cfg.sqlite.filename_uri = db
    store = metadata_store.MetadataStore(cfg)
    arts = store.get_artifacts_by_type("Examples")
    assert len(arts) == 1
    art = arts[0]
    assert art.properties["split_names"].string_value == '["train", "query", "gallery"]'
    assert art.custom_properties["bad_images"].int_value == 0
    assert [e["image_name"] for e in read_examples(art.uri, "query")] == [
        "0004_c1s1_000100_00.jpg"]
    assert len(read_examples(art.uri, "gallery")) == 4
    assert os.path.isfile(os.path.join(art.uri, "ingest_report.json"))


def test_component_fails_on_too_many_bad_images(tmp_path):
    ds = tmp_path / "ds"
    build_folder(str(ds), MARKET)
    (ds / "query" / "0009_c4s1_000500_00.jpg").write_bytes(b"garbage")
    with pytest.raises(Exception, match="1 of 9 images are unreadable"):
        run_pipeline(tmp_path, str(ds), max_bad_fraction=0.0)
