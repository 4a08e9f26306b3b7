# Two commands on a fresh clone: `make lab` to learn, `make test` to check everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOKS ?= $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
# The test configuration: seeded stand-in weights (no network), shortened benchmark grid.
TEST_ENV := COURSE_WEIGHTS=standin COURSE_QUICK=1 PYTHONHASHSEED=0 MPLBACKEND=Agg
# JupyterLab refuses to run as root (containers often do) unless told so explicitly.
LAB_ARGS := --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root)
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: install lab test unit execute weights clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --constraint constraints.txt --editable ".[lab,test]"
	touch $@

install: $(STAMP)  ## create .venv and install the course with its tested versions

lab: install  ## start JupyterLab on the notebooks (open the URL it prints)
	$(BIN)/jupyter lab $(LAB_ARGS)

test: install  ## unit tests plus every notebook under nbval, offline and deterministic
	$(TEST_ENV) $(BIN)/python -m pytest tests $(NOTEBOOKS) $(NBVAL)

unit: install  ## unit tests only
	$(TEST_ENV) $(BIN)/python -m pytest tests

execute: install  ## re-run notebooks in place in the test configuration (refreshes stored outputs)
	for nb in $(NOTEBOOKS); do \
		$(TEST_ENV) $(BIN)/jupyter nbconvert --to notebook --execute --inplace "$$nb" || exit 1; \
	done

weights: install  ## download every ImageNet weight file the course uses (hash-checked)
	$(BIN)/python -c "from course_utils.weights import download_all; [print(p) for p in download_all()]"

clean:  ## remove exported models and results (keeps .venv)
	rm -rf models results
