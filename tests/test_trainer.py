"""Trainer: models, tf.data input, triples, RankNet loss, export, run_fn, CLI, bad inputs.

Everything runs on a tiny generated Examples dataset (32x16 images, 6 identities) so the
file stays well inside the CPU test budget.
"""
import os

import numpy as np
import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402

from st_model import fused_ranking  # noqa: E402
from trainer import data, export, models, ranknet, triplets  # noqa: E402
from trainer.config import PretrainConfig, RankNetConfig  # noqa: E402

H, W = 32, 16
PIDS = (1, 2, 3, 4, 5, 6)
TINY = {"height": H, "width": W, "base_width": 8, "epoch_steps": 2}


# ---------------------------------------------------------------- dataset builders
def _image(pid: int, rng: np.random.Generator) -> np.ndarray:
    """Two-colour 'person' (upper/lower body colour from the pid) plus noise."""
    palette = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200], [200, 200, 30],
                        [200, 30, 200], [30, 200, 200], [120, 120, 120]], np.float32)
    img = np.empty([H, W, 3], np.float32)
    img[: H // 2] = palette[pid % 7]
    img[H // 2:] = palette[(pid * 3 + 1) % 7]
    img += rng.normal(0, 20, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _example(name, pid, cam, frame, split, image_bytes, drop=()):
    f = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image_bytes])),
         "image_name": tf.train.Feature(bytes_list=tf.train.BytesList(value=[name.encode()])),
         "camera": tf.train.Feature(int64_list=tf.train.Int64List(value=[cam])),
         "frame": tf.train.Feature(int64_list=tf.train.Int64List(value=[frame])),
         "sequence": tf.train.Feature(int64_list=tf.train.Int64List(value=[1])),
         "pid": tf.train.Feature(int64_list=tf.train.Int64List(value=[pid])),
         "split": tf.train.Feature(bytes_list=tf.train.BytesList(value=[split.encode()]))}
    for d in drop:
        f.pop(d)
    return tf.train.Example(features=tf.train.Features(feature=f)).SerializeToString()


def write_examples(root, per_split=None, drop=(), seed=0):
    """Examples dataset in the ExampleGen layout: root/Split-<s>/data_tfrecord-*.gz."""
    rng = np.random.default_rng(seed)
    per_split = per_split or {"train": (1, 2, 3, 1), "query": (1,), "gallery": (2, 2)}
    serialized = {}
    for split, cams in per_split.items():
        out = []
        for pid in PIDS:
            for n, cam in enumerate(cams):
                frame = 100 * pid + 10 * n
                name = f"{pid:04d}_c{cam}s1_{frame:06d}_{n:02d}.png"
                png = tf.io.encode_png(_image(pid, rng)).numpy()
                out.append(_example(name, pid, cam, frame, split, png, drop))
        d = os.path.join(root, f"Split-{split}")
        os.makedirs(d, exist_ok=True)
        with tf.io.TFRecordWriter(os.path.join(d, "data_tfrecord-00000-of-00001.gz"),
                                  options="GZIP") as w:
            for s in out:
                w.write(s)
        serialized[split] = out
    return serialized


def write_ranking(path, rows):
    """Fused ranking artifact: rows of (name, [neighbour names], [scores])."""
    fused_ranking.write_ranking(path, rows)
    return path


def oracle_rows(table):
    """Rank every train image's others by true identity (same pid first)."""
    rows = []
    for a in range(len(table)):
        others = [b for b in range(len(table)) if b != a]
        score = [(1.0 if table.pid[b] == table.pid[a] else 0.0) - 0.001 * k
                 for k, b in enumerate(others)]
        order = np.argsort(score)[::-1]
        rows.append((table.name[a], [table.name[others[o]] for o in order],
                     [float(score[o]) for o in order]))
    return rows


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("examples"))
    return root, write_examples(root)


