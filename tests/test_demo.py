"""`tfusion demo` is `tfusion run` with the demo's defaults: the same DAG run
in-process and the same printed summary; end to end on the tiny SynthReID preset (a
smoke run of the loop)."""
import json
import os

import pytest

pytest.importorskip("tfx.v1")


def test_demo_takes_the_run_flags_with_the_demo_defaults():
    from pipeline.cli import parse_command_line
    demo, module = parse_command_line(["demo"])
    run, _ = parse_command_line(["run"])
    assert module.ACCEPTS_BEAM_ARGS
    assert (demo.preset, demo.output_dir) == ("demo", "demo_out")
    assert vars(demo) == {**vars(run), "command": "demo", "output_dir": "demo_out"}


def test_demo_runs_whole_loop_on_tiny_preset(tmp_path, capsys):
    from pipeline import lineage
    from pipeline.cli import main
    from pipeline.run_summary import format_summary
    out = str(tmp_path / "demo")
    rc = main(["demo", "--output-dir", out, "--preset", "tiny", "--pretrain-steps", "8",
               "--transfer-steps", "4"])
    assert rc == 0
    printed = capsys.readouterr().out
    summary = json.load(open(os.path.join(out, "run_summary.json")))
    assert format_summary(summary) in printed          # the one summary formatter
    assert os.path.isfile(summary["report"])
    assert [r["round"] for r in summary["rounds"]] == [0, 1]
    for row in summary["rounds"]:
        for key in ("vision", "fused"):
            assert row[key]["queries"] > 0
            assert 0.0 <= row[key]["rank1"] <= 100.0
        assert os.path.isfile(os.path.join(row["eval_examples"], "metrics.json"))
        assert os.path.isfile(row["st_plot"])
    store = lineage.open_store(os.path.join(out, "metadata.sqlite"))
    latest = lambda node: lineage.latest_outputs(store, "tfusion", node)  # noqa: E731
    ranking = latest("FusedRanker_r0")["fused_ranking"][0].uri
    assert any(f.startswith("fused_ranking-") for f in os.listdir(ranking))
    assert os.path.isdir(latest("Trainer_ranknet_r1")["model"][0].uri)
    for d in ("source", "target"):
        examples = latest(f"ReidExampleGen_{d}")["examples"][0].uri
        report = json.load(open(os.path.join(examples, "ingest_report.json")))
        assert report["bad_images"] == 0 and report["splits"]["train"]["count"] > 0
