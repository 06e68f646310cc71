"""The pipeline compiled for Dataflow (nothing runs, no cloud is contacted): the same
DAG, with the Dataflow options, the Beam options given after `--` and the
repository's setup.py in every Beam component."""
import json
import os

import pytest

pytest.importorskip("tfx.v1")

BEAM_NODES = ("ReidExampleGen_source", "ReidExampleGen_target", "Embedder_r0",
              "STModelGen_r0", "FusedRanker_r0", "Evaluator_r0", "Embedder_r1",
              "STModelGen_r1", "Evaluator_r1")


def compile_ir(tmp_path, *extra):
    from pipeline.cli import main
    from synth.generate import generate
    data = generate("tiny", str(tmp_path / "data"), seed=0).dataset_dirs
    out = str(tmp_path / "run")
    assert main(["run", "--preset", "tiny", "--source", data["source"],
                 "--target", data["target"], "--output-dir", out, "--compile-only",
                 *extra]) == 0
    with open(os.path.join(out, "pipeline_ir.json")) as f:
        return json.load(f)


def test_dataflow_options_reach_every_beam_component(tmp_path):
    from pipeline.beam_options import REPO_SETUP_FILE
    ir = compile_ir(tmp_path, "--runner", "dataflow", "--project", "proj",
                    "--region", "europe-west4", "--temp-location", "gs://bucket/tmp",
                    "--", "--max_num_workers=4")
    specs = ir["deploymentConfig"]["executorSpecs"]
    beam = {n for n, s in specs.items() if s["@type"].endswith("BeamExecutableSpec")}
    assert beam == set(BEAM_NODES)
    for node in beam:
        args = specs[node]["beamPipelineArgs"]
        assert "--runner=DataflowRunner" in args, node
        assert {"--project=proj", "--region=europe-west4",
                "--temp_location=gs://bucket/tmp", "--max_num_workers=4",
                f"--setup_file={REPO_SETUP_FILE}"} <= set(args), node


def test_local_default_is_the_in_memory_direct_runner(tmp_path):
    from pipeline.beam_options import LOCAL_BEAM_ARGS
    ir = compile_ir(tmp_path)
    for node, spec in ir["deploymentConfig"]["executorSpecs"].items():
        if spec["@type"].endswith("BeamExecutableSpec"):
            assert spec["beamPipelineArgs"] == LOCAL_BEAM_ARGS, node


def test_dataflow_without_project_is_a_clear_error(tmp_path, capsys):
    from pipeline.cli import main
    rc = main(["run", "--preset", "tiny", "--output-dir", str(tmp_path / "r"),
               "--runner", "dataflow", "--compile-only"])
    assert rc == 2
    assert "the dataflow runner needs ['project', 'region', 'temp_location']" in \
        capsys.readouterr().err
