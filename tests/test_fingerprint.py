"""Outputs know their inputs: rendered images and ingested examples are reused only
when their recorded fingerprint matches this run's preset, seed and images."""
import os

import pytest

from pipeline import fingerprint
from pipeline import prepared_data

pytest.importorskip("apache_beam")


def test_fingerprint_tracks_content_and_parts(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.jpg").write_bytes(b"1")
    before = fingerprint.tree_digest(str(tmp_path / "a"))
    fp = fingerprint.make(stage="s", images=before)
    fingerprint.record(str(tmp_path / "a"), fp)
    assert fingerprint.tree_digest(str(tmp_path / "a")) == before  # own file excluded
    assert fingerprint.matches(str(tmp_path / "a"), fp)
    (tmp_path / "a" / "x.jpg").write_bytes(b"2")
    assert fingerprint.tree_digest(str(tmp_path / "a")) != before
    other = fingerprint.make(stage="s", images="other")
    assert not fingerprint.matches(str(tmp_path / "a"), other)
    assert "images:" in fingerprint.differences(str(tmp_path / "a"), other)
    fingerprint.forget(str(tmp_path / "a"))
    assert fingerprint.recorded(str(tmp_path / "a")) is None


def test_demo_redoes_data_and_examples_for_another_seed(tmp_path, capsys):
    out = str(tmp_path / "demo")
    dirs = prepared_data.render_data(out, "tiny", 0, fresh=False)
    prepared_data.ingest_domain(dirs["target"], os.path.join(out, "ex"), fresh=False)
    ingested0 = fingerprint.recorded(os.path.join(out, "ex"))["digest"]

    prepared_data.render_data(out, "tiny", 0, fresh=False)
    prepared_data.ingest_domain(dirs["target"], os.path.join(out, "ex"), fresh=False)
    err = capsys.readouterr().err
    assert "reusing SynthReID images" in err and "reusing examples" in err

    prepared_data.render_data(out, "tiny", 1, fresh=False)
    report = prepared_data.ingest_domain(dirs["target"], os.path.join(out, "ex"),
                                         fresh=False)
    err = capsys.readouterr().err
    assert "redoing SynthReID images" in err and "seed: 0 -> 1" in err
    assert "redoing examples" in err and "reusing examples" not in err
    assert report["splits"]["query"]["count"] == len(os.listdir(
        os.path.join(dirs["target"], "query")))
    assert fingerprint.matches(os.path.join(out, "ex"), fingerprint.make(
        stage="ingest", images=fingerprint.tree_digest(dirs["target"])))
    assert fingerprint.recorded(os.path.join(out, "ex"))["digest"] != ingested0
