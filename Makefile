# The two set-up commands of the README. Each creates its own virtual environment, so nothing
# installed by hand is needed: `make quickstart` trains the CPU quickstart, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: quickstart test test-fast lint install system-packages prometheus benchmarks curriculum-benchmark

quickstart: $(VENV)/.installed
	$(BIN)/autocurriculum run policies/tiny.toml

test: $(VENV)/.installed system-packages lint
	$(BIN)/python -m pytest -q

# The fast tier (not a set-up command): the pure core and the daemon on a scripted trainer, no JAX
# imported (tests/conftest.py checks it), two workers. `make test` runs these and everything else.
FAST_TESTS := $(addprefix tests/test_,$(addsuffix .py,policy plan contract rewards plateau controller observation \
	replay data data_stream behaviour_mix checkpoint control cli_validate logs daemon_harness import_graph library \
	user_rewards tensorboard grading task_shapes coordination))
test-fast: $(VENV)/.installed
	AUTOCURRICULUM_FAST_TIER=1 $(BIN)/python -m pytest -q -n 2 -m "not slow" $(FAST_TESTS)

# The linter and the type checker over src/ (configured in pyproject.toml); `make test` runs them first.
lint: $(VENV)/.installed
	$(BIN)/ruff check src
	$(BIN)/mypy

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,gemma3-270m]"
	touch $@

# Prometheus and promtool (the tests start their own server) and Chromium (the run report's browser
# test) come from Debian's packages: one apt-get update, and only what is missing is installed.
system-packages:
	@missing=""; \
	command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || missing="prometheus"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	[ -z "$$missing" ] || ( $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing )

prometheus: system-packages

benchmarks: $(VENV)/.installed
	$(BIN)/python benchmarks/rewards.py
	$(BIN)/python benchmarks/plateau.py
	$(BIN)/python benchmarks/data.py

curriculum-benchmark: $(VENV)/.installed  # about an hour on 2 cores: 4 regimes x 5 seeds x 2 difficulties
	$(BIN)/python benchmarks/curriculum.py --jobs 2
