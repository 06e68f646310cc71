"""pipeline/run_log.py: inside `quiet_console` the console keeps progress, errors and
the project's own warnings; subprocess output, file-descriptor writes, stdout, other
log records and third-party warnings go only to the log file; everything is restored
afterwards, also on failure, when the log is named on the console."""
import logging
import os
import subprocess
import sys
import warnings

import pytest

from pipeline import run_log

NOISE = ("running bdist_wheel", "Successfully installed tfx-user-code", "E0000 cuda.cc] chatter",
         "library print on stdout", "FutureWarning: third-party notice",
         "harmless TFX warning")


def make_noise_and_signal() -> None:
    """What a run writes: progress, subprocess output, fd-level C++ logs, prints, log
    records and warnings of every kind."""
    print("[tfusion    1.0s] progress line", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-c", "import sys; print('running bdist_wheel'); "
                    "print('Successfully installed tfx-user-code', file=sys.stderr)"],
                   check=True)
    os.write(2, b"E0000 cuda.cc] chatter\n")
    print("library print on stdout")
    warnings.warn("third-party notice", FutureWarning)
    warnings.warn_explicit("2 query cameras unseen in train", UserWarning,
                           filename=os.path.join(run_log.REPO, "st_model", "fuse.py"),
                           lineno=1)
    logging.getLogger("absl").warning("harmless TFX warning")
    logging.getLogger("pipeline.components.embedder").warning("3 images unreadable")
    logging.getLogger("tensorflow").error("a real problem")


def test_console_keeps_progress_and_problems_the_log_everything(tmp_path, capfd):
    path = tmp_path / "out" / "run.log"
    stderr, handlers, show = sys.stderr, logging.getLogger().handlers[:], warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        with run_log.quiet_console(str(path)) as named:
            make_noise_and_signal()
            kept = sys.stderr
    assert named == str(path)
    kept.write("a stream kept from the run writes where it is now\n")
    out, err = capfd.readouterr()
    assert out == ""
    console = err.splitlines()
    assert console[0] == "[tfusion    1.0s] progress line"
    assert "WARNING pipeline.components.embedder: 3 images unreadable" in console
    assert "ERROR tensorflow: a real problem" in console
    assert any("UserWarning: 2 query cameras unseen in train" in line for line in console)
    assert console[-1] == "a stream kept from the run writes where it is now"
    assert len(console) == 5, err
    log = path.read_text()
    for text in NOISE + ("progress line", "3 images unreadable", "a real problem",
                         "2 query cameras unseen"):
        assert text in log, text
    # everything is back as it was
    assert sys.stderr is stderr and warnings.showwarning is show
    assert logging.getLogger().handlers == handlers
    print("after")
    os.write(2, b"fd 2 after\n")
    assert capfd.readouterr() == ("after\n", "fd 2 after\n")


def test_a_failure_is_logged_and_names_the_log(tmp_path, capfd):
    path = tmp_path / "run.log"
    with pytest.raises(RuntimeError, match="broken component"):
        with run_log.quiet_console(str(path), "tfusion run"):
            os.write(1, b"pip noise\n")
            raise RuntimeError("broken component")
    _, err = capfd.readouterr()
    assert err.splitlines() == [f"tfusion run: full log: {path}"]
    log = path.read_text()
    assert "pip noise" in log and "Traceback" in log and "broken component" in log
    os.write(2, b"restored\n")
    assert capfd.readouterr().err == "restored\n"


def test_a_second_run_appends_to_the_log(tmp_path, capfd):
    path = tmp_path / "run.log"
    for word in ("first", "second"):
        with run_log.quiet_console(str(path)):
            os.write(1, f"{word} run\n".encode())
    log = path.read_text()
    assert log.count("==== tfusion run ") == 2 and log.index("first") < log.index("second")
    assert capfd.readouterr() == ("", "")


def test_verbose_keeps_everything_on_the_console(tmp_path, capfd, monkeypatch):
    with run_log.console_for(str(tmp_path), verbose=True) as named:
        os.write(2, b"running bdist_wheel\n")
    assert named is None
    assert capfd.readouterr().err == "running bdist_wheel\n"
    assert not (tmp_path / run_log.LOG_NAME).exists()
    monkeypatch.setenv(run_log.VERBOSE_ENV, "1")
    assert run_log.verbose_from_env()
    monkeypatch.setenv(run_log.VERBOSE_ENV, "0")
    assert not run_log.verbose_from_env()


def test_only_the_projects_warnings_reach_the_console():
    def record(name, level, **extra):
        r = logging.LogRecord(name, level, "f.py", 1, "m", None, None)
        r.__dict__.update(extra)
        return r
    own = os.path.join(run_log.REPO, "trainer", "runtime.py")
    assert run_log.on_console(record("absl", logging.ERROR))
    assert not run_log.on_console(record("absl", logging.WARNING))
    assert not run_log.on_console(record("pipeline", logging.INFO))
    assert run_log.on_console(record("st_model.evaluation", logging.WARNING))
    assert run_log.on_console(record("core.files", logging.WARNING))
    assert run_log.on_console(record("py.warnings", logging.WARNING, warning_file=own))
    assert not run_log.on_console(record(
        "py.warnings", logging.WARNING,
        warning_file=os.path.join(sys.prefix, "lib", "google", "api_core", "x.py")))
