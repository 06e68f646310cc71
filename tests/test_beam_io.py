"""Ingestion as a Beam job that runs on real workers: separate worker processes, a
dataset, manifest and outputs on a non-local Beam filesystem, a small job graph for
Dataflow, and one way to pass Beam options on the command line."""
import json
import os

import pytest

from image_folders import MARKET, build_folder, read_examples
from pipeline.beam_options import REPO_SETUP_FILE, beam_args, make_pipeline
from pipeline.cli import main, parse_command_line
from pipeline.reid_examples import build_ingest, ingest_folder
from schemas import schema_path
from test_errors import assert_one_line_error

pytest.importorskip("tensorflow")

SCHEMA = schema_path("reid_examples")
DATAFLOW = ["--runner=DataflowRunner", "--project=proj", "--region=europe-west4",
            "--temp_location=gs://bucket/tmp"]


def examples_by_split(uri):
    return {s: read_examples(uri, s) for s in ("train", "query", "gallery")}


# ------------------------------------------------------------ separate worker processes
def test_two_worker_processes_write_the_in_memory_examples(tmp_path):
    build_folder(str(tmp_path / "ds"), MARKET)
    mem, mp = str(tmp_path / "mem"), str(tmp_path / "mp")
    mem_report = ingest_folder(str(tmp_path / "ds"), mem, make_pipeline(), SCHEMA)
    mp_report = ingest_folder(str(tmp_path / "ds"), mp, make_pipeline(
        ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]), SCHEMA)
    assert mp_report == mem_report
    assert examples_by_split(mp) == examples_by_split(mem)


# ------------------------------------------------------------ a non-local filesystem
def test_dataset_and_examples_on_another_filesystem(store, tmp_path):
    build_folder(str(store / "ds"), MARKET)
    (store / "ds" / "query" / "Thumbs.db").write_bytes(b"x")
    report = ingest_folder("tfusiontest://ds", "tfusiontest://ex", make_pipeline(), SCHEMA)
    local = ingest_folder(str(store / "ds"), str(tmp_path / "local"), make_pipeline(),
                          SCHEMA)
    assert examples_by_split(str(store / "ex")) == examples_by_split(str(tmp_path / "local"))
    assert (report["layout"], report["images"]) == ("market", 8)
    assert report["splits"] == local["splits"]
    assert report["skipped_non_images"] == ["tfusiontest://ds/query/Thumbs.db"]
    written = json.loads((store / "ex" / "ingest_report.json").read_text())
    assert written["dataset"] == "tfusiontest://ds"


def test_remote_manifest_with_remote_and_relative_paths(store):
    data = build_folder(str(store / "ds"), MARKET)
    build_folder(str(store / "mf"), {"imgs/a.png": "PNG", "imgs/b.jpg": "JPEG"})
    (store / "mf" / "manifest.csv").write_text(
        "path,camera,frame,sequence,pid,split\n"
        "tfusiontest://ds/bounding_box_train/0002_c1s1_000451_03.jpg,1,451,1,2,train\n"
        "imgs/a.png,2,20,4,3,query\n"
        "imgs/b.jpg,3,30,,,gallery\n")
    from core.datasets import read_dataset_folder
    listing = read_dataset_folder("tfusiontest://mf")
    assert listing.layout == "manifest"
    assert [r.path for s in ("train", "query", "gallery") for r in listing.splits[s]] == [
        "tfusiontest://ds/bounding_box_train/0002_c1s1_000451_03.jpg",
        "tfusiontest://mf/imgs/a.png", "tfusiontest://mf/imgs/b.jpg"]
    report = ingest_folder("tfusiontest://mf", "tfusiontest://ex", make_pipeline(), SCHEMA)
    assert report["bad_images"] == 0
    train = read_examples(str(store / "ex"), "train")
    assert train[0]["image"] == data["bounding_box_train/0002_c1s1_000451_03.jpg"]
    assert read_examples(str(store / "ex"), "query")[0]["image_name"] == "a.png"


def test_remote_folder_fingerprint_and_missing_folder(store):
    from pipeline.fingerprint import dataset_fingerprint
    from pipeline.run_config import RunConfigError
    build_folder(str(store / "ds"), MARKET)
    first = dataset_fingerprint("tfusiontest://ds")
    assert dataset_fingerprint("tfusiontest://ds") == first
    (store / "ds" / "query" / "0009_c4s1_000500_00.jpg").write_bytes(b"new")
    assert dataset_fingerprint("tfusiontest://ds") != first
    with pytest.raises(RunConfigError, match="empty or does not exist"):
        dataset_fingerprint("tfusiontest://missing")
    with pytest.raises(FileNotFoundError, match="tfusiontest://missing: dataset folder"):
        ingest_folder("tfusiontest://missing", "tfusiontest://ex", make_pipeline(), SCHEMA)


