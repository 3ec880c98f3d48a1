# The two set-up commands of the README. Each creates its own virtual environment, so nothing
# installed by hand is needed: `make quickstart` trains the CPU quickstart, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: quickstart test install prometheus benchmarks curriculum-benchmark

quickstart: $(VENV)/.installed
	$(BIN)/autocurriculum run policies/tiny.toml

test: $(VENV)/.installed prometheus
	$(BIN)/python -m pytest -q

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,gemma3-270m]"
	touch $@

# Prometheus and promtool come from Debian's packages; the tests start their own server.
prometheus:
	@command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || \
	  ( $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends prometheus )

benchmarks: $(VENV)/.installed
	$(BIN)/python benchmarks/rewards.py
	$(BIN)/python benchmarks/plateau.py
	$(BIN)/python benchmarks/data.py

curriculum-benchmark: $(VENV)/.installed  # about an hour on 2 cores: 4 regimes x 5 seeds x 2 difficulties
	$(BIN)/python benchmarks/curriculum.py --jobs 2
