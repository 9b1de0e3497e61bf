# Two commands do everything on a fresh clone:
#   make test        create .venv from requirements.txt if needed, then run the whole test suite
#   make demo        run the main job on a built-in default (see README)
# and for development:
#   make test-fast   the suite without the tests marked slow (end-to-end runs, subprocesses)
#   make lint        ruff: lint and format check
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test test-fast lint demo params venv clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e .
	touch $(STAMP)

# Two pytest workers on two cores, one torch thread each: the suite's many small tests and
# subprocesses keep both cores busy without their threads spinning against each other.
PYTEST := OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2

test: $(STAMP)
	$(PYTEST)

test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

demo: $(STAMP)
	$(PY) scripts/demo.py

params: $(STAMP)
	$(PY) scripts/count_params.py --write-docs

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info