def fn_args(tmp, train_files, custom_config, steps, base_model=None):
    from tfx.v1.components import FnArgs
    return FnArgs(train_files=train_files, eval_files=[], train_steps=steps,
                  serving_model_dir=os.path.join(tmp, "serving"),
                  model_run_dir=os.path.join(tmp, "run"), base_model=base_model,
                  custom_config=custom_config)


@pytest.fixture(scope="module")
def pretrained(examples, tmp_path_factory):
    """Pretraining run_fn end to end (verification head on), as the TFX Trainer calls it."""
    from trainer.module.pretrain_module import run_fn
    root, _ = examples
    tmp = str(tmp_path_factory.mktemp("pretrain"))
    args = fn_args(tmp, [os.path.join(root, "Split-train", "*")],
                   {**TINY, "verification": True, "p": 3, "k": 2}, steps=4)
    run_fn(args)
    return args


# ---------------------------------------------------------------- models
def test_small_resnet_embedding_shapes():
    spec = models.BackboneSpec("small")
    assert spec.input_shape == (128, 64, 3)
    net = models.build_backbone(spec)
    assert net.output_shape == (None, 256)
    tiny = models.build_backbone(models.BackboneSpec("small", H, W, base_width=8))
    out = tiny(np.zeros([2, H, W, 3], np.float32))
    assert out.shape == (2, 64)


def test_resnet50_default_size_and_no_download():
    spec = models.BackboneSpec("resnet50")
    assert (spec.height, spec.width) == (256, 128)
    net = models.build_backbone(models.BackboneSpec("resnet50", 64, 32))
    assert net.output_shape == (None, 2048)
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        models.build_backbone(spec, weights="/no/such/resnet50_notop.h5")


def test_freeze_front_freezes_two_thirds():
    net = models.build_backbone(models.BackboneSpec("small", H, W, base_width=8))
    n = models.freeze_front(net, 2 / 3)
    weighted = [l for l in net.layers if l.weights]
    assert n == round(2 / 3 * len(weighted))
    assert not any(l.trainable for l in weighted[:n])
    assert all(l.trainable for l in weighted[n:])


# ---------------------------------------------------------------- data
def test_read_split_and_pk_batches(examples):
    root, ser = examples
    table = data.read_split(data.split_files(root, "train"))
    assert len(table) == len(ser["train"]) == 24
    assert set(table.pid) == set(PIDS) and table.images is not None
    labels = np.searchsorted(np.unique(table.pid), table.pid)
    rows = data.pk_batches(labels, p=3, k=2, steps=5, rng=np.random.default_rng(0))
    assert rows.shape == (5, 6)
    for row in rows:  # three identities, two images each, in that order
        lab = labels[row].reshape(3, 2)
        assert np.all(lab[:, 0] == lab[:, 1]) and len(set(lab[:, 0])) == 3


def test_augmentation_keeps_shape_and_range():
    img = tf.constant(np.full([H, W, 3], 100.0, np.float32))
    out = data.augment(img, data.Augmentation(erasing=1.0))
    assert out.shape == (H, W, 3)
    assert float(tf.reduce_min(out)) >= 0 and float(tf.reduce_max(out)) <= 255
    assert not np.allclose(out.numpy(), 100.0)  # erasing with probability 1 changed pixels
    same = data.augment(img, data.Augmentation.off())
    np.testing.assert_array_equal(same.numpy(), img.numpy())


# ---------------------------------------------------------------- triples and RankNet
def _ranking(n_anchor=3, n_nb=60):
    names = [f"img{k}" for k in range(n_anchor + n_nb)]
    rows = [(names[a], [n for n in names if n != names[a]][:n_nb],
             list(np.linspace(10.0, 1.0, n_nb))) for a in range(n_anchor)]
    return names, triplets.FusedRanking("mem://", [r[0] for r in rows],
                                        [r[1] for r in rows],
                                        [np.asarray(r[2]) for r in rows])


