"""`tfusion run` settings: presets, JSON config files, runners; bad settings are one-line
errors naming the file and the field."""
import json

import pytest


def test_preset_and_overrides():
    from pipeline.run_config import preset_config
    cfg = preset_config("tiny", rounds=2, seed=3)
    assert (cfg.preset, cfg.rounds, cfg.seed) == ("tiny", 2, 3)
    assert cfg.pretrain.steps < preset_config("demo").pretrain.steps


def test_config_file_with_folders_and_gates(tmp_path):
    from pipeline.run_config import RunConfig
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"source_dir": "/data/src", "target_dir": "/data/tgt",
                                "rounds": 2, "min_fused_rank1": 30.0,
                                "st": {"top_k": 5}}))
    cfg = RunConfig.load(str(path), seed=7)
    assert (cfg.source_dir, cfg.rounds, cfg.seed, cfg.st.top_k) == ("/data/src", 2, 7, 5)


def test_training_settings_have_one_name_each(tmp_path):
    """Steps live in the typed `pretrain` / `ranknet`; `seed` and `backbone` are shared
    top-level values copied into both; flags override the nested values; the written
    config (to_dict) reads back to the same config."""
    from pipeline.commands.run import add_arguments, config_from_args
    from pipeline.run_config import RunConfig, preset_config
    from trainer.config import PretrainConfig, RankNetConfig
    cfg = RunConfig.from_dict({"seed": 4, "backbone": "resnet50",
                               "pretrain": {"steps": 50, "p": 8}, "ranknet": {"reciprocal_k": 9}})
    assert isinstance(cfg.pretrain, PretrainConfig) and isinstance(cfg.ranknet, RankNetConfig)
    assert (cfg.pretrain.steps, cfg.pretrain.p, cfg.pretrain.verification) == (50, 8, True)
    assert (cfg.ranknet.steps, cfg.ranknet.reciprocal_k) == (300, 9)
    assert {(c.seed, c.backbone) for c in (cfg.pretrain, cfg.ranknet)} == {(4, "resnet50")}
    written = cfg.to_dict()
    assert "seed" not in written["pretrain"] and "steps" in written["ranknet"]
    assert RunConfig.from_dict(written) == cfg
    assert (RunConfig().pretrain.steps, RunConfig().ranknet.steps) == (400, 300)
    import argparse
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = config_from_args(parser.parse_args(["--preset", "tiny", "--transfer-steps", "7",
                                                "--seed", "2"]))
    tiny = preset_config("tiny")
    assert (flags.pretrain.steps, flags.ranknet.steps) == (tiny.pretrain.steps, 7)
    assert (flags.seed, flags.pretrain.seed, flags.ranknet.seed) == (2, 2, 2)


def test_rerank_settings_from_config_file_and_flags(tmp_path):
    """A run config takes FusionRule's re-ranking fields and the re-ranked gates; the
    generated flags override them; the written config reads back the same."""
    import argparse

    from pipeline.commands.run import add_arguments, config_from_args
    from pipeline.run_config import RunConfig
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"fusion_rule": {"rerank": True, "rerank_k1": 12},
                                "min_fused_reranked_rank1": 20.0}))
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    cfg = config_from_args(parser.parse_args(["--config", str(path), "--rerank-k2", "3"]))
    rule = cfg.fusion_rule
    assert (rule.rerank, rule.rerank_k1, rule.rerank_k2) == (True, 12, 3)
    assert (cfg.min_fused_reranked_rank1, cfg.max_fused_reranked_rank1_drop) == (20.0, 2.0)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    flags = config_from_args(parser.parse_args(["--preset", "tiny", "--rerank"]))
    assert flags.fusion_rule.rerank and not RunConfig().fusion_rule.rerank


@pytest.mark.parametrize("values, message", [
    ({"roundz": 2}, "unknown key(s) ['roundz']"),
    ({"source_dir": "/a"}, "give both source_dir and target_dir"),
    ({"runner": "spark"}, "runner 'spark' is not one of"),
    ({"min_fused_rank1": 120}, "min_fused_rank1 is a percentage"),
    ({"st": {"top_kk": 3}}, "st: unknown key(s) ['top_kk']"),
    ({"fusion": {"top_k": 3}}, "'fusion' is now split in two: 'st'"),
    ({"st": {"bin_frames": 50}}, "st: 'bin_frames' is now 'max_bin_frames'"),
    ({"fusion_rule": {"alpha": 0.2}}, "not to 'loglinear'"),
    ({"pretrain_steps": 40}, "'pretrain_steps' is now 'pretrain.steps'"),
    ({"transfer_steps": 20}, "'transfer_steps' is now 'ranknet.steps'"),
    ({"ranknet": {"seed": 3}}, "ranknet: 'seed' is set once, as the top-level 'seed'"),
    ({"pretrain": {"backbone": "resnet50"}}, "pretrain: 'backbone' is set once"),
    ({"pretrain": {"stepz": 5}}, "pretrain: unknown key(s) ['stepz']"),
    ({"ranknet": {"steps": 0}}, "ranknet: training option steps = 0, expected >= 1"),
    ({"ranknet": 300}, "ranknet must be a JSON object of RankNetConfig fields"),
    ({"max_fused_reranked_rank1_drop": -1}, "max_fused_reranked_rank1_drop >= 0"),
    ({"fusion_rule": {"rerank": True, "rerank_k1": 0}}, "rerank_k1 and rerank_k2 must be >= 1"),
])
def test_bad_config_file_is_a_one_line_error(tmp_path, capsys, values, message):
    from pipeline.cli import main
    path = tmp_path / "run.json"
    path.write_text(json.dumps(values))
    rc = main(["run", "--config", str(path), "--output-dir", str(tmp_path / "out"),
               "--compile-only"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith(f"tfusion run: error: {path}") and message in err
    assert "\n" not in err


def test_config_that_is_not_json(tmp_path, capsys):
    from pipeline.cli import main
    path = tmp_path / "run.json"
    path.write_text("rounds: 2\n")
    assert main(["run", "--config", str(path), "--compile-only"]) == 2
    assert f"{path}: not valid JSON" in capsys.readouterr().err


def test_lineage_without_a_run_is_a_one_line_error(tmp_path, capsys):
    from pipeline.cli import main
    assert main(["lineage", "--output-dir", str(tmp_path)]) == 2
    assert "no ML Metadata store here" in capsys.readouterr().err
