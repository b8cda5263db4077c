# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= dev,dev-models,serve,sklearn,batch

.PHONY: install run test test-mlflow lint bench proto clean

$(VENV)/.installed-$(subst ,,$(EXTRAS)): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	touch $@

install: $(VENV)/.installed-$(subst ,,$(EXTRAS))

run: install
	$(PY) examples/quickstart.py

test: install
	$(PY) -m pytest -n 2 --dist loadfile -q --ignore=tests/deployers/mlflow

# The mlflow flavor against a real MLflow tracking server: the mlflow extra (about 70 s
# more to install) in the same venv, and its own run, so `make test` stays quick.
test-mlflow:
	$(MAKE) install EXTRAS=$(EXTRAS),mlflow
	$(PY) -m pytest -q -p no:cacheprovider tests/deployers/mlflow

lint: install
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy src tests

bench: install
	$(PY) benchmarks/run.py

proto: install
	$(PY) -m shipyard.serving.grpc.generate

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
