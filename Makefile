# Two commands on a fresh clone: `make lab` to learn, `make test` to check everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The lessons, then the exercise solutions (notebooks/solutions/), which the tests run too.
NOTEBOOKS ?= $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb)) $(sort $(wildcard notebooks/solutions/[0-9][0-9]_*.ipynb))
# The test configuration: seeded stand-in weights (no network), shortened benchmark grid.
TEST_ENV := COURSE_WEIGHTS=standin COURSE_QUICK=1 PYTHONHASHSEED=0 MPLBACKEND=Agg
# Stored outputs: `make publish` runs the full configuration; WEIGHTS=auto (or a .pth path) publishes
# real predictions where ImageNet weights can be had. The tests, on stand-ins, still pass after it.
WEIGHTS ?= standin
PUBLISH_ENV := COURSE_WEIGHTS=$(WEIGHTS) PYTHONHASHSEED=0 MPLBACKEND=Agg
# JupyterLab refuses to run as root (containers often do) unless told so explicitly.
LAB_ARGS := --notebook-dir=notebooks --ServerApp.ip=127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root)
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
# Notebook 10 drives Debian's Chromium; where it is missing, make test leaves that notebook out and says so.
BROWSER_NOTEBOOKS := notebooks/10_in_the_browser.ipynb notebooks/solutions/10_in_the_browser_solutions.ipynb
HAVE_CHROMIUM := $(shell command -v chromium 2>/dev/null)
TESTED_NOTEBOOKS := $(if $(HAVE_CHROMIUM),$(NOTEBOOKS),$(filter-out $(BROWSER_NOTEBOOKS),$(NOTEBOOKS)))

.PHONY: install lab test test-matrix unit execute publish weights clean

# Extra pip options, e.g. PyTorch's CPU-only wheels for laptops without an NVIDIA GPU (see README):
# make install PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple"
PIP_ARGS ?=
# JupyterLab settings of this venv only: no news feed, no update check, no pop-up asking about them.
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_ARGS) --constraint constraints.txt --editable ".[course,lab,test]"
	mkdir -p $(dir $(LAB_OVERRIDES))
	echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' > $(LAB_OVERRIDES)
	touch $@

install: $(STAMP)  ## create .venv and install the course with its tested versions

lab: install  ## start JupyterLab on the notebooks (open the URL it prints)
	$(BIN)/jupyter lab $(LAB_ARGS)

# onnxruntime-web for notebook 10 (pinned, hash-checked, from npm), or one line saying why it is left out.
BROWSER_SETUP := $(if $(HAVE_CHROMIUM),$(BIN)/python book/build.py --vendor-only,@echo "notebook 10 is left out: it needs Chromium (sudo apt-get install -y chromium fonts-noto-cjk)")

test: install  ## unit tests plus every notebook under nbval, offline and deterministic
	$(BROWSER_SETUP)
	$(TEST_ENV) $(BIN)/python -m pytest tests $(TESTED_NOTEBOOKS) $(NBVAL)

test-matrix: install  ## the lessons again on hostile images, and refreshed as another machine would (weights, 1 thread, AVX2)
	$(BIN)/python tests/matrix.py

unit: install  ## unit tests only
	$(TEST_ENV) $(BIN)/python -m pytest tests

execute: install  ## re-run notebooks in place in the quick test configuration (a fast refresh)
	$(BROWSER_SETUP)
	for nb in $(TESTED_NOTEBOOKS); do \
		$(TEST_ENV) COURSE_WEIGHTS=$(WEIGHTS) $(BIN)/jupyter nbconvert --to notebook --execute --inplace "$$nb" || exit 1; \
	done

publish: install  ## re-run notebooks in place in the full configuration: the outputs readers see
	$(BROWSER_SETUP)
	for nb in $(TESTED_NOTEBOOKS); do \
		$(PUBLISH_ENV) $(BIN)/jupyter nbconvert --to notebook --execute --inplace "$$nb" || exit 1; \
	done

# make serve: the classifier over HTTP on 127.0.0.1 (notebook 11). THREADS=0: the cores shared among workers.
PORT ?= 8000
MODEL ?= resnet18
WORKERS ?= 1
THREADS ?= 0
.PHONY: serve

serve: install  ## serve MODEL at http://127.0.0.1:PORT (exported first if needed); Ctrl+C stops it
	$(BIN)/python -m course_utils.serve --model $(MODEL) --port $(PORT) --workers $(WORKERS) --threads $(THREADS)

weights: install  ## download every ImageNet weight file the course uses (hash-checked)
	$(BIN)/python -c "from course_utils.weights import download_all; [print(p) for p in download_all()]"

# The course website (book/): Sphinx + myst-nb, built from the stored notebooks without running them.
BOOK_STAMP := $(VENV)/.installed-book
.PHONY: book book-test serve-book

$(BOOK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --constraint constraints.txt --editable ".[course,lab,test,book]"
	touch $@

book: $(BOOK_STAMP)  ## build the course website into _build/html from the stored notebooks (no re-execution)
	COURSE_WEIGHTS=$(WEIGHTS) $(BIN)/python book/build.py

book-test: book  ## build the website, then check every page in headless Chromium (see README)
	@command -v chromium >/dev/null || \
		{ echo "make book-test needs Chromium: sudo apt-get install -y chromium fonts-noto-cjk"; exit 1; }
	$(BIN)/python -m pytest tests/test_site.py tests/test_live_page.py

serve-book: book  ## serve the website at http://127.0.0.1:PORT with the headers its live page needs for threads
	$(BIN)/python -m course_utils.browser serve _build/html --port $(PORT)

clean:  ## remove exported models and results (keeps .venv)
	rm -rf models results
	rm -rf _build
