# The README's commands. Every target creates .venv and installs the project when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
COURSE := $(VENV)/.installed-course
INSTALLED := $(VENV)/.installed-test
BENCH_INSTALLED := $(VENV)/.installed-bench
PORT ?= 8888

# The hub's users run the course from HUB_VENV, built from a Python every account can execute
# (the developer's interpreter may sit in a private home): see docs/deploy.md.
HUB_PYTHON ?= /usr/bin/python3
HUB_VENV := .venv-hub
HUB_INSTALLED := $(HUB_VENV)/.installed
PROXY := node_modules/.bin/configurable-http-proxy
ROSTER ?= roster.csv
EXCHANGE ?= /srv/nbgrader/exchange

.PHONY: lab test bench hub hub-env lint format demo release autograde feedback grades student-bundle clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "course_ad needs Python 3.11 or newer; set PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(COURSE): pyproject.toml | $(BIN)/python  # the course only: no test tools
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $@ $(COURSE)

$(BENCH_INSTALLED): pyproject.toml $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	@touch $@

lab: $(COURSE)  ## the instructor's JupyterLab on 127.0.0.1; the URL with its token comes last
	@PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m course_ad.lab --instructor --port $(PORT)

test: $(INSTALLED)  ## the whole suite
	$(BIN)/python -m pytest

$(HUB_INSTALLED): pyproject.toml
	$(HUB_PYTHON) -m venv $(HUB_VENV)
	$(HUB_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(HUB_VENV)/bin/python -m pip install --quiet -e ".[hub]"
	@touch $@

$(PROXY): package.json
	npm install --no-audit --no-fund --silent
	@touch $@

hub-env: $(HUB_INSTALLED) $(PROXY)  ## the users' environment and the proxy (no hub started)

hub: hub-env  ## JupyterHub on 127.0.0.1:8000 for the roster: ROSTER=roster.csv DEMO=1 EXCHANGE=...
	$(HUB_VENV)/bin/python -m course_ad.hub --roster $(ROSTER) --exchange $(EXCHANGE) $(if $(DEMO),--demo) $(if $(DB),--db $(DB)) $(ARGS)

bench: $(BENCH_INSTALLED)  ## speed against peers measured in the same run
	$(BIN)/python -m benchmarks

demo: $(COURSE)  ## train an MLP on the digits in the terminal
	$(BIN)/python -m course_ad demo

release: $(COURSE)  ## source/ -> release/ (nbgrader generate_assignment)
	$(BIN)/python -m course_ad release

# `make autograde -j N` grades N submissions at once (default: one per core)
JOBS = $(patsubst -j%,%,$(filter -j%,$(MAKEFLAGS)))

autograde: $(COURSE)  ## grade everything in submitted/, sandboxed
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m course_ad autograde $(if $(JOBS),--jobs $(JOBS)) $(ARGS)

feedback: $(COURSE)  ## feedback/ for every autograded submission, hidden tests removed
	$(BIN)/python -m course_ad feedback

grades: $(COURSE)  ## grades.csv from the gradebook
	$(BIN)/python -m course_ad grades

student-bundle: $(COURSE)  ## dist/course_ad-student/ and its zip: release/, lectures, course_ad
	$(BIN)/python -m course_ad.bundle --out dist

lint: $(INSTALLED)
	$(BIN)/ruff check .

format: $(INSTALLED)
	$(BIN)/ruff format course_ad tests benchmarks

clean:
	rm -rf $(VENV) $(HUB_VENV) node_modules dist .pytest_cache .hypothesis .ruff_cache *.egg-info
