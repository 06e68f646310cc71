"""`tfusion index` and `tfusion search` end to end on a small image folder: the ranked
gallery equals st_model's evaluation ranking, several queries, JSON, picture; bad
input is one line, exit 2, nothing written."""
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

import serving_case
from st_model.config import FusionRule, STConfig

pytest.importorskip("tfx.v1")


def _image(path, pid, shot):
    rng = np.random.default_rng(pid)
    base = rng.integers(0, 255, (serving_case.H, serving_case.W, 3))
    noise = np.random.default_rng(10_000 + shot).integers(-12, 12, base.shape)
    Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(path, format="PNG")


def write_dataset(root):
    """Market layout; gallery: 40 identities walking cameras 1 -> 2 -> 3; queries:
    the first camera-1 shot of 8 of them (left out of the gallery)."""
    g = serving_case.simulated_split(40, 5, pid0=700)
    t = serving_case.simulated_split(6, 6, pid0=900)
    folders = {"bounding_box_train": [], "query": [], "bounding_box_test": []}
    for i, name in enumerate(t.names):
        folders["bounding_box_train"].append((name.replace(".jpg", ".png"), i))
    queries = set(range(0, 6 * 8, 6))
    for i, name in enumerate(g.names):
        folders["query" if i in queries else "bounding_box_test"].append(
            (name.replace(".jpg", ".png"), i))
    pid_of = {n.replace(".jpg", ".png"): int(p) for n, p in
              list(zip(g.names, g.pid)) + list(zip(t.names, t.pid))}
    for folder, items in folders.items():
        os.makedirs(os.path.join(root, folder))
        for name, shot in items:
            _image(os.path.join(root, folder, name), pid_of[name], shot)
    return root


def tfusion(*argv):
    from pipeline.cli import main
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    bundle = serving_case.bundle(str(root / "b"))
    data = write_dataset(str(root / "data"))
    index = str(root / "index")
    assert tfusion("index", "--bundle", bundle, "--dataset", data, "--output", index) == 0
    return {"root": root, "bundle": bundle, "data": data, "index": index}


def reference_top10(setup):
    """Top-10 per query by st_model's evaluation scoring and protocol
    (metrics.ranked_gallery, as the run report ranks)."""
    from core.features import make_feature_set
    from core.names import parse_name
    from st_model import metrics
    from st_model.evaluation import score_function
    from st_model.scoring import STTables
    from st_model.st_artifact import load_st_model
    from trainer.export import Embedder
    emb = Embedder(setup["bundle"])

    def split(folder):
        names = sorted(os.listdir(os.path.join(setup["data"], folder)))
        data = [open(os.path.join(setup["data"], folder, n), "rb").read() for n in names]
        pts = [parse_name(n) for n in names]
        return make_feature_set(emb.embed_image_bytes(data), [p.camera for p in pts],
                                [p.frame for p in pts], [p.sequence for p in pts],
                                [p.pid for p in pts], np.array(names))
    q, g = split("query"), split("bounding_box_test")
    tables = STTables.from_model(load_st_model(os.path.join(setup["bundle"], "st_model")))
    fn = score_function(q, g, tables, FusionRule())
    out = {}
    for qi in range(len(q)):
        idx, _, _ = metrics.ranked_gallery(fn, qi, q.pid, q.camera, g.pid, g.camera, 10)
        out[str(q.names[qi])] = [str(g.names[i]) for i in idx]
    return out


def test_index_holds_the_gallery_sorted(setup):
    from st_model.gallery_index import load_index
    index = load_index(setup["index"])
    n = len(os.listdir(os.path.join(setup["data"], "bounding_box_test")))
    assert index.header["rows"] == n and not os.path.exists(setup["index"] + ".partial")
    assert (np.diff(index.node * 10 ** 7 + index.rows.frame) >= 0).all()


def test_search_several_queries_json_equals_evaluation_ranking(setup, capsys):
    rc = tfusion("search", "--index", setup["index"], "--bundle", setup["bundle"],
                 "--query", os.path.join(setup["data"], "query"), "--json", "--protocol")
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    ref = reference_top10(setup)
    assert len(report) == len(ref) == 8
    for q in report:
        got = [h["name"] for h in q["hits"]]
        assert got == ref[os.path.basename(q["query"])]
        assert [h["rank"] for h in q["hits"]] == list(range(1, 11))
        fused = [h["fused"] for h in q["hits"]]
        assert fused == sorted(fused, reverse=True)
    # the true matches are found: the query's identity in other cameras ranks first
    assert sum(q["hits"][0]["name"][:4] == os.path.basename(q["query"])[:4]
               for q in report) >= 6


def test_search_one_image_prints_table_and_picture(setup, capsys, tmp_path):
    qdir = os.path.join(setup["data"], "query")
    image = os.path.join(qdir, sorted(os.listdir(qdir))[0])
    out = tmp_path / "ranked.png"
    rc = tfusion("search", "--index", setup["index"], "--bundle", setup["bundle"],
                 "--query", image, "--camera", 1, "--frame", 5000, "--sequence", 1,
                 "--top-k", 5, "--picture", out)
    assert rc == 0
    text = capsys.readouterr().out
    assert "camera 1  sequence 1  frame 5000" in text
    rows = [l for l in text.splitlines() if l[:4].strip().isdigit()]
    assert [int(l.split()[0]) for l in rows] == [1, 2, 3, 4, 5]
    with Image.open(out) as img:   # query + 5 thumbnails wide, one query high
        assert img.width >= 6 * serving_case.W and img.height >= serving_case.H * 2


