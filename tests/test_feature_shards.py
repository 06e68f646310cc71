"""Feature sets as folders of row shards: written and read back bit for bit, read by
row ranges touching only the shards that hold them, clear errors for broken series,
and the exact cosine moments the Beam job sums block by block."""
import os

import numpy as np
import pytest

from core import features as ft
from st_model import vision


def _set(n=250, d=6, seed=0, names=True):
    rng = np.random.default_rng(seed)
    return ft.make_feature_set(rng.standard_normal((n, d)), rng.integers(1, 4, n),
                               rng.integers(0, 5000, n), rng.integers(1, 3, n),
                               rng.integers(1, 30, n),
                               np.array([f"img{i:04d}" for i in range(n)]) if names
                               else None, source="mem")


def _same(a, b):
    for k in ("features", "camera", "frame", "sequence", "pid", "name"):
        x, y = getattr(a, k), getattr(b, k)
        assert (x is None and y is None) or np.array_equal(x, y), k


def test_shard_folder_loads_back_bit_for_bit_and_like_one_file(tmp_path):
    fs = _set()
    paths = ft.save_feature_shards(fs, str(tmp_path / "train"), 64)
    assert [os.path.basename(p) for p in paths] == [
        f"features-{i:05d}-of-00004.npz" for i in range(4)]
    back = ft.load_features(str(tmp_path / "train"))
    _same(back, fs)
    one = ft.load_features(ft.save_features(fs, str(tmp_path / "train.npz")))
    _same(back, one)
    pts = ft.load_st_points(str(tmp_path / "train"))
    assert len(pts) == 250 and np.array_equal(pts.frame, fs.frame)
    assert np.array_equal(pts.pid, fs.pid)
    # rewriting with another shard size replaces the old series
    ft.save_feature_shards(fs, str(tmp_path / "train"), 100)
    assert len(os.listdir(tmp_path / "train")) == 3
    _same(ft.load_features(str(tmp_path / "train")), fs)


def test_rows_are_read_from_the_shards_that_hold_them_only(tmp_path, monkeypatch):
    fs = _set(names=False)
    folder = str(tmp_path / "train")
    ft.save_feature_shards(fs, folder, 50)
    layout, points = ft.shard_layout(folder)
    assert [(s.start, s.stop) for s in layout] == [(i, min(i + 50, 250))
                                                  for i in range(0, 250, 50)]
    loaded = []
    real = ft.load_features
    monkeypatch.setattr(ft, "load_features",
                        lambda p, **kw: loaded.append(os.path.basename(p)) or real(p, **kw))
    rows = ft.FeatureRows(layout, folder, cache_shards=2)
    part = rows.rows(90, 130)                       # shards 1 and 2
    assert loaded == ["features-00001-of-00005.npz", "features-00002-of-00005.npz"]
    assert np.array_equal(part.features, fs.features[90:130])
    assert part.names.tolist() == [f"train#{i}" for i in range(90, 130)]
    rows.rows(200, 210)                             # shard 4: the oldest (1) leaves
    rows.rows(100, 110)                             # shard 2 still held: no read
    assert loaded[2:] == ["features-00004-of-00005.npz"]
    assert len(rows._cache) == 2
    rows.rows(60, 70)                               # shard 1 read again
    assert loaded[3:] == ["features-00001-of-00005.npz"]
    assert ft.load_features(folder).names.tolist()[:2] == ["train#0", "train#1"]


@pytest.mark.parametrize("damage, message", [
    ("missing", "1 of 3 shard(s) missing, first features-00001-of-00003.npz"),
    ("mixed", "shards of different series"),
    ("empty", "no feature file or shards"),
    ("pid", "'pid' is in 2 of 3 shard(s)"),
    ("dim", "shards hold features of different shapes"),
])
def test_broken_shard_series_name_the_folder_and_the_problem(tmp_path, damage, message):
    folder = tmp_path / "train"
    fs = _set(n=120)
    paths = ft.save_feature_shards(fs, str(folder), 50)
    if damage == "missing":
        os.remove(paths[1])
    elif damage == "mixed":
        ft.save_features(fs.subset(np.arange(10)), str(folder / "features-00000-of-00009.npz"))
    elif damage == "empty":
        for p in paths:
            os.remove(p)
        (folder / "notes.txt").write_text("x")
    elif damage in ("pid", "dim"):
        last = fs.subset(np.arange(100, 120))
        if damage == "pid":
            last.pid = None
        else:
            last.features = np.ones((20, 3), np.float32) / np.sqrt(3)
        ft.save_features(last, paths[2])
    with pytest.raises(ft.FeatureFileError) as e:
        ft.load_features(str(folder))
    assert str(folder) in str(e.value) and message in str(e.value)


def test_missing_folder_says_it_does_not_exist(tmp_path):
    with pytest.raises(ft.FeatureFileError, match="does not exist"):
        ft.load_features(str(tmp_path / "nowhere"))


def test_cosine_moments_are_exact_and_their_block_sums_order_free():
    rng = np.random.default_rng(3)
    n = 2 * vision.MOMENT_BLOCK + 300
    x = rng.standard_normal((n, 12)) + 0.3
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    cam = rng.integers(1, 5, n)
    mean, std = vision.cosine_moments(x, cam)
    c = x @ x.T
    other = cam[:, None] != cam[None, :]
    assert abs(mean - c[other].mean()) < 1e-9 and abs(std - c[other].std()) < 1e-9
    cams = np.unique(cam)
    blocks = [vision.cosine_sums(x[s:s + vision.MOMENT_BLOCK], cam[s:s + vision.MOMENT_BLOCK],
                                 cams) for s in range(0, n, vision.MOMENT_BLOCK)]
    for order in (blocks, blocks[::-1], blocks[1:] + blocks[:1]):
        total = None
        for b in order:
            total = vision.add_cosine_sums(total, b)
        assert vision.moments_of_sums(total) == (mean, std)


def test_header_gives_points_dimension_and_first_name_without_the_features(tmp_path):
    fs = _set(n=120, d=7)
    ft.save_feature_shards(fs, str(tmp_path / "train"), 50)
    head = ft.read_header(str(tmp_path / "train"))
    assert (len(head), head.dim, head.first_name) == (120, 7, "img0000")
    assert np.array_equal(head.frame, fs.frame) and np.array_equal(head.pid, fs.pid)
    np.savez(tmp_path / "nofeat.npz", camera=[1, 2], frame=[0, 5])
    with pytest.raises(ft.FeatureFileError, match="missing array features"):
        ft.read_header(str(tmp_path / "nofeat.npz"))