def test_triplets_respect_rank_windows_and_target_order():
    names, ranking = _ranking()
    index_of = {n: k for k, n in enumerate(names)}
    t = triplets.sample_triplets(ranking, index_of, 400, np.random.default_rng(1))
    rank = {}
    for r, nb in zip(ranking.names, ranking.neighbours):
        rank[index_of[r]] = {index_of[n]: k + 1 for k, n in enumerate(nb)}
    r1 = np.array([rank[a][f] for a, f in zip(t.anchor, t.first)])
    r2 = np.array([rank[a][s] for a, s in zip(t.anchor, t.second)])
    better, worse = np.minimum(r1, r2), np.maximum(r1, r2)
    assert better.min() >= 1 and better.max() <= 25
    assert worse.min() >= 25 and worse.max() <= 50 and np.all(worse > better)
    # target > 0.5 exactly when 'first' is the better-ranked image; order is randomised
    np.testing.assert_array_equal(t.target > 0.5, r1 < r2)
    assert 0.3 < np.mean(r1 < r2) < 0.7


def test_same_camera_pairs_draw_j_from_the_camera_of_i():
    names, ranking = _ranking()
    index_of = {n: k for k, n in enumerate(names)}
    camera = np.arange(len(names)) % 3
    t = triplets.sample_triplets(ranking, index_of, 200, np.random.default_rng(2),
                                 camera=camera)
    np.testing.assert_array_equal(camera[t.first], camera[t.second])
    assert t.skipped["no_same_camera_j"] == 0
    free = triplets.sample_triplets(ranking, index_of, 200, np.random.default_rng(2))
    assert np.any(camera[free.first] != camera[free.second])


def test_reciprocal_k_draws_i_only_among_mutual_neighbours():
    names = [f"img{k}" for k in range(40)]
    rng = np.random.default_rng(0)
    lists = {n: [m for m in rng.permutation(names).tolist() if m != n] for n in names}
    lists["img0"] = ["img1", "img2"] + [m for m in lists["img0"] if m not in
                                         ("img0", "img1", "img2")]
    lists["img1"] = ["img0"] + [m for m in lists["img1"] if m not in ("img0", "img1")]
    lists["img2"] = [m for m in lists["img2"] if m not in ("img0", "img2")] + ["img0"]
    ranking = triplets.FusedRanking("mem://", names, [lists[n] for n in names],
                                    [np.linspace(9.0, 1.0, len(lists[n])) for n in names])
    index_of = {n: k for k, n in enumerate(names)}
    t = triplets.sample_triplets(ranking, index_of, 300, np.random.default_rng(1),
                                 near=(1, 5), far=(10, 38), reciprocal_k=2)
    top2 = {index_of[n]: {index_of[m] for m in lists[n][:2]} for n in names}
    better = np.where(t.target > 0.5, t.first, t.second)
    assert all(a in top2[i] for a, i in zip(t.anchor, better))
    assert set(better[t.anchor == 0]) == {1}  # img2 ranks img0 last: not mutual
    assert t.skipped["no_reciprocal_neighbour"] == len(names) - len(set(t.anchor))
    with pytest.raises(ValueError, match="reciprocal_k"):
        triplets.sample_triplets(ranking, index_of, 4, rng, reciprocal_k=-1)


def test_target_probability_mapping():
    p = triplets.target_probability(np.array([2.0, 1.0, 1.0]), np.array([1.0, 1.0, 2.0]), 1.0)
    np.testing.assert_allclose(p, [1 / (1 + np.exp(-1)), 0.5, 1 / (1 + np.exp(1))], rtol=1e-6)
    assert triplets.auto_temperature(np.array([np.log(9.0)])) == pytest.approx(1.0)


def test_triplets_count_missing_names():
    names, ranking = _ranking()
    index_of = {n: k for k, n in enumerate(names) if n != "img0" and n != "img10"}
    t = triplets.sample_triplets(ranking, index_of, 10, np.random.default_rng(0))
    assert t.skipped["anchor_not_in_examples"] == 1
    # img0 and img10 are each missing from the two remaining anchors' lists
    assert t.skipped["neighbour_not_in_examples"] == 4
    used = set(t.first) | set(t.second) | set(t.anchor)
    assert 0 not in used and 10 not in used and len(t) == 10


