# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= dev,dev-models,serve,sklearn,batch

.PHONY: install run test test-ray lint bench proto clean

$(VENV)/.installed-$(subst ,,$(EXTRAS)): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	touch $@

install: $(VENV)/.installed-$(subst ,,$(EXTRAS))

run: install
	$(PY) examples/quickstart.py

test: install
	$(PY) -m pytest -n 2 --dist loadfile -q --ignore=tests/on_ray

# The ray flavor and the Ray batch engine on a real two-node Ray cluster (127.0.0.1), in a
# venv of their own: Ray is big (~750 MB) and the main venv stays light.
RAY_VENV ?= .venv-ray
test-ray:
	$(MAKE) install VENV=$(RAY_VENV) EXTRAS=dev,sklearn,ray
	$(RAY_VENV)/bin/python -m pytest tests/on_ray -q -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy src tests

bench: install
	$(PY) benchmarks/run.py

proto: install
	$(PY) -m shipyard.serving.grpc.generate

clean:
	rm -rf $(VENV) $(RAY_VENV) .pytest_cache .mypy_cache .ruff_cache
