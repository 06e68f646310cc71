"""The installed stack: the pins the project promises, and tf.keras 2 everywhere."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

REQUIRED_PINS = {
    "tfx": "1.16.0", "ml-pipelines-sdk": "1.16.0", "tensorflow": "2.16.2",
    "tf_keras": "2.16.0", "tensorflow-transform": "1.16.0",
    "tensorflow-model-analysis": "0.47.1", "apache-beam": "2.61.0",
    "ml-metadata": "1.16.0", "tfx-bsl": "1.16.1", "tensorflow-data-validation": "1.16.1",
    "tensorflow-serving-api": "2.16.1",
}


def _pins():
    pins = {}
    for line in open(os.path.join(REPO, "constraints.txt")):
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.split("[")[0].lower().replace("_", "-")] = version
    return pins


def test_constraints_pin_the_whole_stack():
    pins = _pins()
    for name, version in REQUIRED_PINS.items():
        assert pins.get(name.lower().replace("_", "-")) == version, name
    assert pins["numpy"].startswith("1.")
    assert len(pins) > 200  # every transitive package, not just the top level
    with open(os.path.join(REPO, "constraints.txt")) as f:
        assert all("==" in l for l in f if l.strip() and not l.startswith("#"))


def test_installed_versions_match_the_pins():
    from importlib.metadata import version
    for name, pinned in REQUIRED_PINS.items():
        assert version(name) == pinned, name


def test_importing_the_project_selects_tf_keras_2():
    """A fresh interpreter that imports `trainer` first gets tf.keras 2 (tf_keras)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    code = ("import trainer, tensorflow as tf, tf_keras; "
            "print(tf.keras.__name__, tf.keras.Model is tf_keras.Model)")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.split()
    assert out[-1] == "True", out
