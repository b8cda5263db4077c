# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= dev,dev-models,serve,sklearn,batch

.PHONY: install run test lint bench soak proto clean

$(VENV)/.installed-$(subst ,,$(EXTRAS)): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	touch $@

install: $(VENV)/.installed-$(subst ,,$(EXTRAS))

run: install
	$(PY) examples/quickstart.py

test: install
	$(PY) -m pytest -n 2 --dist loadfile -q

lint: install
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy src tests

bench: install
	$(PY) benchmarks/run.py

# Mixed valid, malformed and hostile traffic for SOAK_SECONDS (default 60); not in `test`.
soak: install
	$(PY) benchmarks/soak.py

proto: install
	$(PY) -m shipyard.serving.grpc.generate

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
