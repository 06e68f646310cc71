"""Features, the fused ranking, the run report and the run's JSON files on a non-local
Beam filesystem (`tfusiontest://`, tests/scheme_filesystem.py): every path goes
through FileSystems, none through os / open() (the `store` fixture checks that)."""
import base64

import numpy as np

from core.features import load_features, load_st_points
from core.files import write_file
from pipeline.component_io import split_path
from pipeline.report_data import RoundResult
from pipeline.report_html import write_run_report
from pipeline.report_pictures import PNG_SIGNATURE
from pipeline.run_summary import read_json
from st_model import fused_ranking
from test_embedder_shards import assert_same_set, embedded_batches, run_shards
from trainer.embed import concat_sorted, write_features

ROWS = [("a.jpg", ["b.jpg", "c.jpg"], [2.0, 1.0]), ("b.jpg", ["a.jpg"], [0.5]),
        ("c.jpg", [], [])]


def test_feature_shards_written_and_read_on_another_filesystem(store, tmp_path):
    run_shards(embedded_batches(), "tfusiontest://feats/train", 6)
    assert sorted(p.name for p in (store / "feats" / "train").iterdir()) == [
        f"features-0000{i}-of-00004.npz" for i in range(4)]
    path = split_path("tfusiontest://feats", "train")
    assert path == "tfusiontest://feats/train"
    whole = load_features(write_features(str(tmp_path / "whole.npz"),
                                         concat_sorted(embedded_batches(), "train")))
    assert_same_set(load_features(path), whole)
    np.testing.assert_array_equal(load_st_points(path).frame, whole.frame)
    assert split_path("tfusiontest://feats", "query") == "tfusiontest://feats/query.npz"


def test_fused_ranking_read_from_another_filesystem(store):
    fused_ranking.write_ranking("tfusiontest://fr/Split-train", ROWS, shards=2)
    files = fused_ranking.ranking_files("tfusiontest://fr")
    assert files == [f"tfusiontest://fr/Split-train/fused_ranking-0000{i}-of-00002"
                     f".tfrecord.gz" for i in range(2)]
    assert fused_ranking.ranking_files(files[1]) == [files[1]]
    got = fused_ranking.read_ranking("tfusiontest://fr")
    assert got == {n: (nb, sc) for n, nb, sc in ROWS}


def test_run_report_and_json_written_and_read_on_another_filesystem(store):
    png = PNG_SIGNATURE + b"a tiny stand-in for st_model.png"
    plot = write_file("tfusiontest://run/fusion/st_model.png", png)
    write_file("tfusiontest://run/eval/metrics.json", b'{"vision": {"rank1": 50.0}}')
    assert read_json("tfusiontest://run/eval/metrics.json") == {"vision": {"rank1": 50.0}}
    path = write_run_report("tfusiontest://run/report.html",
                            [RoundResult("round 0", {"rank1": 50.0}, {"rank1": 60.0},
                                         st_plot=plot)],
                            links={"ST model plot": plot})
    assert path == "tfusiontest://run/report.html"
    text = (store / "run" / "report.html").read_text(encoding="utf-8")
    assert base64.b64encode(png).decode("ascii") in text
    assert "<code>tfusiontest://run/fusion/st_model.png</code>" in text
