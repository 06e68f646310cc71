"""core/tfrecord.py: tf.Examples and TFRecord framing written without TensorFlow read
back identically with TensorFlow's own parsers, and the fused ranking written with
them reads back through tf.data."""
import numpy as np
import pytest

from core import tfrecord

tf = pytest.importorskip("tensorflow")


def _tf_example(name, neighbours, scores, ids):
    f = tf.train.Feature
    return tf.train.Example(features=tf.train.Features(feature={
        "image_name": f(bytes_list=tf.train.BytesList(value=[name])),
        "neighbour_names": f(bytes_list=tf.train.BytesList(value=neighbours)),
        "neighbour_scores": f(float_list=tf.train.FloatList(value=scores)),
        "ids": f(int64_list=tf.train.Int64List(value=ids)),
    }))


CASES = [
    (b"0001_c1s1_000151_00.jpg", [b"a.jpg", b"b" * 200, "é.jpg".encode()],
     [3.25, -1e-7, 1 / 3], [0, 1, -5, 2 ** 40]),
    (b"", [], [], []),                       # empty lists
    (b"x" * 300, [b"n%d" % i for i in range(600)],   # lengths over one varint byte
     list(np.linspace(-50, 50, 600)), list(range(-3, 200))),
]


@pytest.mark.parametrize("name,neighbours,scores,ids", CASES)
def test_hand_encoded_example_parses_as_tensorflow_builds_it(name, neighbours, scores, ids):
    raw = tfrecord.example({
        "image_name": tfrecord.bytes_feature([name]),
        "neighbour_names": tfrecord.bytes_feature(neighbours),
        "neighbour_scores": tfrecord.float_feature(scores),
        "ids": tfrecord.int64_feature(ids),
    })
    assert tf.train.Example.FromString(raw) == _tf_example(name, neighbours, scores, ids)


def test_varint_matches_protobuf():
    from google.protobuf.internal import encoder
    for n in (0, 1, 127, 128, 300, 16383, 16384, 2 ** 35, 2 ** 64 - 1):
        assert tfrecord.varint(n) == encoder._VarintBytes(n)


def test_framed_records_read_back_with_tf_data(tmp_path):
    import gzip
    path = str(tmp_path / "r.tfrecord.gz")
    payloads = [b"", b"abc", bytes(range(256)) * 40]
    with gzip.open(path, "wb") as f:
        for p in payloads:
            f.write(tfrecord.frame(p))
    got = [r.numpy() for r in tf.data.TFRecordDataset(path, compression_type="GZIP")]
    assert got == payloads


def test_fused_ranking_file_parses_with_tf_io(tmp_path):
    from st_model import fused_ranking
    rows = [("a.jpg", ["b.jpg", "c.jpg"], [2.5, 1.0]), ("b.jpg", [], []),
            ("c.jpg", ["a.jpg"], [-0.125])]
    (path,) = fused_ranking.write_ranking(str(tmp_path), rows)
    spec = {"image_name": tf.io.FixedLenFeature([], tf.string),
            "neighbour_names": tf.io.VarLenFeature(tf.string),
            "neighbour_scores": tf.io.VarLenFeature(tf.float32)}
    ds = tf.data.TFRecordDataset(path, compression_type="GZIP")
    for raw, (name, nb, sc) in zip(ds, rows, strict=True):
        parsed = tf.io.parse_single_example(raw, spec)
        assert parsed["image_name"].numpy().decode() == name
        assert [v.decode() for v in parsed["neighbour_names"].values.numpy()] == nb
        assert parsed["neighbour_scores"].values.numpy().tolist() == sc
    assert fused_ranking.read_ranking(str(tmp_path)) == {n: (nb, sc) for n, nb, sc in rows}


def test_pre_encoded_ranking_examples_equal_serialize_record():
    from st_model import fused_ranking
    names = np.array(["a.jpg", "bb.jpg", "c" * 150 + ".jpg", "d.jpg"])
    rows = np.array([0, 2, 3])
    idx = np.array([[1, 2, -1], [0, 1, 3], [-1, -1, -1]])
    sc = np.array([[2.0, 1.5, -np.inf], [0.5, 0.25, -3.0], [-np.inf] * 3])
    fields = fused_ranking.name_fields(names)
    got = list(fused_ranking.ranking_examples(fields, rows, idx, sc))
    want = [fused_ranking.serialize_record(r)
            for r in fused_ranking.ranking_records(names, rows, idx, sc)]
    assert got == want and len(got) == 3
