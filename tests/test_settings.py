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
