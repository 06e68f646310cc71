"""The error contract of `tfusion`: every expected failure is one line
`tfusion <command>: error: <file>: <problem>` and exit status 2; a bug keeps its
traceback. One test per bad input; TensorFlow commands use 32x16 images."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from image_folders import MARKET, build_folder
from pipeline.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(capsys, *argv):
    """(exit status, stderr) of `tfusion ARGV`, in process."""
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def assert_one_line_error(err, command, *needles):
    lines = [l for l in err.splitlines() if l.startswith(f"tfusion {command}: error: ")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


# ---------------------------------------------------------------- feature files (fuse)
def _features(path, n=40, **override):
    rng = np.random.default_rng(1)
    arrays = dict(features=rng.standard_normal((n, 4)).astype(np.float32),
                  camera=np.repeat([1, 2], n // 2), frame=np.arange(n) * 10,
                  pid=np.tile(np.arange(1, n // 2 + 1), 2),
                  name=np.array([f"{i:04d}.jpg" for i in range(n)]))
    arrays.update(override)
    np.savez(path, **arrays)
    return path


def _fuse(capsys, tmp_path, **paths):
    split = {s: paths.get(s) or _features(tmp_path / f"{s}.npz")
             for s in ("train", "query", "gallery")}
    out = paths.get("out", tmp_path / "out")
    return run_cli(capsys, "fuse", "--train", split["train"], "--query", split["query"],
                   "--gallery", split["gallery"], "--output-dir", out, "--no-plot",
                   "--no-ranking")


def _object_array(path):
    np.savez(path, features=np.array([np.zeros(4), np.zeros(3)], dtype=object),
             camera=np.ones(2), frame=np.zeros(2))


def _text_file(path):
    path.write_text("features, camera, frame\n1, 2, 3\n")


def _nan_row(path):
    x = np.ones((40, 4), np.float32)
    x[7, 2] = np.nan
    _features(path, features=x)


def _duplicate_names(path):
    _features(path, name=np.array([f"{i % 39:04d}.jpg" for i in range(40)]))


@pytest.mark.parametrize("split,write,problem", [
    ("train", _object_array, ["object (pickled) array"]),
    ("query", _text_file, ["not an .npz archive"]),
    ("gallery", _nan_row, ["NaN/inf", "first at row 7"]),
    ("train", _duplicate_names, ["repeats 1 image name", "'0000.jpg'"]),
])
def test_bad_feature_file_names_the_file_and_the_problem(tmp_path, capsys, split, write,
                                                         problem):
    bad = tmp_path / f"bad_{split}.npz"
    write(bad)
    rc, err = _fuse(capsys, tmp_path, **{split: bad})
    assert rc == 2
    assert_one_line_error(err, "fuse", str(bad), *problem)


def test_output_dir_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("x")
    rc, err = _fuse(capsys, tmp_path, out=target)
    assert rc == 2
    assert_one_line_error(err, "fuse", "taken", "is an existing file, not a folder")


def test_missing_feature_file(tmp_path, capsys):
    rc, err = _fuse(capsys, tmp_path, train=tmp_path / "nowhere.npz")
    assert rc == 2
    assert_one_line_error(err, "fuse", "nowhere.npz", "does not exist")


def test_a_rerun_replaces_the_fused_ranking_of_an_earlier_run(tmp_path, capsys):
    """Outputs know their inputs: shards of an earlier run never mix into the ranking."""
    from st_model import fused_ranking
    out = tmp_path / "out"
    fused_ranking.write_ranking(str(out), [("stale.jpg", ["x.jpg"], [1.0])] * 3, shards=3)
    split = {s: _features(tmp_path / f"{s}.npz") for s in ("train", "query", "gallery")}
    rc = main(["fuse", "--train", str(split["train"]), "--query", str(split["query"]),
               "--gallery", str(split["gallery"]), "--output-dir", str(out), "--no-plot"])
    assert rc == 0
    ranking = fused_ranking.read_fused_ranking(str(out))
    assert sorted(ranking.names) == [f"{i:04d}.jpg" for i in range(40)]


def test_expected_failure_from_a_real_process_is_one_line(tmp_path):
    """As a user runs it: exit status 2, one stderr line, no traceback."""
    bad = tmp_path / "notes.npz"
    bad.write_text("not numpy")
    env = {**os.environ, "PYTHONPATH": REPO}
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "fuse", "--train", str(bad),
                           "--query", str(bad), "--gallery", str(bad), "--output-dir",
                           str(tmp_path / "o")], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"tfusion fuse: error: {bad}: not an .npz archive (a zip of .npy arrays, as "
        "written by numpy.savez); it starts with b'not nump'"]


def test_an_unexpected_exception_keeps_its_traceback(monkeypatch):
    from pipeline.commands import fuse as fuse_command

    def broken(args):
        raise RuntimeError("a bug")
    monkeypatch.setattr(fuse_command, "run", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["fuse", "--train", "t", "--query", "q", "--gallery", "g", "--output-dir", "o"])


def test_a_bad_fusion_option_is_named(tmp_path, capsys):
    rc, err = run_cli(capsys, "fuse", "--train", "t", "--query", "q", "--gallery", "g",
                      "--output-dir", tmp_path / "o", "--alpha", "0.7", "--beta", "0.6")
    assert rc == 2
    assert_one_line_error(err, "fuse", "α + β < 1")


# ---------------------------------------------------------------- dataset folders (ingest)
def test_folder_with_only_a_train_folder(tmp_path, capsys):
    build_folder(str(tmp_path / "ds"), {k: v for k, v in MARKET.items()
                                        if k.startswith("bounding_box_train/")})
    rc, err = run_cli(capsys, "ingest", tmp_path / "ds", "--output", tmp_path / "ex")
    assert rc == 2
    assert_one_line_error(err, "ingest", str(tmp_path / "ds"), "not a re-ID dataset folder")


def test_folder_with_empty_query_and_gallery(tmp_path, capsys):
    build_folder(str(tmp_path / "ds"), {k: v for k, v in MARKET.items()
                                        if k.startswith("bounding_box_train/")})
    (tmp_path / "ds" / "query").mkdir()
    (tmp_path / "ds" / "bounding_box_test").mkdir()
    rc, err = run_cli(capsys, "ingest", tmp_path / "ds", "--output", tmp_path / "ex")
    assert rc == 2
    assert_one_line_error(err, "ingest", str(tmp_path / "ds"),
                          "no images in split(s) query, gallery")
    assert not (tmp_path / "ex").exists()  # nothing half-written


def test_manifest_with_a_missing_column(tmp_path, capsys):
    ds = tmp_path / "ds"
    build_folder(str(ds), {"imgs/a.jpg": "JPEG"})
    (ds / "manifest.csv").write_text("path,camera,split\nimgs/a.jpg,1,train\n")
    rc, err = run_cli(capsys, "ingest", ds, "--output", tmp_path / "ex")
    assert rc == 2
    assert_one_line_error(err, "ingest", "manifest.csv", "header lacks column(s) frame")


def test_non_image_file_with_an_image_extension(tmp_path, capsys):
    build_folder(str(tmp_path / "ds"), MARKET)
    fake = tmp_path / "ds" / "query" / "0009_c4s1_000500_00.jpg"
    fake.write_text("this is a text file")
    rc, err = run_cli(capsys, "ingest", tmp_path / "ds", "--output", tmp_path / "ex",
                      "--max-bad-fraction", "0", "--", "--direct_num_workers=1")
    assert rc == 2
    assert_one_line_error(err, "ingest", str(fake), "not a readable image")


def test_misspelt_config_key(tmp_path, capsys):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"seeed": 3}))
    rc, err = run_cli(capsys, "synth", "--preset", "tiny", "--out", tmp_path / "o",
                      "--config", cfg)
    assert rc == 2
    assert_one_line_error(err, "synth", "cfg.json", "unknown key 'seeed'")


# ---------------------------------------------------------------- examples, models, rankings
tf = pytest.importorskip("tensorflow")
from test_trainer import TINY, _example, write_examples, write_ranking  # noqa: E402


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    root = tmp_path_factory.mktemp("examples")
    write_examples(str(root))
    return root


@pytest.fixture(scope="module")
def model(examples, tmp_path_factory):
    from trainer import data, pretrain
    from trainer.config import PretrainConfig
    out = tmp_path_factory.mktemp("model") / "m"
    pretrain.pretrain(data.split_files(str(examples), "train"),
                      PretrainConfig.from_dict({**TINY, "steps": 2, "p": 3, "k": 2}),
                      export_dir=str(out))
    return out


def test_truncated_gzip_tfrecord_names_the_file(tmp_path, capsys):
    write_examples(str(tmp_path / "ex"), {"train": (1, 2, 3, 1)})
    shard = tmp_path / "ex" / "Split-train" / "data_tfrecord-00000-of-00001.gz"
    raw = shard.read_bytes()
    shard.write_bytes(raw[: len(raw) * 2 // 3])
    rc, err = run_cli(capsys, "pretrain", "--examples", tmp_path / "ex", "--output",
                      tmp_path / "m", "--steps", "1", "--no-eval")
    assert rc == 2
    assert_one_line_error(err, "pretrain", str(shard), "truncated or corrupt")
    assert not (tmp_path / "m").exists()


def test_a_later_record_missing_a_feature_is_named(tmp_path, capsys):
    """Every record is read: the third one lacks 'pid' (the first one is fine)."""
    png = tf.io.encode_png(np.zeros((32, 16, 3), np.uint8)).numpy()
    records = [_example(f"000{i}_c1s1_00010{i}_00.png", i, 1, 100 + i, "train", png,
                        drop=("pid",) if i == 3 else ()) for i in (1, 2, 3)]
    shard = tmp_path / "ex" / "Split-train" / "data_tfrecord-00000-of-00001.gz"
    shard.parent.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(shard), "GZIP") as w:
        for r in records:
            w.write(r)
    rc, err = run_cli(capsys, "pretrain", "--examples", tmp_path / "ex", "--output",
                      tmp_path / "m", "--steps", "1", "--no-eval")
    assert rc == 2
    assert_one_line_error(err, "pretrain", str(shard), "record 2: feature 'pid' is missing")


def test_duplicate_image_names_in_examples(tmp_path, capsys):
    write_examples(str(tmp_path / "ex"), {"train": (1, 2)})
    split = tmp_path / "ex" / "Split-train"
    (split / "data_tfrecord-00001-of-00001.gz").write_bytes(  # every image twice
        (split / "data_tfrecord-00000-of-00001.gz").read_bytes())
    rc, err = run_cli(capsys, "pretrain", "--examples", tmp_path / "ex", "--output",
                      tmp_path / "m", "--steps", "1", "--no-eval")
    assert rc == 2
    assert_one_line_error(err, "pretrain", "Split-train", "appear more than once")


def _foreign_saved_model(path):
    module = tf.Module()
    module.v = tf.Variable(1.0)
    module.f = tf.function(lambda x: x * module.v, input_signature=[tf.TensorSpec([], tf.float32)])
    tf.saved_model.save(module, str(path))
    return path


def test_a_savedmodel_that_is_not_tfusion_as_model(tmp_path, capsys, examples):
    foreign = _foreign_saved_model(tmp_path / "foreign")
    rc, err = run_cli(capsys, "embed", "--model", foreign, "--examples", examples,
                      "--output-dir", tmp_path / "f")
    assert rc == 2
    assert_one_line_error(err, "embed", str(foreign), "not a TFusion embedding model")


def test_a_savedmodel_that_is_not_tfusion_as_base_model(tmp_path, capsys, examples):
    foreign = _foreign_saved_model(tmp_path / "foreign")
    ranking = write_ranking(str(tmp_path / "r"), [("a", ["b", "c"], [2.0, 1.0])])
    rc, err = run_cli(capsys, "transfer", "--examples", examples, "--ranking", ranking,
                      "--base-model", foreign, "--output", tmp_path / "m", "--steps", "1",
                      "--no-eval")
    assert rc == 2
    assert_one_line_error(err, "transfer", str(foreign), "not a TFusion model")


def test_a_folder_that_is_no_model(tmp_path, capsys, examples):
    rc, err = run_cli(capsys, "embed", "--model", tmp_path, "--examples", examples,
                      "--output-dir", tmp_path / "f")
    assert rc == 2
    assert_one_line_error(err, "embed", str(tmp_path), "no saved_model.pb")


def test_embed_into_a_file(tmp_path, capsys, examples, model):
    (tmp_path / "f").write_text("x")
    rc, err = run_cli(capsys, "embed", "--model", model, "--examples", examples,
                      "--output-dir", tmp_path / "f")
    assert rc == 2
    assert_one_line_error(err, "embed", "is an existing file")


def test_embed_writes_row_shards_that_load_as_the_single_files(tmp_path, capsys, examples,
                                                               model):
    from core.features import load_features
    assert run_cli(capsys, "embed", "--model", model, "--examples", examples,
                   "--output-dir", tmp_path / "one")[0] == 0
    assert run_cli(capsys, "embed", "--model", model, "--examples", examples,
                   "--output-dir", tmp_path / "sharded", "--shard-rows", 2)[0] == 0
    for split in ("train", "query", "gallery"):
        one = load_features(str(tmp_path / "one" / f"{split}.npz"))
        sharded = load_features(str(tmp_path / "sharded" / split))
        assert len(os.listdir(tmp_path / "sharded" / split)) == -(-len(one) // 2)
        for k in ("features", "camera", "frame", "pid", "name"):
            assert np.array_equal(getattr(one, k), getattr(sharded, k)), (split, k)
    rc, err = run_cli(capsys, "embed", "--model", model, "--examples", examples,
                      "--output-dir", tmp_path / "bad", "--shard-rows", 0)
    assert rc == 2
    assert_one_line_error(err, "embed", "--shard-rows must be a positive number")


def test_embed_with_an_empty_split_writes_nothing(tmp_path, capsys, model):
    write_examples(str(tmp_path / "ex"), {"train": (1, 2), "query": (), "gallery": (1,)})
    rc, err = run_cli(capsys, "embed", "--model", model, "--examples", tmp_path / "ex",
                      "--output-dir", tmp_path / "f")
    assert rc == 2
    assert_one_line_error(err, "embed", "query", "no images to embed (empty split)")
    assert not (tmp_path / "f" / "train.npz").exists()


def test_a_ranking_that_names_images_absent_from_the_examples(tmp_path, capsys, examples,
                                                              model):
    ranking = write_ranking(str(tmp_path / "elsewhere"),
                            [("x.jpg", ["y.jpg", "z.jpg"], [2.0, 1.0])])
    rc, err = run_cli(capsys, "transfer", "--examples", examples, "--ranking", ranking,
                      "--base-model", model, "--output", tmp_path / "m", "--steps", "1",
                      "--no-eval")
    assert rc == 2
    assert_one_line_error(err, "transfer", "elsewhere", "no anchor has two neighbours",
                          "'anchor_not_in_examples': 1")


def test_a_ranking_that_breaks_its_schema(tmp_path, capsys, examples, model):
    from st_model import fused_ranking
    path = tmp_path / "bad" / "fused_ranking-00000-of-00001.tfrecord.gz"
    path.parent.mkdir()
    example = tf.train.Example(features=tf.train.Features(feature={
        "image_name": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"a", b"b"])),
        "neighbour_names": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"c"]))}))
    with tf.io.TFRecordWriter(str(path), "GZIP") as w:
        w.write(example.SerializeToString())
    with pytest.raises(fused_ranking.RankingError) as e:
        fused_ranking.read_fused_ranking(str(path.parent))
    assert "record 0 does not fit schemas/fused_ranking.pbtxt" in str(e.value)
    assert "'image_name' has 2 values" in str(e.value)
    assert "missing required feature 'neighbour_scores'" in str(e.value)
    rc, err = run_cli(capsys, "transfer", "--examples", examples, "--ranking", path.parent,
                      "--base-model", model, "--output", tmp_path / "m", "--steps", "1",
                      "--no-eval")
    assert rc == 2
    assert_one_line_error(err, "transfer", str(path), "does not fit")


def test_a_ranking_that_ranks_an_image_twice(tmp_path):
    from st_model import fused_ranking
    from trainer import triplets
    rows = [("a", ["b"], [1.0]), ("a", ["c"], [1.0])]
    write_ranking(str(tmp_path / "r"), rows)
    with pytest.raises(fused_ranking.RankingError, match="image 'a' is ranked more than once"):
        triplets.read_fused_ranking(str(tmp_path / "r"))  # the trainer's name: same reader



def test_embed_an_image_folder_with_a_text_file_named_jpg(tmp_path, capsys, model):
    build_folder(str(tmp_path / "ds"), MARKET)
    fake = tmp_path / "ds" / "query" / "0009_c4s1_000500_00.jpg"
    fake.write_text("this is a text file")
    rc, err = run_cli(capsys, "embed", "--model", model, "--images", tmp_path / "ds",
                      "--output-dir", tmp_path / "f")
    assert rc == 2
    assert_one_line_error(err, "embed", str(fake), "not a readable image")


@pytest.mark.parametrize("flag,value,problem", [
    ("--freeze-fraction", "2", "training option freeze_fraction = 2.0, expected in [0, 1]"),
    ("--near-ranks", "5 1", "bad rank ranges near=(5, 1)"),
    ("--steps", "0", "training option steps = 0, expected >= 1"),
])
def test_a_bad_training_flag_is_named(tmp_path, capsys, examples, model, flag, value,
                                      problem):
    ranking = write_ranking(str(tmp_path / "r"), [("a", ["b", "c"], [2.0, 1.0])])
    rc, err = run_cli(capsys, "transfer", "--examples", examples, "--ranking", ranking,
                      "--base-model", model, "--output", tmp_path / "m", "--no-eval", flag,
                      *value.split())
    assert rc == 2
    assert_one_line_error(err, "transfer", problem)