@pytest.mark.parametrize("score", ranknet.SCORES)
@pytest.mark.parametrize("target", [1.0, 0.0])
def test_ranknet_loss_pushes_scores_the_way_the_target_says(target, score):
    tf.random.set_seed(0)
    backbone = models.build_backbone(models.BackboneSpec("small", H, W, base_width=8))
    head = models.build_head_model(int(backbone.output_shape[-1]))
    model = ranknet.RankNetModel(backbone, ranknet.pair_scorer(
        RankNetConfig(score=score), head))
    rng = np.random.default_rng(0)
    triple = tf.constant(rng.uniform(0, 255, [1, 3, H, W, 3]).astype(np.float32))
    opt = tf.keras.optimizers.Adam(1e-3)

    def margin():
        s_ai, s_aj = model.scores(triple)
        return float(s_ai[0] - s_aj[0])
    before = margin()
    for _ in range(15):
        with tf.GradientTape() as tape:
            s_ai, s_aj = model.scores(triple, training=False)
            loss = ranknet.ranknet_loss([target], s_ai, s_aj)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients([(g, v) for g, v in zip(grads, model.trainable_variables)
                             if g is not None])
    after = margin()
    if target == 1.0:
        assert after > before and after > 0.05
    else:
        assert after < before and after < -0.05
    p = ranknet.ranknet_probability(*model.scores(triple))
    assert (float(p[0]) > 0.5) == (target == 1.0)


# ---------------------------------------------------------------- export
def test_export_round_trip_and_example_signature(examples, tmp_path):
    root, ser = examples
    spec = models.BackboneSpec("small", H, W, base_width=8)
    backbone = models.build_backbone(spec)
    out = export.export_model(str(tmp_path / "m"), spec, backbone)
    emb = export.load_embedder(out)
    raw = ser["query"][:4]
    images = np.stack([data.decode_image(tf.train.Example.FromString(s).features
                                         .feature["image"].bytes_list.value[0], H, W).numpy()
                       for s in raw])
    in_memory = models.l2_normalize(backbone(images, training=False)).numpy()
    from_examples = emb.embed_examples(raw)
    np.testing.assert_allclose(from_examples, in_memory, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(from_examples, axis=1), 1.0, atol=1e-5)
    encoded = [tf.train.Example.FromString(s).features.feature["image"].bytes_list.value[0]
               for s in raw]
    np.testing.assert_array_equal(emb.embed_image_bytes(encoded), from_examples)
    np.testing.assert_array_equal(export.load_embedder(out).embed_images(images),
                                  emb.embed_images(images))
    # the Keras rebuild gives the same network
    _, rebuilt, head = export.load_base_model(out)
    assert head is None
    np.testing.assert_allclose(rebuilt(images, training=False).numpy(),
                               backbone(images, training=False).numpy(), atol=1e-6)


# ---------------------------------------------------------------- run_fn end to end
def test_pretrain_run_fn_exports_model_and_logs(pretrained):
    serving, run = pretrained.serving_model_dir, pretrained.model_run_dir
    assert os.path.isfile(os.path.join(serving, "saved_model.pb"))
    info = models.read_spec(os.path.join(serving, export.KERAS_DIR))
    assert info["has_verification_head"] and info["spec"]["height"] == H
    events = [f for _, _, fs in os.walk(run) for f in fs if f.startswith("events.out")]
    assert events, "no TensorBoard event files under model_run_dir"
    emb = export.load_embedder(serving)
    assert (emb.height, emb.width) == (H, W)