# ------------------------------------------------------------ the job graph for Dataflow
def test_dataflow_ingest_job_graph_of_a_market_listing_stays_under_1mb(market_lists,
                                                                       tmp_path):
    """The ingest job built for Dataflow (nothing runs, no cloud is contacted) over the
    36k real Market names on a bucket: the listing goes to a file, not into the graph."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from core.datasets import LAYOUTS
    from core.names import parse_names, read_name_list
    records = []
    for split, folder in LAYOUTS["market"].items():
        names = read_name_list(os.path.join(market_lists, f"{split}.txt"))
        records += [(f"gs://bucket/market/{folder}/{n}", n, *pt[:2], pt.frame, pt.sequence,
                     split) for n, pt in zip(names, parse_names(names, "market"))]
    assert len(records) > 30000
    # --dry_run: Beam skips its look at the temp bucket (no credentials, no network)
    p = beam.Pipeline(options=PipelineOptions(beam_args(DATAFLOW + ["--dry_run=True"])))
    build_ingest(p, records, str(tmp_path), SCHEMA)
    size = len(p.to_runner_api().SerializeToString())
    assert size < 1_000_000, f"job graph of {size} bytes"
    with open(tmp_path / "image_list.jsonl") as f:
        assert sum(1 for _ in f) == len(records)


# ------------------------------------------------------------ Beam options on the CLI
FUSE = ["fuse", "--train", "t.npz", "--query", "q.npz", "--gallery", "g.npz",
        "--output-dir", "o"]


def test_a_misspelt_flag_is_an_error_not_a_beam_option(capsys):
    assert main(FUSE + ["--topk", "3"]) == 2
    assert_one_line_error(capsys.readouterr().err, "fuse",
                          "unrecognized arguments: --topk 3", "after a literal `--`")
    assert main(FUSE + ["--", "--topk", "3"]) == 2
    assert_one_line_error(capsys.readouterr().err, "fuse", "not Beam pipeline option",
                          "--topk")
    assert main(FUSE + ["--", "DataflowRunner"]) == 2
    assert_one_line_error(capsys.readouterr().err, "fuse", "stray value(s) DataflowRunner")
    assert main(["ingest", "ds", "--output", "o", "--direct_num_workers=2"]) == 2
    assert_one_line_error(capsys.readouterr().err, "ingest",
                          "unrecognized arguments: --direct_num_workers=2")
    assert main(["synth", "--out", "o", "--", "--runner=DirectRunner"]) == 2
    assert_one_line_error(capsys.readouterr().err, "synth", "takes no Beam pipeline options")


def test_beam_options_after_the_separator_reach_the_pipeline(tmp_path, monkeypatch,
                                                            capsys):
    from apache_beam.options.pipeline_options import GoogleCloudOptions
    from pipeline import beam_options
    built = []
    real = beam_options.make_pipeline
    monkeypatch.setattr(beam_options, "make_pipeline",
                        lambda args=None: built.append(real(args)) or built[-1])
    build_folder(str(tmp_path / "ds"), MARKET)
    assert main(["ingest", str(tmp_path / "ds"), "--output", str(tmp_path / "ex"), "--",
                 "--job_name=tfusion-test", "--direct_num_workers=1"]) == 0
    assert "8 images, 0 bad" in capsys.readouterr().out
    assert built[0].options.view_as(GoogleCloudOptions).job_name == "tfusion-test"


@pytest.mark.parametrize("command", [["ingest", "ds", "--output", "o"], FUSE])
def test_setup_file_is_added_for_a_remote_runner_only(command):
    from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions
    args, _ = parse_command_line(command + ["--"] + DATAFLOW)
    assert args.beam_options == DATAFLOW
    assert PipelineOptions(args.beam_args).view_as(SetupOptions).setup_file == REPO_SETUP_FILE
    args, _ = parse_command_line(command + ["--", "--runner", "DirectRunner"])
    assert not any(a.startswith("--setup_file") for a in args.beam_args)
    args, _ = parse_command_line(command)
    assert args.beam_args == []  # fuse stays in memory without Beam options
    shipped = DATAFLOW + ["--requirements_file=r.txt"]
    assert beam_args(shipped) == shipped  # the user ships the code another way


def test_local_defaults_give_way_to_the_users_options():
    assert beam_args(["--direct_num_workers=2"]) == [
        "--runner=DirectRunner", "--direct_running_mode=in_memory", "--direct_num_workers=2"]


def test_run_config_beam_args_are_checked(tmp_path, capsys):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"beam_args": ["--direct_num_wokers=2"]}))
    assert main(["run", "--config", str(cfg), "--output-dir", str(tmp_path / "r"),
                 "--compile-only"]) == 2
    assert_one_line_error(capsys.readouterr().err, "run", "cfg.json: beam_args",
                          "--direct_num_wokers")
