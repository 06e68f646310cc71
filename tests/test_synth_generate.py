"""SynthReID end to end: the tiny preset, rendered once, read back as Market folders."""
import hashlib
import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from core.datasets import LAYOUTS, read_dataset_folder
from core.names import parse_name
from pipeline.cli import main as cli_main
from synth.config import load_config
from synth.generate import OutputExists, generate
from synth.plan import plan_dataset
from synth.writer import render_one


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("synth") / "tiny")
    report = generate("tiny", out, seed=3, workers=2, progress=False)
    return out, report


def _digests(root):
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            if n.endswith(".jpg"):
                with open(os.path.join(dirpath, n), "rb") as f:
                    out[os.path.relpath(os.path.join(dirpath, n), root)] = \
                        hashlib.sha1(f.read()).hexdigest()
    return out


def test_two_domains_in_market_layout_read_back(tiny):
    out, report = tiny
    assert set(report.dataset_dirs) == {"source", "target"}
    for domain in ("source", "target"):
        root = os.path.join(out, domain)
        assert report.dataset_dirs[domain] == root
        listing = read_dataset_folder(root)
        assert listing.layout == "market" and listing.convention == "market"
        assert listing.counts() == report.counts[domain]
        assert listing.skipped == []
        assert all(listing.counts()[s] > 0 for s in ("train", "query", "gallery"))
    with open(report.manifest) as f:
        manifest = json.load(f)
    assert manifest["seed"] == 3 and manifest["preset"] == "tiny"
    assert manifest["domains"]["target"]["images"] == report.counts["target"]
    assert manifest["domains"]["target"]["network"]["links"]


def test_images_are_small_rgb_jpegs(tiny):
    out, _ = tiny
    folder = os.path.join(out, "target", LAYOUTS["market"]["train"])
    name = sorted(os.listdir(folder))[0]
    with Image.open(os.path.join(folder, name)) as im:
        assert im.format == "JPEG" and im.mode == "RGB" and im.size == (64, 128)
        assert np.asarray(im).std() > 10  # not blank


def test_splits_follow_market_protocol(tiny):
    out, _ = tiny
    for domain in ("source", "target"):
        listing = read_dataset_folder(os.path.join(out, domain))
        train = {r.point.pid for r in listing.splits["train"]}
        query = listing.splits["query"]
        gallery = listing.splits["gallery"]
        test_ids = {r.point.pid for r in query + gallery if r.point.pid > 0}
        assert train and 0 not in train and -1 not in train
        assert not train & test_ids, "train and test identities must be disjoint"
        assert {r.point.pid for r in gallery} >= {0, -1}, "distractors and junk"
        for q in query:  # every query has a same-identity gallery image elsewhere
            assert any(g.point.pid == q.point.pid and g.point.camera != q.point.camera
                       for g in gallery), q.name


def test_tiny_is_usable_for_training(tiny):
    """A few identities with several images each across >= 2 cameras, per domain."""
    out, _ = tiny
    for domain in ("source", "target"):
        recs = read_dataset_folder(os.path.join(out, domain)).splits["train"]
        per_id = {}
        for r in recs:
            per_id.setdefault(r.point.pid, []).append(r.point.camera)
        good = [p for p, cams in per_id.items() if len(cams) >= 3 and len(set(cams)) >= 2]
        assert len(good) >= 6, (domain, per_id)


def test_rendering_is_deterministic_whatever_the_workers(tiny, tmp_path):
    out, _ = tiny
    again = str(tmp_path / "again")
    generate("tiny", again, seed=3, workers=1, preview=False, progress=False)
    assert _digests(again) == _digests(out)
    other = str(tmp_path / "other")
    generate("tiny", other, seed=4, workers=1, preview=False, progress=False)
    assert _digests(other) != _digests(out)


def test_one_image_in_memory_equals_the_written_file(tiny):
    out, _ = tiny
    cfg = load_config("tiny")
    job = [j for j in plan_dataset(cfg, 3, "").jobs if j.split == "query"][5]
    buf = io.BytesIO()
    render_one(cfg, 3, job).save(buf, "JPEG", quality=cfg["jpeg_quality"])
    with open(os.path.join(out, job.domain, job.relpath()), "rb") as f:
        assert f.read() == buf.getvalue()


def test_preview_sheet_shows_identities_across_cameras(tiny):
    out, report = tiny
    assert report.preview == os.path.join(out, "preview.png")
    with Image.open(report.preview) as im:
        w, h = im.size
    assert w >= 3 * 64 and h >= 2 * 6 * 128  # 3 cameras, >= 6 rows per domain


def test_existing_output_needs_force(tiny):
    out, _ = tiny
    with pytest.raises(OutputExists, match="--force"):
        generate("tiny", out, seed=3, workers=1, progress=False)


def test_cli_config_overrides_size_and_counts(tmp_path, capsys):
    cfg = tmp_path / "small.json"
    cfg.write_text(json.dumps({"height": 96, "width": 48, "domains": {
        "source": {"identities": 4, "distractors": 1, "junk": 0},
        "target": {"identities": 6}}}))
    out = tmp_path / "out"
    rc = cli_main(["synth", "--preset", "tiny", "--out", str(out), "--config", str(cfg),
                   "--workers", "1", "--seed", "1"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "images/s" in printed and "preview:" in printed
    listing = read_dataset_folder(str(out / "source"))
    ids = {r.point.pid for s in listing.splits.values() for r in s if r.point.pid > 0}
    assert 1 <= len(ids) <= 4
    with Image.open(listing.splits["train"][0].path) as im:
        assert im.size == (48, 96)


def test_lists_preset_renders_one_image_per_real_name(tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    names = {"train": ["0002_c1s1_000451_03.jpg", "0002_c2s1_000601_01.jpg",
                       "0007_c3s2_010451_00.jpg"],
             "query": ["0001_c1s1_001051_00.jpg"],
             "gallery": ["0001_c2s1_000301_01.jpg", "0000_c1s1_000151_01.jpg",
                         "-1_c1s1_000401_03.jpg"]}
    for split, ns in names.items():
        (lists / f"{split}.txt").write_text("\n".join(ns) + "\n")
    out = str(tmp_path / "market")
    report = generate("market", out, lists_dir=str(lists), workers=1, progress=False)
    assert report.dataset_dirs == {"market": out}  # one domain: OUT is the dataset
    listing = read_dataset_folder(out)
    for split, ns in names.items():
        assert sorted(r.name for r in listing.splits[split]) == sorted(ns)


def test_market_preset_plans_every_real_name(market_lists):
    cfg = load_config("market")
    plan = plan_dataset(cfg, 0, market_lists)
    jobs = plan.jobs
    assert len(jobs) == 36036
    names = {}
    for split in ("train", "query", "gallery"):
        with open(os.path.join(market_lists, f"{split}.txt")) as f:
            names[split] = [l.strip() for l in f if l.strip()]
        assert [j.name for j in jobs if j.split == split] == names[split]
    j = jobs[0]
    assert parse_name(j.name) == (j.pid, j.camera, j.frame, j.sequence)
    # Junk, distractor and person images of the real names render.
    for job in (next(x for x in jobs if x.pid == -1), next(x for x in jobs if x.pid == 0),
                jobs[0]):
        assert render_one(cfg, 0, job).size == (64, 128)
