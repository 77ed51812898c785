# The README's commands. Every target creates .venv and installs the project when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed-test
BENCH_INSTALLED := $(VENV)/.installed-bench
PORT ?= 8888
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: lab test bench lint format demo release autograde feedback grades clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "course_ad needs Python 3.11 or newer; set PYTHON=python3.11 (or newer)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $@

$(BENCH_INSTALLED): pyproject.toml $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	@touch $@

lab: $(INSTALLED)  ## JupyterLab on the course, on 127.0.0.1
	@echo "Starting JupyterLab on http://127.0.0.1:$(PORT)/lab (Ctrl-C to stop)"
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.port=$(PORT) \
		--ServerApp.root_dir=. --ServerApp.open_browser=True $(ROOT_FLAG)

test: $(INSTALLED)  ## the whole suite
	$(BIN)/python -m pytest

bench: $(BENCH_INSTALLED)  ## speed against peers measured in the same run
	$(BIN)/python -m benchmarks

demo: $(INSTALLED)  ## train an MLP on the digits in the terminal
	$(BIN)/python -m course_ad demo

release: $(INSTALLED)  ## source/ -> release/ (nbgrader generate_assignment)
	$(BIN)/python -m course_ad release

# `make autograde -j N` grades N submissions at once (default: one per core)
JOBS = $(patsubst -j%,%,$(filter -j%,$(MAKEFLAGS)))

autograde: $(INSTALLED)  ## grade everything in submitted/, sandboxed
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m course_ad autograde $(if $(JOBS),--jobs $(JOBS)) $(ARGS)

feedback: $(INSTALLED)  ## feedback/ for every autograded submission, hidden tests removed
	$(BIN)/python -m course_ad feedback

grades: $(INSTALLED)  ## grades.csv from the gradebook
	$(BIN)/python -m course_ad grades

lint: $(INSTALLED)
	$(BIN)/ruff check .

format: $(INSTALLED)
	$(BIN)/ruff format course_ad tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache *.egg-info
