"""Settings resolved and validated once: one from_dict convention, CLI flags generated
from the config dataclasses, no silent rule switch, presets in one place, and no
`.resolved()` anywhere the math runs."""
import ast
import dataclasses
import os
from typing import Optional, Tuple

import pytest

from core.dataclass_dict import from_dict, to_dict
from core.errors import InputError
from st_model.config import FusionRule, STConfig, resolve_settings

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("core", "schemas", "st_model", "synth", "trainer", "pipeline")


def _fuse_args(*flags):
    from pipeline.cli import parse_command_line
    return parse_command_line(["fuse", "--train", "t", "--query", "q", "--gallery", "g",
                               "--output-dir", "o", *flags])[0]


def _subparser(command):
    from pipeline.cli import build_parser
    return build_parser(command)._subparsers._group_actions[0].choices[command]


def _sources(packages=PACKAGES):
    for package in packages:
        for root, _, files in os.walk(os.path.join(REPO, package)):
            for name in sorted(files):
                if name.endswith(".py"):
                    path = os.path.join(root, name)
                    yield os.path.relpath(path, REPO), ast.parse(open(path).read())


@dataclasses.dataclass(frozen=True)
class _Example:
    n: int = 1
    x: float = 0.5
    pair: Tuple[int, int] = (1, 2)
    maybe: Optional[float] = None


def test_from_dict_names_unknown_keys_file_and_known_keys():
    with pytest.raises(InputError) as e:
        from_dict(_Example, {"m": 1}, "run.json: example")
    assert str(e.value) == ("run.json: example: unknown key(s) ['m']; "
                            "known: ['maybe', 'n', 'pair', 'x']")
    with pytest.raises(InputError, match="example: 'old' is now 'n'"):
        from_dict(_Example, {"old": 3}, "example", renamed={"old": "n"})
    with pytest.raises(InputError, match="example: x = 'abc' is not a float"):
        from_dict(_Example, {"x": "abc"}, "example")
    value = from_dict(_Example, {"n": 2, "pair": [3, 4], "x": 1}, "example")
    assert value == _Example(2, 1.0, (3, 4)) and isinstance(value.pair, tuple)
    assert from_dict(_Example, to_dict(value), "example") == value
    assert to_dict(value)["pair"] == [3, 4]


@pytest.mark.parametrize("cls", [STConfig, FusionRule])
def test_every_settings_field_has_a_generated_flag_with_help(cls):
    for command in ("fuse", "run", "demo"):
        sub = _subparser(command)
        by_flag = {o: a for a in sub._actions for o in a.option_strings}
        for f in dataclasses.fields(cls):
            if command == "fuse" and f.name == "rerank_teacher":   # the pipeline's only
                assert "--rerank-teacher" not in by_flag
                continue
            action = by_flag["--" + f.name.replace("_", "-")]
            assert action.dest == f.name
            assert action.help and f.metadata["help"] in action.help.replace("%%", "%")
            assert action.default is None     # not given: the config's value stands


def test_generated_flags_parse_to_typed_values():
    from pipeline.commands.fuse import settings_from_args
    args = _fuse_args("--top-k", "7", "--kappa", "5", "--mode", "tfusion", "--rerank",
                      "--logistic", "1", "2", "3", "4", "--bandwidth", "80",
                      "--max-bin-frames", "40", "--fusion", "logistic")
    st, rule = settings_from_args(args)
    assert (st.top_k, st.kappa, st.bandwidth, st.max_bin_frames) == (7, 5.0, 80.0, 40)
    assert isinstance(st.top_k, int) and isinstance(st.kappa, float)
    assert (rule.fusion, rule.rerank, rule.logistic) == ("logistic", True, (1, 2, 3, 4))
    assert st.sharpness is None and st.max_delta == 40000       # the tfusion presets
    st, rule = settings_from_args(_fuse_args("--hard-top-k"))
    assert st.sharpness is None and rule == FusionRule()
    assert settings_from_args(_fuse_args()) == resolve_settings()


def test_old_flag_and_bad_choice_are_errors(capsys):
    with pytest.raises(SystemExit):
        _fuse_args("--bin-frames", "50")
    assert "--bin-frames is now --max-bin-frames" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _fuse_args("--fusion", "mean")
    assert "invalid choice: 'mean'" in capsys.readouterr().err


def test_alpha_with_a_rule_that_ignores_it_is_an_error_on_run_too():
    from pipeline.cli import parse_command_line
    from pipeline.commands.run import config_from_args
    from pipeline.run_config import RunConfigError
    args = parse_command_line(["run", "--preset", "tiny", "--alpha", "0.2"])[0]
    with pytest.raises(RunConfigError, match="preset tiny: alpha.*not to 'loglinear'"):
        config_from_args(args)
    args = parse_command_line(["run", "--preset", "tiny", "--fusion", "bayes",
                               "--alpha", "0.2", "--top-k", "5"])[0]
    config = config_from_args(args)
    assert (config.fusion_rule.fusion, config.fusion_rule.alpha, config.st.top_k) == (
        "bayes", 0.2, 5)


def test_resolution_is_idempotent_and_the_run_config_round_trips():
    from pipeline.run_config import RunConfig
    once = resolve_settings(STConfig(mode="tfusion"), FusionRule(beta=0.1))
    assert resolve_settings(*once) == once and once.rule.fusion == "bayes"
    config = RunConfig.from_dict({"st": {"mode": "tfusion"}})
    assert RunConfig.from_dict(config.to_dict()) == config
    assert config.st == once.st


