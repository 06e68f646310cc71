"""`tfusion demo` end to end on the tiny SynthReID preset (a smoke run of the loop)."""
import json
import os

import pytest

pytest.importorskip("tensorflow")


def test_demo_runs_whole_loop_on_tiny_preset(tmp_path, capsys):
    from pipeline.cli import main
    out = str(tmp_path / "demo")
    rc = main(["demo", "--out", out, "--preset", "tiny", "--pretrain-steps", "8",
               "--transfer-steps", "4"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "round1_ranknet" in printed and f"outputs in {out}/" in printed
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert [r["round"] for r in summary["rounds"]] == [0, 1]
    for row in summary["rounds"]:
        for key in ("vision", "fusion_metrics"):
            assert row[key]["queries"] > 0
            assert 0.0 <= row[key]["rank1"] <= 100.0
        fusion = row["fusion"]
        assert os.path.isfile(os.path.join(fusion, "metrics.json"))
        assert os.path.isfile(os.path.join(fusion, "st_model.png"))
        assert any(f.startswith("fused_ranking-") for f in os.listdir(fusion))
    assert os.path.isdir(os.path.join(out, "models", "round1_ranknet"))
    for d in ("source", "target"):
        report = json.load(open(os.path.join(out, "examples", d, "ingest_report.json")))
        assert report["bad_images"] == 0 and report["splits"]["train"]["count"] > 0
