"""SynthReID configuration: presets, JSON overrides, and clear errors."""
import json

import pytest

from pipeline.cli import main as cli_main
from synth.config import PRESETS, ConfigError, load_config


def test_presets_exist_and_validate():
    assert {"tiny", "demo", "market"} <= set(PRESETS)
    demo = load_config("demo")
    assert set(demo["domains"]) == {"source", "target"}
    assert demo["domains"]["source"]["style"] != demo["domains"]["target"]["style"]
    assert (demo["height"], demo["width"]) == (128, 64)


def test_override_merges_and_adds_a_domain():
    cfg = load_config("tiny", overrides={"height": 256, "width": 128, "domains": {
        "target": {"network": {"cameras": 5}}, "third": {"style": "campus"}}})
    assert (cfg["height"], cfg["width"]) == (256, 128)
    assert cfg["domains"]["target"]["network"]["cameras"] == 5
    assert cfg["domains"]["target"]["network"]["sessions"] == 2  # untouched
    assert cfg["domains"]["third"]["style"] == "campus"


@pytest.mark.parametrize("over, message", [
    ({"height": -128}, "height/width"),
    ({"width": 0}, "height/width"),
    ({"colour": 3}, "unknown key 'colour'"),
    ({"domains": {"target": {"network": {"camras": 3}}}},
     "unknown key 'domains.target.network.camras'"),
    ({"domains": {"target": {"identities": "many"}}}, "expected an integer"),
    ({"domains": {"target": {"identities": -5}}}, "identities"),
    ({"domains": {"target": {"style": "cartoon"}}}, "unknown style 'cartoon'"),
    ({"domains": {"target": {"network": {"transit_s": [30, 10]}}}}, "transit_s"),
    ({"domains": {"target": {"network": {"dwell_s": [1]}}}}, "list of 2 numbers"),
])
def test_bad_values_stop_with_a_clear_message(over, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config("tiny", overrides=over)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset 'huge'.*tiny"):
        load_config("huge")


def test_config_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json: not valid JSON"):
        load_config("tiny", str(bad))
    neg = tmp_path / "neg.json"
    neg.write_text(json.dumps({"height": -1}))
    with pytest.raises(ConfigError, match="neg.json: height/width"):
        load_config("tiny", str(neg))
    with pytest.raises(ConfigError, match="missing.json: cannot read"):
        load_config("tiny", str(tmp_path / "missing.json"))


def test_cli_reports_bad_preset_and_bad_list_names(tmp_path, capsys):
    assert cli_main(["synth", "--preset", "huge", "--out", str(tmp_path / "o")]) == 2
    assert "unknown preset 'huge'" in capsys.readouterr().err
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "train.txt").write_text("0002_c1s1_000451_03.jpg\nperson_7.jpg\n")
    (lists / "query.txt").write_text("0001_c1s1_001051_00.jpg\n")
    (lists / "gallery.txt").write_text("0001_c2s1_000301_01.jpg\n")
    rc = cli_main(["synth", "--preset", "market", "--out", str(tmp_path / "m"),
                   "--lists", str(lists)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "train.txt:2" in err and "person_7.jpg" in err
    assert cli_main(["synth", "--preset", "market", "--out", str(tmp_path / "m2"),
                     "--lists", str(tmp_path / "nowhere")]) == 2
    assert "name list not found" in capsys.readouterr().err
