"""ST points from file names (all conventions) and dataset-folder listing."""
import os

import pytest

from core.datasets import ManifestError, detect_layout, read_dataset_folder, read_manifest
from core.names import (FRAME_RATES, STPoint, UnrecognisedName, parse_name, parse_names,
                        read_name_list)


def _independent_market_parse(name):
    """A second, regex-free reading of Market names: PPPP_cCsS_FFFFFF_BB.jpg."""
    pid, cs, frame, _ = name.split("_", 3)
    cam, seq = cs[1:].split("s")
    return STPoint(int(pid), int(cam), int(frame), int(seq))


@pytest.mark.parametrize("split,count", [("train", 12936), ("query", 3368),
                                         ("gallery", 19732)])
def test_every_real_market_name_parses(market_lists, split, count):
    names = read_name_list(os.path.join(market_lists, f"{split}.txt"))
    assert len(names) == count
    points = parse_names(names, source=f"{split}.txt")
    assert points == [_independent_market_parse(n) for n in names]
    assert {p.camera for p in points} == {1, 2, 3, 4, 5, 6}


def test_market_sequences_per_camera(market_lists):
    seqs = {}
    for split in ("train", "query", "gallery"):
        for n in read_name_list(os.path.join(market_lists, f"{split}.txt")):
            p = _independent_market_parse(n)
            seqs.setdefault(p.camera, set()).add(p.sequence)
    got = {}
    for split in ("train", "query", "gallery"):
        for p in parse_names(read_name_list(os.path.join(market_lists, f"{split}.txt"))):
            got.setdefault(p.camera, set()).add(p.sequence)
    assert got == seqs
    assert {c: len(s) for c, s in got.items()} == {1: 6, 2: 3, 3: 3, 4: 6, 5: 3, 6: 4}


def test_market_quirks_and_special_ids(market_lists):
    gallery = read_name_list(os.path.join(market_lists, "gallery.txt"))
    doubled = [n for n in gallery if n.endswith(".jpg.jpg")]
    assert len(doubled) == 18
    assert parse_name("1488_c1s6_023021_00.jpg.jpg") == STPoint(1488, 1, 23021, 6)
    pids = [p.pid for p in parse_names(gallery)]
    assert pids.count(-1) == sum(n.startswith("-1_") for n in gallery) > 0
    assert pids.count(0) == sum(n.startswith("0000_") for n in gallery) > 0


@pytest.mark.parametrize("name,point", [
    ("0002_c1s1_000451_03.jpg", STPoint(2, 1, 451, 1)),
    ("-1_c3s2_012345_00.jpg", STPoint(-1, 3, 12345, 2)),
    ("0005_c2_f0046985.jpg", STPoint(5, 2, 46985, 1)),
    ("0412_c8_f0170213.jpg", STPoint(412, 8, 170213, 1)),
    ("0001_1_25004_107_32_106_221.jpeg", STPoint(1, 1, 25004, 1)),
    ("0000_5_14800_22_41_60_180.jpeg", STPoint(0, 5, 14800, 1)),
    ("/data/x/0002_c1s1_000451_03.png", STPoint(2, 1, 451, 1)),
])
def test_hand_written_names(name, point):
    assert parse_name(name) == point


def test_explicit_convention_is_enforced():
    assert parse_name("0005_c2_f0046985.jpg", "duke") == STPoint(5, 2, 46985, 1)
    with pytest.raises(UnrecognisedName, match="tried market"):
        parse_name("0005_c2_f0046985.jpg", "market")
    with pytest.raises(ValueError, match="unknown naming convention 'cuhk'"):
        parse_name("0005_c2_f0046985.jpg", "cuhk")


@pytest.mark.parametrize("bad", ["foo.jpg", "0002_c1s1_000451.jpg", "0002_c1_.jpg",
                                 "0001_1_25004_107.jpeg", "0002_c1s1_000451_03",
                                 "abcd_c1s1_000451_03.jpg"])
def test_malformed_names_name_the_file_and_conventions(bad):
    with pytest.raises(UnrecognisedName) as e:
        parse_name(bad)
    msg = str(e.value)
    assert repr(bad) in msg
    assert "market" in msg and "duke" in msg and "grid" in msg


