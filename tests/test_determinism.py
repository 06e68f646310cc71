"""Reproducible runs: the same seed on the same machine gives the same embeddings,
to the last bit, after source pretraining and after RankNet transfer (CPU, op
determinism on by default when no GPU is visible)."""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from test_trainer import TINY, write_examples, write_ranking  # noqa: E402
from trainer import data, embed, pretrain, ranknet  # noqa: E402
from trainer.config import PretrainConfig, RankNetConfig  # noqa: E402


def _pretrain_then_transfer(examples, out):
    """Pretrain 3 steps, rank the train split by the pretrained embedding, RankNet 3
    steps; returns both models' train embeddings."""
    files = data.split_files(examples, "train")
    pretrain.pretrain(files, PretrainConfig.from_dict(
        {**TINY, "steps": 3, "p": 3, "k": 2, "verification": True, "seed": 5}),
        export_dir=f"{out}/m0")
    split = embed.embed_split(f"{out}/m0", examples, "train")
    x, names = split["features"], split["name"]
    rows = []
    for a in range(len(names)):
        order = [o for o in np.argsort(-(x @ x[a]), kind="stable") if o != a]
        rows.append((names[a], [names[o] for o in order], [float(x[a] @ x[o]) for o in order]))
    write_ranking(f"{out}/ranking", rows)
    ranknet.transfer(files, f"{out}/ranking", f"{out}/m0", RankNetConfig.from_dict(
        {**TINY, "steps": 3, "batch_triplets": 4, "seed": 5}), export_dir=f"{out}/m1")
    return x, embed.embed_split(f"{out}/m1", examples, "train")["features"]


def test_same_seed_same_embeddings(tmp_path):
    examples = str(tmp_path / "examples")
    write_examples(examples)
    first = _pretrain_then_transfer(examples, str(tmp_path / "a"))
    second = _pretrain_then_transfer(examples, str(tmp_path / "b"))
    np.testing.assert_array_equal(first[0], second[0])  # pretrained
    np.testing.assert_array_equal(first[1], second[1])  # after RankNet
    assert not np.array_equal(first[0], first[1])  # RankNet did train


def test_augmentation_is_keyed_by_seed_and_draw():
    """Stateless draws: the same (seed, draw) gives the same image whatever the thread
    order; another draw gives another one."""
    png = tf.io.encode_png(np.random.default_rng(0).integers(0, 255, (32, 16, 3),
                                                             dtype=np.uint8)).numpy()
    load = data.image_loader(np.array([png], object), 32, 16, data.Augmentation(erasing=1.0),
                             seed=3)
    a, b, c = (load(tf.constant(0, tf.int64), tf.constant(d, tf.int64)).numpy()
               for d in (7, 7, 8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