def test_presets_live_in_one_place():
    """One table of run presets, beside the SynthReID presets, and it names only those."""
    from pipeline.commands import run as run_command
    from synth.config import PRESETS, RUN_PRESETS
    assert set(RUN_PRESETS) <= set(PRESETS)
    tables = [(path, t.id) for path, tree in _sources() for node in ast.walk(tree)
              if isinstance(node, (ast.Assign, ast.AnnAssign))
              for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
              if isinstance(t, ast.Name) and t.id.endswith("PRESETS")]
    assert sorted(tables) == [("synth/config.py", "PRESETS"),
                              ("synth/config.py", "RUN_PRESETS")]
    sub = _subparser("run")
    preset = next(a for a in sub._actions if a.dest == "preset")
    assert sorted(preset.choices) == sorted(RUN_PRESETS)
    assert run_command.config_from_args(
        sub.parse_args(["--preset", "tiny"])).pretrain.steps == \
        RUN_PRESETS["tiny"]["pretrain"]["steps"]


def test_settings_are_resolved_where_they_enter_only():
    """No `.resolved()` in the product, and resolve_settings is called only where the
    settings enter (a command's flags, a run config), never by the math."""
    entries = {"st_model/config.py", "pipeline/run_config.py"}
    calls = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                fn = node.func
                name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
                if name in ("resolved", "resolve_settings"):
                    calls.append((path, name))
    assert not [c for c in calls if c[1] == "resolved"]
    assert {p for p, _ in calls} - entries <= {
        p for p, _ in calls if p.startswith("pipeline/commands/")}
    assert {p for p, _ in calls if p.startswith(("st_model/", "trainer/", "core/"))} <= {
        "st_model/config.py"}


def _training_flags(command):
    return {o: a for a in _subparser(command)._actions for o in a.option_strings}


@pytest.mark.parametrize("command,cls_name", [("pretrain", "PretrainConfig"),
                                              ("transfer", "RankNetConfig")])
def test_every_training_field_has_help_and_a_generated_flag(command, cls_name):
    import trainer.config
    from pipeline.commands.transfer import BASE_MODEL_FIELDS
    cls = getattr(trainer.config, cls_name)
    by_flag = _training_flags(command)
    for f in dataclasses.fields(cls):
        assert f.metadata.get("help"), f.name
        if command == "transfer" and f.name in BASE_MODEL_FIELDS:
            assert "--" + f.name.replace("_", "-") not in by_flag
            continue
        name = f.metadata.get("flag", f.name)
        flag = "--" + ("no_" + name if f.default is True else name).replace("_", "-")
        action = by_flag[flag]
        assert action.dest == f.name and action.default is None
        assert f.metadata["help"] in action.help.replace("%%", "%")
    steps = by_flag["--steps"].help
    assert ("(default 1000)" if command == "pretrain" else "(default 500)") in steps


def _training_config(command, *flags):
    from pipeline.cli import parse_command_line
    from pipeline.commands import pretrain, transfer
    required = {"pretrain": ["--examples", "e", "--output", "o"],
                "transfer": ["--examples", "e", "--ranking", "r", "--base-model", "b",
                             "--output", "o"]}[command]
    args = parse_command_line([command, *required, *flags])[0]
    module = pretrain if command == "pretrain" else transfer
    return module.config_from_args(args), args


def test_training_flags_parse_to_typed_values_and_keep_their_defaults():
    from trainer.config import PretrainConfig, RankNetConfig
    assert _training_config("pretrain")[0] == PretrainConfig()
    assert _training_config("transfer")[0] == RankNetConfig()
    config, _ = _training_config("pretrain", "--no-flip", "--steps", "7", "--ids-per-batch",
                                 "8", "--images-per-id", "2", "--learning-rate", "0.01",
                                 "--verification", "--mixed-precision", "off", "--xla",
                                 "--backbone", "resnet50")
    assert (config.flip, config.steps, config.p, config.k, config.learning_rate) == (
        False, 7, 8, 2, 0.01)
    assert isinstance(config.steps, int) and isinstance(config.learning_rate, float)
    assert (config.verification, config.mixed_precision, config.xla, config.backbone) == (
        True, "off", True, "resnet50")
    config, args = _training_config("transfer", "--near-ranks", "2", "4", "--score",
                                    "verification", "--same-camera-pairs",
                                    "--score-scale", "5", "--run-dir", "logs")
    assert (config.near_ranks, config.score, config.same_camera_pairs, config.score_scale,
            config.steps, config.flip) == ((2, 4), "verification", True, 5.0, 500, True)
    assert args.run_dir == "logs" and not args.no_eval
    config, _ = _training_config("transfer", "--paper", "--freeze-fraction", "0.1")
    assert (config.score, config.freeze_fraction, config.near_ranks) == (
        "verification", 2 / 3, (1, 25))


def test_bad_training_flag_values_are_errors(capsys):
    with pytest.raises(SystemExit):
        _training_config("pretrain", "--multi-gpu", "maybe")
    assert "invalid choice: 'maybe'" in capsys.readouterr().err
    from pipeline.cli import UsageError
    with pytest.raises(UsageError, match="unrecognized arguments: --backbone"):
        _training_config("transfer", "--backbone", "resnet50")
    with pytest.raises(InputError, match="training option erasing = 2.0"):
        _training_config("pretrain", "--erasing", "2")
