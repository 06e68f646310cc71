# TFusion-TFX. Two commands do everything on a fresh machine:
#   make demo   - create .venv (first time only) and run the TFX pipeline on SynthReID
#   make test   - create .venv (first time only) and run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo_out
PYTEST_ARGS ?=

export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONWARNINGS := ignore::FutureWarning,ignore::DeprecationWarning

.PHONY: demo test venv clean

venv: $(STAMP)

# tfx / ml-pipelines-sdk 1.16 declare Requires-Python < 3.11 but are pure Python and
# work on 3.11; every other package of the pinned set has a cp311 wheel. The pinned set
# is installed exactly as frozen (--no-deps), so two installs are identical.
$(STAMP): constraints.txt setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade "pip==26.3" "setuptools==84.2.1" "wheel==0.48.0"
	$(BIN)/python -m pip install -q --disable-pip-version-check --ignore-requires-python --no-deps -r constraints.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tfusion run --preset demo --output-dir $(DEMO_OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS) tests

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache *.egg-info