def test_parse_names_reports_source_and_line():
    with pytest.raises(UnrecognisedName, match=r"list\.txt:2: 'oops\.jpg'"):
        parse_names(["0002_c1s1_000451_03.jpg", "oops.jpg"], source="list.txt")


def test_frame_rates_known():
    assert FRAME_RATES["market"] == 25.0 and FRAME_RATES["duke"] == 60.0


def _touch(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "wb").close()


def test_read_market_layout_skips_non_images(tmp_path):
    for rel in ["bounding_box_train/0002_c1s1_000451_03.jpg",
                "bounding_box_train/0001_c2s1_000100_00.jpg",
                "bounding_box_train/Thumbs.db",
                "query/0003_c1s1_000200_00.jpg",
                "bounding_box_test/0003_c2s1_000300_00.jpg"]:
        _touch(str(tmp_path / rel))
    listing = read_dataset_folder(str(tmp_path))
    assert listing.layout == "market" and listing.convention == "market"
    assert listing.counts() == {"train": 2, "query": 1, "gallery": 1}
    assert [r.name for r in listing.splits["train"]] == [
        "0001_c2s1_000100_00.jpg", "0002_c1s1_000451_03.jpg"]  # sorted
    assert listing.splits["gallery"][0].point == STPoint(3, 2, 300, 1)
    assert listing.skipped == [str(tmp_path / "bounding_box_train" / "Thumbs.db")]


def test_read_tfusion_layout_with_duke_names(tmp_path):
    for rel in ["train/0005_c2_f0046985.jpg", "probe/0006_c1_f0000100.jpg",
                "test/0006_c3_f0000900.jpg"]:
        _touch(str(tmp_path / rel))
    listing = read_dataset_folder(str(tmp_path))
    assert (listing.layout, listing.convention) == ("tfusion", "duke")
    assert listing.splits["query"][0].point == STPoint(6, 1, 100, 1)


def test_bad_name_in_folder_is_an_error(tmp_path):
    for rel in ["bounding_box_train/0002_c1s1_000451_03.jpg",
                "bounding_box_train/holiday.jpg", "query/0003_c1s1_000200_00.jpg",
                "bounding_box_test/0003_c2s1_000300_00.jpg"]:
        _touch(str(tmp_path / rel))
    with pytest.raises(UnrecognisedName, match="holiday.jpg"):
        read_dataset_folder(str(tmp_path))


def test_not_a_dataset_folder(tmp_path):
    (tmp_path / "query").mkdir()
    with pytest.raises(FileNotFoundError, match="not a re-ID dataset folder"):
        detect_layout(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        detect_layout(str(tmp_path / "nope"))


def test_manifest(tmp_path):
    (tmp_path / "manifest.csv").write_text(
        "path,camera,frame,sequence,pid,split\n"
        "a/img1.jpg,1,100,2,7,train\n"
        "/abs/img2.png,3,50,,,query\n"
        "img3.jpg,2,75,1,0,gallery\n")
    listing = read_dataset_folder(str(tmp_path))
    assert listing.layout == "manifest"
    tr = listing.splits["train"][0]
    assert tr.path == str(tmp_path / "a" / "img1.jpg") and tr.point == STPoint(7, 1, 100, 2)
    q = listing.splits["query"][0]
    assert q.path == "/abs/img2.png" and q.point == STPoint(-1, 3, 50, 1)
    assert listing.splits["gallery"][0].point.pid == 0


@pytest.mark.parametrize("text,match", [
    ("path,frame\nx.jpg,1\n", "lacks column.*camera"),
    ("path,camera,frame\nx.jpg,one,1\n", r"manifest.csv:2: bad number"),
    ("path,camera,frame,split\nx.jpg,1,1,val\n", r"manifest.csv:2: split 'val'"),
    ("path,camera,frame\n,1,1\n", r"manifest.csv:2: empty path"),
])
def test_manifest_errors_name_file_and_line(tmp_path, text, match):
    (tmp_path / "manifest.csv").write_text(text)
    with pytest.raises(ManifestError, match=match):
        read_manifest(str(tmp_path / "manifest.csv"))