def test_ranknet_run_fn_with_oracle_ranking(examples, pretrained, tmp_path):
    from trainer.module.ranknet_module import run_fn
    root, _ = examples
    table = data.read_split(data.split_files(root, "train"), images=False)
    ranking = write_ranking(str(tmp_path / "ranking"), oracle_rows(table))
    args = fn_args(str(tmp_path), [os.path.join(root, "Split-train", "*")],
                   {**{k: v for k, v in TINY.items() if k not in ("height", "width",
                                                                  "base_width")},
                    "fused_ranking_uri": ranking, "batch_triplets": 2,
                    "near_ranks": [1, 3], "far_ranks": [4, 20]},
                   steps=2, base_model=pretrained.serving_model_dir)
    run_fn(args)
    new = export.load_embedder(args.serving_model_dir)
    base = export.load_embedder(pretrained.serving_model_dir)
    images = np.random.default_rng(0).uniform(0, 255, [2, H, W, 3]).astype(np.float32)
    assert not np.allclose(new.embed_images(images), base.embed_images(images))
    info = models.read_spec(os.path.join(args.serving_model_dir, export.KERAS_DIR))
    assert info["trained_by"] == "ranknet" and info["has_verification_head"]


def test_embed_writes_interchange_npz(examples, pretrained, tmp_path):
    from pipeline.cli import main
    root, ser = examples
    out = tmp_path / "feats"
    assert main(["embed", "--model", pretrained.serving_model_dir, "--examples", root,
                 "--output-dir", str(out)]) == 0
    for split in ("train", "query", "gallery"):
        z = np.load(out / f"{split}.npz")
        n = len(ser[split])
        assert z["features"].shape == (n, 64) and z["features"].dtype == np.float32
        for k in ("camera", "frame", "sequence", "pid"):
            assert z[k].shape == (n,) and z[k].dtype == np.int64
        assert z["name"][0].endswith(".png")
    q = np.load(out / "query.npz")
    direct = export.load_embedder(pretrained.serving_model_dir).embed_examples(ser["query"])
    np.testing.assert_allclose(q["features"], direct, atol=1e-5)


# ---------------------------------------------------------------- bad inputs
def test_examples_missing_a_field_name_the_file(tmp_path):
    write_examples(str(tmp_path), {"train": (1, 2)}, drop=("pid",))
    with pytest.raises(data.ExamplesError, match=r"Split-train.*data_tfrecord.*'pid' is missing"):
        data.read_split(data.split_files(str(tmp_path), "train"))
    with pytest.raises(data.ExamplesError, match=r"no files match.*Split-query"):
        data.split_files(str(tmp_path), "query")


def test_empty_triplet_artifact_is_an_error_naming_it(examples, pretrained, tmp_path):
    root, _ = examples
    empty = write_ranking(str(tmp_path / "empty_ranking"), [])
    with pytest.raises(triplets.RankingError, match=r"empty_ranking is empty"):
        triplets.read_fused_ranking(empty)
    with pytest.raises(triplets.RankingError, match=r"no files match"):
        triplets.read_fused_ranking(str(tmp_path / "nothing"))
    foreign = write_ranking(str(tmp_path / "foreign"), [("x.jpg", ["y.jpg", "z.jpg"], [2.0, 1.0])])
    table = data.read_split(data.split_files(root, "train"), images=False)
    with pytest.raises(triplets.RankingError, match=r"foreign: no anchor"):
        triplets.sample_triplets(triplets.read_fused_ranking(foreign), table.index_of(), 4,
                                 np.random.default_rng(0))


def test_base_model_of_another_input_size_is_refused(examples, pretrained, tmp_path):
    root, _ = examples
    ranking = write_ranking(str(tmp_path / "r"), [("a", ["b", "c"], [2.0, 1.0])])
    config = RankNetConfig.from_dict({"height": 64, "width": 32, "steps": 1})
    with pytest.raises(ValueError, match=r"base model .*serving takes 32x16 images but 64x32"):
        ranknet.transfer(data.split_files(root, "train"), ranking,
                         pretrained.serving_model_dir, config)


def test_unknown_custom_config_key_is_an_error():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['stepz'\]"):
        PretrainConfig.from_dict({"stepz": 3})
    assert RankNetConfig.from_dict({"fused_ranking_uri": "x", "steps": "7"}).steps == 7


