# Two commands do everything on a fresh clone:
#   make test   create .venv from requirements.txt if needed, then run the test suite
#   make demo   run the main job on a built-in default (see README)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo params venv clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e .
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(PY) scripts/demo.py

params: $(STAMP)
	$(PY) scripts/count_params.py --write-docs

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info