def test_unseen_camera_is_neutral_with_a_warning(setup, capsys):
    qdir = os.path.join(setup["data"], "query")
    image = os.path.join(qdir, sorted(os.listdir(qdir))[0])
    rc = tfusion("search", "--index", setup["index"], "--bundle", setup["bundle"],
                 "--query", image, "--camera", 9, "--frame", 5000, "--json")
    captured = capsys.readouterr()
    assert rc == 0 and "WARNING" in captured.err and "[9]" in captured.err
    hits = json.loads(captured.out)[0]["hits"]
    st = {round(h["st_factor"], 9) for h in hits}
    assert len(st) == 1          # one neutral value: vision alone orders the gallery
    vision = [h["vision"] for h in hits]
    assert vision == sorted(vision, reverse=True)


def _error(capsys, *argv):
    rc = tfusion(*argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    return err[0]


def test_bad_inputs_are_one_line_exit_2_nothing_written(setup, capsys, tmp_path):
    idx, b = setup["index"], setup["bundle"]
    qdir = os.path.join(setup["data"], "query")
    image = os.path.join(qdir, sorted(os.listdir(qdir))[0])
    pic = tmp_path / "p.png"
    # an undecodable image
    bad = tmp_path / "0700_c1s1_005000_00.jpg"
    bad.write_bytes(b"not an image at all")
    msg = _error(capsys, "search", "--index", idx, "--bundle", b, "--query", bad,
                 "--picture", pic)
    assert msg.startswith(f"tfusion search: error: {bad}: not a readable image")
    # a time far outside the index's range
    msg = _error(capsys, "search", "--index", idx, "--bundle", b, "--query", image,
                 "--camera", 1, "--frame", 10 ** 9, "--picture", pic)
    assert f"error: {idx}: query frame 1000000000" in msg and "outside" in msg
    # an older bundle: no fused_scores signature in its manifest
    old = tmp_path / "old"
    shutil.copytree(b, old)
    manifest = json.load(open(old / "tfusion_manifest.json"))
    del manifest["signatures"]
    manifest["version"] = 1
    json.dump(manifest, open(old / "tfusion_manifest.json", "w"))
    msg = _error(capsys, "search", "--index", idx, "--bundle", old, "--query", image)
    assert f"error: {old}: bundle has no fused_scores signature" in msg
    msg = _error(capsys, "index", "--bundle", old, "--dataset", setup["data"],
                 "--output", tmp_path / "idx2")
    assert "no fused_scores signature" in msg
    assert not os.path.exists(tmp_path / "idx2") and not os.path.exists(
        str(tmp_path / "idx2") + ".partial")
    # a dataset that fails while the index is being built: no index, no leftovers
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("not a dataset")
    msg = _error(capsys, "index", "--bundle", b, "--dataset", junk, "--output",
                 tmp_path / "idx3")
    assert msg.startswith("tfusion index: error: ")
    assert not os.path.exists(tmp_path / "idx3") and not os.path.exists(
        str(tmp_path / "idx3") + ".partial")
    # an index built with another bundle (another ST model)
    other = serving_case.bundle(str(tmp_path / "other"), STConfig(kappa=5.0))
    capsys.readouterr()
    msg = _error(capsys, "search", "--index", idx, "--bundle", other, "--query", image)
    assert f"error: {idx}: index built with another bundle" in msg
    # a folder that is no index
    msg = _error(capsys, "search", "--index", tmp_path, "--bundle", b, "--query", image)
    assert f"error: {tmp_path}: not a gallery index" in msg
    # an index folder that exists already
    msg = _error(capsys, "index", "--bundle", b, "--dataset", setup["data"], "--output", idx)
    assert f"error: {idx}: exists" in msg
    assert not pic.exists()


def test_reach_limits_the_rows_scored_and_keeps_the_exhaustive_top_k(setup, capsys,
                                                                     monkeypatch):
    """A bundle whose ST model sets a reach (max_delta): the search scores only the
    rows within it, every hit lies within it, and the top-k is the full scan's."""
    from pipeline import bundle as bundle_mod
    load = bundle_mod.Bundle.st_model

    def with_reach(self):
        model = load(self)
        model.params["max_delta"] = 1500
        return model
    monkeypatch.setattr(bundle_mod.Bundle, "st_model", with_reach)
    qdir = os.path.join(setup["data"], "query")
    runs = []
    for extra in ([], ["--exhaustive"]):
        assert tfusion("search", "--index", setup["index"], "--bundle", setup["bundle"],
                       "--query", qdir, "--json", *extra) == 0
        runs.append(json.loads(capsys.readouterr().out))
    pruned, full = runs
    for p, f in zip(pruned, full):
        assert [h["name"] for h in p["hits"]] == [h["name"] for h in f["hits"]]
        assert p["pruned"] and p["rows_scored"] < p["rows"] and not f["pruned"]
        assert p["hits"] and all(abs(h["frame"] - p["frame"]) <= 1500 for h in p["hits"])
    # the reach mattered: without it some top-10 holds a row further away in time
    monkeypatch.setattr(bundle_mod.Bundle, "st_model", load)
    assert tfusion("search", "--index", setup["index"], "--bundle", setup["bundle"],
                   "--query", qdir, "--json") == 0
    plain = json.loads(capsys.readouterr().out)
    assert any(abs(h["frame"] - q["frame"]) > 1500 for q in plain for h in q["hits"])
