"""Ingestion of re-ID folders into tf.Examples on the DirectRunner, in every layout."""
import json
import os

import pytest

from pipeline.beam_options import make_pipeline
from pipeline.reid_examples import TooManyBadImages, ingest_folder
from image_folders import MARKET, build_folder, read_examples
from schemas import schema_path

tf = pytest.importorskip("tensorflow")

SCHEMA = schema_path("reid_examples")


def test_market_layout_round_trip(tmp_path):
    data = build_folder(str(tmp_path / "ds"), MARKET)
    out = str(tmp_path / "ex")
    report = ingest_folder(str(tmp_path / "ds"), out, make_pipeline(), SCHEMA)
    assert report["bad_images"] == 0
    assert {s: v["count"] for s, v in report["splits"].items()} == {
        "train": 3, "query": 1, "gallery": 4}
    assert report["splits"]["train"]["sequences"] == [[1, 1], [2, 3], [3, 2]]
    assert report["splits"]["gallery"]["frame_min"] == 200
    assert report["splits"]["gallery"]["frame_max"] == 23021
    train = read_examples(out, "train")
    assert [e["image_name"] for e in train] == [
        "0002_c1s1_000451_03.jpg", "0002_c2s3_000551_01.png", "0007_c3s2_001000_00.jpg"]
    e = train[1]
    assert (e["pid"], e["camera"], e["frame"], e["sequence"], e["split"]) == (
        2, 2, 551, 3, "train")
    assert e["image"] == data["bounding_box_train/0002_c2s3_000551_01.png"]  # as stored
    gallery = {e["image_name"]: e for e in read_examples(out, "gallery")}
    assert gallery["-1_c1s1_000300_00.jpg"]["pid"] == -1
    assert gallery["0000_c3s1_000400_00.png"]["pid"] == 0
    assert gallery["1488_c1s6_023021_00.jpg.jpg"]["sequence"] == 6
    assert read_examples(out, "query")[0]["split"] == "query"


def test_tfusion_layout_with_duke_names(tmp_path):
    build_folder(str(tmp_path / "ds"), {"train/0005_c2_f0046985.jpg": "JPEG",
                                        "train/0005_c8_f0047100.jpg": "JPEG",
                                        "probe/0006_c1_f0000100.jpg": "JPEG",
                                        "test/0006_c3_f0000900.jpg": "JPEG"})
    out = str(tmp_path / "ex")
    report = ingest_folder(str(tmp_path / "ds"), out, make_pipeline(), SCHEMA)
    assert (report["layout"], report["convention"]) == ("tfusion", "duke")
    train = read_examples(out, "train")
    assert [(e["camera"], e["frame"], e["sequence"]) for e in train] == [
        (2, 46985, 1), (8, 47100, 1)]
    assert read_examples(out, "gallery")[0]["image_name"] == "0006_c3_f0000900.jpg"


def test_manifest_layout(tmp_path):
    ds = tmp_path / "ds"
    build_folder(str(ds), {"imgs/a.jpg": "JPEG", "imgs/b.png": "PNG", "imgs/c.jpg": "JPEG"})
    (ds / "manifest.csv").write_text("path,camera,frame,sequence,pid,split\n"
                                     "imgs/a.jpg,1,10,1,3,train\n"
                                     "imgs/b.png,2,20,4,3,query\n"
                                     "imgs/c.jpg,3,30,,,gallery\n")
    out = str(tmp_path / "ex")
    ingest_folder(str(ds), out, make_pipeline(), SCHEMA)
    q = read_examples(out, "query")[0]
    assert (q["image_name"], q["camera"], q["frame"], q["sequence"], q["pid"]) == (
        "b.png", 2, 20, 4, 3)
    g = read_examples(out, "gallery")[0]
    assert (g["pid"], g["sequence"]) == (-1, 1)


@pytest.fixture
def folder_with_corrupt(tmp_path):
    ds = tmp_path / "ds"
    build_folder(str(ds), MARKET)
    (ds / "bounding_box_test" / "0009_c4s1_000500_00.jpg").write_bytes(b"not a jpeg")
    good = ds / "bounding_box_train" / "0002_c1s1_000451_03.jpg"
    (ds / "bounding_box_train" / "0008_c1s1_000999_00.jpg").write_bytes(
        good.read_bytes()[:40])  # truncated JPEG
    (ds / "bounding_box_test" / "Thumbs.db").write_bytes(b"x")
    return ds


def test_corrupt_images_are_listed_not_written(tmp_path, folder_with_corrupt):
    out = str(tmp_path / "ex")
    report = ingest_folder(str(folder_with_corrupt), out, make_pipeline(), SCHEMA,
                           max_bad_fraction=0.5)
    assert report["bad_images"] == 2 and report["images"] == 10
    bad = sorted(os.path.basename(b["path"]) for b in report["bad"])
    assert bad == ["0008_c1s1_000999_00.jpg", "0009_c4s1_000500_00.jpg"]
    on_disk = json.load(open(os.path.join(out, "ingest_report.json")))
    assert on_disk["bad_images"] == 2
    assert len(on_disk["skipped_non_images"]) == 1
    names = [e["image_name"] for s in ("train", "gallery") for e in read_examples(out, s)]
    assert "0009_c4s1_000500_00.jpg" not in names and "0008_c1s1_000999_00.jpg" not in names
    assert report["splits"]["gallery"]["count"] == 4  # the corrupt one is not counted


def test_too_many_corrupt_images_fail_the_run(tmp_path, folder_with_corrupt):
    out = str(tmp_path / "ex")
    with pytest.raises(TooManyBadImages, match=r"2 of 10 images.*0009_c4s1_000500_00.jpg"):
        ingest_folder(str(folder_with_corrupt), out, make_pipeline(), SCHEMA,
                      max_bad_fraction=0.1)
    assert os.path.isfile(os.path.join(out, "ingest_report.json"))  # still reported


def test_cli_prints_summary(tmp_path, capsys):
    from pipeline.cli import main
    build_folder(str(tmp_path / "ds"), MARKET)
    rc = main(["ingest", str(tmp_path / "ds"), "--output", str(tmp_path / "ex"),
               "--", "--direct_num_workers=1"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "8 images, 0 bad" in out
    assert "train         3 images, 2 ids, cameras [1, 2, 3]" in out
    assert "sequences: c1s1, c2s3, c3s2" in out


def test_cli_reports_bad_folder(tmp_path, capsys):
    from pipeline.cli import main
    rc = main(["ingest", str(tmp_path / "missing"), "--output", str(tmp_path / "ex")])
    assert rc == 2
    assert "missing: dataset folder does not exist" in capsys.readouterr().err


def test_schema_validator_rejects_bad_values():
    from schemas.check import ExampleValidator
    v = ExampleValidator.from_pbtxt(SCHEMA)
    ok = {"image": b"x", "image_name": b"n.jpg", "camera": 1, "frame": 0, "sequence": 1,
          "pid": -1, "split": b"train"}
    assert v.problems(ok) == []
    assert v.problems({**ok, "split": b"val"}) == [
        "'split' = b'val' is not one of ['train', 'query', 'gallery']"]
    assert v.problems({**ok, "pid": -2}) == ["'pid' = -2 is below its minimum -1"]
    missing = dict(ok)
    del missing["camera"]
    assert v.problems(missing) == ["missing required feature 'camera'"]
