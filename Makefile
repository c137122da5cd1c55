# Two commands on a fresh machine: `make run` and `make test`. Everything else is set up by
# them: a virtualenv in .venv with the pinned dependencies, and PostgreSQL from a wheel.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test bench protos lint clean

$(STAMP): pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev]' -e clients/python
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/nudge run

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m tests.bench $(BENCH)

protos: setup
	$(BIN)/python -m nudgetools.protogen libs
	$(BIN)/python -m nudgetools.protogen --client clients/python/src/nudge_client/_proto

lint: setup
	cd protos && ../$(BIN)/buf lint

clean:
	rm -rf $(VENV) .pytest_cache
