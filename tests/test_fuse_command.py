"""`tfusion fuse` end to end on a slice of the real Market-1501 lists, the Beam path
(DirectRunner) against the in-memory path, and bad inputs."""
import json
import os

import numpy as np
import pytest

from core.names import parse_names, read_name_list
from pipeline.cli import main

BEAM = ["--runner=DirectRunner", "--direct_running_mode=in_memory",
        "--direct_num_workers=1"]


def _simulate(points, noise, rng, protos, bias, dim=32):
    """x = prototype[pid] + camera bias + noise (unit rows); pid <= 0 fresh each image.
    protos / bias are shared across splits."""
    out = []
    for k, p in enumerate(points):
        key = p.pid if p.pid > 0 else ("solo", len(protos))
        if key not in protos:
            protos[key] = rng.standard_normal(dim)
        if p.camera not in bias:
            bias[p.camera] = 0.5 * rng.standard_normal(dim)
        out.append(protos[key] + bias[p.camera] + noise * rng.standard_normal(dim))
    x = np.array(out, np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _write(path, names, points, x):
    np.savez(path, features=x, name=np.array(names),
             **{k: np.array([getattr(p, k) for p in points], np.int64)
                for k in ("pid", "camera", "frame", "sequence")})


@pytest.fixture(scope="module")
def market_slice(market_lists, tmp_path_factory):
    """~2k train / 300 query / 2.5k gallery images of the real Market lists."""
    out = tmp_path_factory.mktemp("slice")
    rng = np.random.default_rng(0)
    protos, bias = {}, {}
    split_names = {s: read_name_list(os.path.join(market_lists, f"{s}.txt"))
                   for s in ("train", "query", "gallery")}
    pts = {s: parse_names(n, "market") for s, n in split_names.items()}
    train_ids = sorted({p.pid for p in pts["train"]})[:120]
    test_ids = set(sorted({p.pid for p in pts["query"]})[:100])
    keep = {
        "train": [i for i, p in enumerate(pts["train"]) if p.pid in train_ids],
        "query": [i for i, p in enumerate(pts["query"]) if p.pid in test_ids],
        "gallery": [i for i, p in enumerate(pts["gallery"])
                    if p.pid in test_ids or (p.pid <= 0 and i % 10 == 0)],
    }
    for s, idx in keep.items():
        names = [split_names[s][i] for i in idx]
        points = [pts[s][i] for i in idx]
        _write(out / f"{s}.npz", names, points, _simulate(points, 1.6, rng, protos, bias))
    return out


def _args(d, out, *extra):
    return ["fuse", "--train", str(d / "train.npz"), "--query", str(d / "query.npz"),
            "--gallery", str(d / "gallery.npz"), "--output-dir", str(out), *extra]


@pytest.fixture(scope="module")
def fused(market_slice, tmp_path_factory):
    """The same slice fused in memory and through Beam's DirectRunner, the latter
    with the train split as a folder of row shards (the launcher reads its header
    only; the workers read the rows)."""
    from core.features import load_features, save_feature_shards
    mem = tmp_path_factory.mktemp("in_memory")
    beam = tmp_path_factory.mktemp("beam")
    assert main(_args(market_slice, mem, "--rerank")) == 0
    shards = str(tmp_path_factory.mktemp("train_shards"))
    save_feature_shards(load_features(str(market_slice / "train.npz")), shards, 300)
    args = _args(market_slice, beam, "--rerank", "--", *BEAM)
    args[args.index("--train") + 1] = shards
    assert main(args) == 0
    return mem, beam


def test_fuse_writes_metrics_artifacts_and_beats_vision(fused):
    mem, _ = fused
    m = json.loads((mem / "metrics.json").read_text())
    for side in ("vision", "fusion"):
        assert set(m[side]) == {"rank1", "rank5", "rank10", "mAP", "queries"}
        assert 0 <= m[side]["rank1"] <= 100 and m[side]["queries"] > 200
    assert m["fusion"]["rank1"] > m["vision"]["rank1"] + 10
    assert m["fusion"]["mAP"] > m["vision"]["mAP"] + 5
    assert m["mode"] == "camera_sequence" and m["path"] == "in_memory"
    assert (mem / "st_model.npz").is_file()
    assert (mem / "st_model.png").stat().st_size > 10_000


def test_rerank_reports_the_re_ranked_list_beside_the_fusion(fused):
    mem, _ = fused
    m = json.loads((mem / "metrics.json").read_text())
    r, f = m["fusion_reranked"], m["fusion"]
    assert r["queries"] == f["queries"] and m["config"]["fusion_rule"]["rerank"]
    assert r["mAP"] > f["mAP"] and r["rank1"] >= f["rank1"] - 0.5
    assert r["visit_links"] > 0 and r["reciprocal_set"] > 1
    assert m["timing"]["rerank_s"] > 0


def test_beam_and_in_memory_paths_give_identical_artifacts(fused):
    from st_model.fused_ranking import read_ranking
    from st_model.st_artifact import load_st_model
    mem, beam = fused
    a, b = load_st_model(str(mem)), load_st_model(str(beam))
    assert a.visual.sum() > 0 and a.random.sum() > a.visual.sum()
    assert a.same_as(b)
    ra, rb = read_ranking(str(mem)), read_ranking(str(beam))
    assert ra == rb
    name, (nb, sc) = next(iter(ra.items()))
    assert len(nb) == len(sc) == 50 and name not in nb
    assert sc == sorted(sc, reverse=True)
    mm = json.loads((mem / "metrics.json").read_text())
    mb = json.loads((beam / "metrics.json").read_text())
    assert mm["fusion"] == mb["fusion"] and mb["path"] == "beam"
    assert mm["fusion_reranked"] == mb["fusion_reranked"]
    assert mm["config"]["st"]["frame_rate"] == mb["config"]["st"]["frame_rate"]
    assert (beam / "st_model.png").read_bytes() == (mem / "st_model.png").read_bytes()


def test_tfusion_mode_runs_and_reports_its_rules(market_slice, tmp_path):
    out = tmp_path / "tf"
    assert main(_args(market_slice, out, "--mode", "tfusion", "--no-plot",
                      "--no-ranking")) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["fusion_rule"] == "bayes" and m["config"]["st"]["max_delta"] == 40000
    assert m["st_model"]["nodes"] == ["c1", "c2", "c3", "c4", "c5", "c6"]
    assert m["fusion"]["rank1"] > m["vision"]["rank1"]


def _tiny(tmp_path, name, **override):
    rng = np.random.default_rng(1)
    n = 40
    arrays = dict(features=rng.standard_normal((n, 4)).astype(np.float32),
                  camera=np.repeat([1, 2], n // 2), frame=np.arange(n) * 10,
                  pid=np.tile(np.arange(1, n // 2 + 1), 2))
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("split,override,message", [
    ("train", {"frame": None}, "missing array(s) frame"),
    ("query", {"camera": np.ones(39, np.int64)}, "'camera' has shape (39,), expected [40]"),
    ("gallery", {"features": np.full((40, 4), np.nan, np.float32)}, "NaN/inf"),
    ("query", {"pid": None}, "missing array(s) pid"),
    ("query", {"pid": np.arange(100, 140)}, "no valid queries"),
])
def test_bad_inputs_stop_with_a_message_naming_the_file(tmp_path, capsys, split,
                                                         override, message):
    paths = {s: _tiny(tmp_path, f"{s}.npz", **(override if s == split else {}))
             for s in ("train", "query", "gallery")}
    rc = main(["fuse", "--train", str(paths["train"]), "--query", str(paths["query"]),
               "--gallery", str(paths["gallery"]), "--output-dir", str(tmp_path / "o"),
               "--no-plot", "--no-ranking"])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and f"{split}.npz" in err


def test_unseen_query_and_gallery_cameras_fuse_with_a_neutral_factor_and_a_warning(
        tmp_path, capsys):
    cam = np.repeat([1, 2], 20)
    cam[:5] = 9                        # 5 query images in a camera train never saw
    gcam = np.repeat([1, 2], 20)
    gcam[-3:] = 8                      # and 3 gallery images in another one
    paths = {"train": _tiny(tmp_path, "train.npz"),
             "query": _tiny(tmp_path, "query.npz", camera=cam),
             "gallery": _tiny(tmp_path, "gallery.npz", camera=gcam)}
    rc = main(["fuse", "--train", str(paths["train"]), "--query", str(paths["query"]),
               "--gallery", str(paths["gallery"]), "--output-dir", str(tmp_path / "o"),
               "--no-plot", "--no-ranking"])
    err = capsys.readouterr().err
    assert rc == 0
    assert "WARNING" in err and "camera(s) [8, 9]" in err and "query.npz" in err
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["unseen"]["query"]["images_unseen_camera"] == 5
    assert m["unseen"]["gallery"]["images_unseen_camera"] == 3
    assert m["unseen"]["neutral_pairs"] == 5 * 40 + 3 * 40 - 5 * 3


def test_alpha_beta_need_the_bayes_rule_named_and_frame_rate_follows_the_names():
    from core.errors import InputError
    from pipeline.cli import parse_command_line
    from pipeline.commands import fuse as fuse_command

    def settings(*flags):
        args, module = parse_command_line(
            ["fuse", "--train", "t", "--query", "q", "--gallery", "g", "--output-dir", "o",
             *flags, "--", "--runner=X"])
        assert module is fuse_command and args.beam_options == ["--runner=X"]
        return fuse_command.settings_from_args(args)
    # no silent switch to bayes: α with the default (loglinear) rule names both
    with pytest.raises(InputError, match="alpha.*bayes.*not to 'loglinear'.*--fusion bayes"):
        settings("--alpha", "0.2")
    with pytest.raises(InputError, match="not to 'logistic'"):
        settings("--fusion", "logistic", "--beta", "0.1")
    rule = settings("--fusion", "bayes", "--alpha", "0.2").rule
    assert (rule.fusion, rule.alpha) == ("bayes", 0.2)
    st, rule = settings("--mode", "tfusion", "--alpha", "0.2")   # tfusion's rule is bayes
    assert (rule.fusion, st.sharpness, st.max_delta) == ("bayes", None, 40000)
    assert fuse_command.frame_rate_of(["0005_c2_f0046985.jpg"]) == 60.0
    assert fuse_command.frame_rate_of(["0002_c1s1_000451_03.jpg"]) == 25.0


def test_fuse_on_local_files_imports_neither_tensorflow_nor_beam(market_slice, tmp_path):
    """Start-up: a local `tfusion fuse` (ranking and plot included) needs no
    TensorFlow, TFX or Beam (core/files.py's local paths, core/tfrecord.py)."""
    import subprocess
    import sys
    out = tmp_path / "out"
    code = ("import sys; from pipeline.cli import main; "
            f"rc = main(['fuse', '--train', {str(market_slice / 'train.npz')!r}, "
            f"'--query', {str(market_slice / 'query.npz')!r}, "
            f"'--gallery', {str(market_slice / 'gallery.npz')!r}, "
            f"'--output-dir', {str(out)!r}]); "
            "print('RC', rc, 'HEAVY', sorted(m for m in ('tensorflow', 'tfx', 'apache_beam') "
            "if m in sys.modules))")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": repo})
    assert "RC 0 HEAVY []" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    assert len(list(out.glob("fused_ranking-*.tfrecord.gz"))) == 1
    assert (out / "st_model.png").is_file()