def test_embed_image_folder_matches_the_bytes_signature(pretrained, tmp_path):
    from PIL import Image
    from pipeline.cli import main
    rng = np.random.default_rng(3)
    root = tmp_path / "market"
    for folder, cam in (("bounding_box_train", 1), ("query", 2), ("bounding_box_test", 3)):
        (root / folder).mkdir(parents=True)
        for pid in (1, 2):
            Image.fromarray(_image(pid, rng)).save(root / folder / f"{pid:04d}_c{cam}s1_000{pid}00_00.jpg")
    out = tmp_path / "feats"
    assert main(["embed", "--model", pretrained.serving_model_dir, "--images", str(root),
                 "--output-dir", str(out)]) == 0
    z = np.load(out / "query.npz")
    assert list(z["pid"]) == [1, 2] and list(z["camera"]) == [2, 2]
    encoded = [(root / "query" / n).read_bytes() for n in z["name"]]
    direct = export.load_embedder(pretrained.serving_model_dir).embed_image_bytes(encoded)
    np.testing.assert_allclose(z["features"], direct, atol=1e-5)


def test_transfer_cli_reports_an_empty_ranking(examples, pretrained, tmp_path, capsys):
    from pipeline.cli import main
    root, _ = examples
    empty = write_ranking(str(tmp_path / "fused"), [])
    rc = main(["transfer", "--examples", root, "--ranking", empty, "--base-model",
               pretrained.serving_model_dir, "--output", str(tmp_path / "m"), "--steps", "1"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "tfusion transfer: error: fused ranking artifact" in err and "fused is empty" in err


def test_pretrain_cli_reports_examples_without_images(tmp_path, capsys):
    from pipeline.cli import main
    write_examples(str(tmp_path / "ex"), {"train": (1, 2)}, drop=("image",))
    rc = main(["pretrain", "--examples", str(tmp_path / "ex"), "--output",
               str(tmp_path / "m"), "--steps", "1"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "tfusion pretrain: error: examples file" in err and "'image' is missing" in err
    assert not (tmp_path / "m").exists()


def test_held_out_anchors_are_the_same_every_round_and_never_trained_on():
    names, ranking = _ranking(n_anchor=400, n_nb=10)
    held = triplets.held_out_anchors(ranking.names, 0.2, seed=0)
    assert 0.12 < len(held) / len(ranking) < 0.28
    # another round's ranking (other order) holds out the same names; another seed not
    assert triplets.held_out_anchors(ranking.names[::-1], 0.2, seed=0) == held
    assert triplets.held_out_anchors(ranking.names, 0.2, seed=1) != held
    assert not triplets.held_out_anchors(ranking.names, 0.0, seed=0)
    index_of = {n: k for k, n in enumerate(names)}
    config = RankNetConfig(steps=20, epoch_steps=20, reciprocal_k=0)
    table = type("T", (), {"index_of": lambda self: index_of, "camera": None})()
    trained = triplets.sample_for_config(ranking, table, config, "t", exclude=held)
    assert not {names[a] for a in trained.anchor} & held
    held_trip = triplets.sample_held_out(ranking, held, table, config, "t")
    assert {names[a] for a in held_trip.anchor} <= held and len(held_trip) == 64


def test_held_out_anchors_keep_their_reciprocal_neighbours():
    """k-reciprocity is judged on the whole ranking: a held-out anchor whose mutual
    neighbour is a trained anchor still yields triples."""
    names = [f"img{k}" for k in range(40)]
    # every image's top neighbour is its partner (2k <-> 2k+1), then the rest
    rows = [(names[a], [names[a ^ 1]] + [n for n in names if n not in (names[a], names[a ^ 1])],
             np.linspace(10.0, 1.0, 39)) for a in range(40)]
    ranking = triplets.FusedRanking("mem://", *map(list, zip(*rows)))
    held = {"img0", "img2", "img4"}
    index_of = {n: k for k, n in enumerate(names)}
    table = type("T", (), {"index_of": lambda self: index_of, "camera": None})()
    config = RankNetConfig(steps=20, epoch_steps=20, near_ranks=(1, 1), reciprocal_k=1)
    trip = triplets.sample_held_out(ranking, held, table, config, "t")
    assert trip is not None and {names[i] for i in trip.first} | {
        names[j] for j in trip.second} >= {"img1", "img3", "img5"}


def test_transfer_reports_order_accuracy_on_held_out_anchors(examples, pretrained, tmp_path):
    root, _ = examples
    table = data.read_split(data.split_files(root, "train"), images=False)
    ranking = write_ranking(str(tmp_path / "ranking"), oracle_rows(table))
    config = RankNetConfig.from_dict({**{k: v for k, v in TINY.items() if k not in (
        "height", "width", "base_width")}, "steps": 2, "batch_triplets": 2,
        "holdout_fraction": 0.5, "reciprocal_k": 0})
    result = ranknet.transfer(data.split_files(root, "train"), ranking,
                              pretrained.serving_model_dir, config,
                              export_dir=str(tmp_path / "m"))
    assert 0.0 <= result["held_out_order_accuracy"] <= 1.0
    assert result["held_out_triplets"] >= 64
    info = models.read_spec(os.path.join(str(tmp_path / "m"), export.KERAS_DIR))
    assert info["held_out_order_accuracy"] == result["held_out_order_accuracy"]


def test_confident_fraction_draws_i_only_among_the_highest_fused_scores():
    names = [f"img{k}" for k in range(200)]
    # anchor k: every neighbour's score grows with k, so anchors 150.. hold the top quarter
    rows = [(names[a], [n for n in names if n != names[a]][:60],
             np.linspace(1.0, 0.5, 60) * (a + 1)) for a in range(200)]
    ranking = triplets.FusedRanking("mem://", *map(list, zip(*rows)))
    index_of = {n: k for k, n in enumerate(names)}
    t = triplets.sample_triplets(ranking, index_of, 400, np.random.default_rng(0),
                                 near=(1, 1), far=(25, 50), confident_fraction=0.25)
    assert set(t.anchor) <= set(range(149, 200)) and len(set(t.anchor)) > 40
    assert t.skipped["below_confidence"] >= 145
    everyone = triplets.sample_triplets(ranking, index_of, 400, np.random.default_rng(0),
                                        near=(1, 1), far=(25, 50))
    assert min(everyone.anchor) < 100


def test_a_larger_target_gets_triples_per_anchor_and_the_steps_to_train_on_them():
    names, ranking = _ranking(n_anchor=300, n_nb=40)
    index_of = {n: k for k, n in enumerate(names)}
    table = type("T", (), {"index_of": lambda self: index_of, "camera": None})()
    small = RankNetConfig(steps=100, epoch_steps=100, reciprocal_k=0,
                          triples_per_anchor=2.0)          # 1,600 triples >= 2 x 300
    assert len(triplets.sample_for_config(ranking, table, small, "t")) == 1600
    large = RankNetConfig(steps=10, epoch_steps=10, reciprocal_k=0,
                          triples_per_anchor=2.0)          # 160 < 2 x 300 anchors
    trip = triplets.sample_for_config(ranking, table, large, "t")
    assert len(trip) == 600 and len(set(trip.anchor)) == 300
    off = RankNetConfig(steps=10, epoch_steps=10, reciprocal_k=0, triples_per_anchor=0)
    assert len(triplets.sample_for_config(ranking, table, off, "t")) == 160
    # an explicit count (the held-out triples) is kept as asked
    assert len(triplets.sample_for_config(ranking, table, large, "t", count=64)) == 64
    # the run then trains on every triple: steps raised to cover them, never lowered
    covered = triplets.steps_to_cover(large, len(trip))
    assert covered.steps == 38 and triplets.run_triplets(covered) >= 600
    assert triplets.steps_to_cover(small, 600) is small
    with pytest.raises(ValueError, match="triples_per_anchor"):
        RankNetConfig(triples_per_anchor=-1)
