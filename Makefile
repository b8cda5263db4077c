# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= dev,dev-models,serve,sklearn,batch

.PHONY: install run test test-torch test-mlflow test-ray test-k8s lint bench soak proto clean

$(VENV)/.installed-$(subst ,,$(EXTRAS)): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	touch $@

install: $(VENV)/.installed-$(subst ,,$(EXTRAS))

run: install
	$(PY) examples/quickstart.py

test: install
	$(PY) -m pytest -n 2 --dist loadfile -q --ignore=tests/deployers/mlflow --ignore=tests/on_ray

# The mlflow flavor against a real MLflow tracking server: the mlflow extra (about 70 s
# more to install) in the same venv, and its own run, so `make test` stays quick. uv (for
# the env_manager: uv test) goes beside the venv's bin: another test needs a PATH without it.
test-mlflow:
	$(MAKE) install EXTRAS=$(EXTRAS),mlflow
	test -x $(VENV)/uv-tool/bin/uv || $(PY) -m pip install -q --target $(VENV)/uv-tool uv
	SHIPYARD_TEST_SKIPS_FAIL=1 $(PY) -m pytest -q -p no:cacheprovider tests/deployers/mlflow

# The PyTorch formats (TorchScript, torch.export) with the torch extra (the CPU build of
# torch==2.13.0 that pip takes from this machine's disk), in the main venv; skips fail here.
test-torch:
	$(MAKE) install EXTRAS=$(EXTRAS),torch
	SHIPYARD_TEST_SKIPS_FAIL=1 $(PY) -m pytest -q -p no:cacheprovider tests/models -k torch

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

# Mixed valid, malformed and hostile traffic for SOAK_SECONDS (default 60); not in `test`.
soak: install
	$(PY) benchmarks/soak.py

proto: install
	$(PY) -m shipyard.serving.grpc.generate

# The serving runtimes of Kubernetes pods (MLServer + mlserver-sklearn, kserve.ModelServer)
# loading what the kserve/seldon flavors upload. Their pins (protobuf 5, uvloop 0.21)
# conflict with the main venv: their own venv, without shipyard[serve].
K8S_VENV ?= .venv-k8s
K8S_PINS = mlserver==1.7.1 mlserver-sklearn==1.7.1 kserve==0.16.0 uvloop==0.21.0

$(K8S_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(K8S_VENV)
	$(K8S_VENV)/bin/python -m pip install -q --upgrade pip
	$(K8S_VENV)/bin/python -m pip install -q -e '.[kubernetes,sklearn]' $(K8S_PINS) \
		pytest pytest-timeout
	touch $@

test-k8s: $(K8S_VENV)/.installed
	SHIPYARD_K8S_RUNTIMES=1 $(K8S_VENV)/bin/python -m pytest tests/k8s_runtimes -q -p no:cacheprovider

clean:
	rm -rf $(VENV) $(K8S_VENV) $(RAY_VENV) .pytest_cache .mypy_cache .ruff_cache
