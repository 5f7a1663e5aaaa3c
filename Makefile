# The two commands of README.md:
#   make run    bring up the local control plane, install the CRD, apply examples/, run the operator
#               (plain-HTTP /metrics on 127.0.0.1:8080: local development only)
#   make test   run the whole test suite (unit tests and tests against the real control plane)
# and for the image:
#   make lock   refresh requirements.lock (pinned, hashed runtime dependencies) from pyproject.toml
#   make image  build the operator image with docker or podman (IMAGE=repo:tag)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
CLUSTER := tests/controlplane/cluster.sh
WORKERS ?= 4
LOCK := requirements.lock
IMAGE ?= jobwarden/jobwarden:$(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

.PHONY: venv cluster browser run test unit lint down lock image

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

cluster:
	bash $(CLUSTER) up >/dev/null

run: venv cluster
	@export KUBECONFIG=$$(bash $(CLUSTER) kubeconfig) PATH=$$(bash $(CLUSTER) bin-dir):$(CURDIR)/$(VENV)/bin:$$PATH; \
	kubectl apply --server-side -f crds/ >/dev/null && \
	(for try in 1 2 3 4 5 6 7 8 9 10; do \
	  kubectl wait --for=condition=Established --timeout=60s crd/jobschedules.jobwarden.io >/dev/null 2>&1 && exit 0; \
	  sleep 1; done; exit 1) && \
	kubectl apply -f examples/ && \
	echo "KUBECONFIG=$$KUBECONFIG  (try: kubectl get jobschedules -A -w)" && \
	JOBWARDEN_METRICS_ADDRESS=127.0.0.1:8080 JOBWARDEN_METRICS_SECURE=false JOBWARDEN_HEALTH_ADDRESS=127.0.0.1:8081 jobwarden

# The dashboard's browser tests drive Debian's chromium: installed first when missing.
browser:
	bash hack/install-browser.sh

test: venv cluster browser
	$(VENV)/bin/pytest -n $(WORKERS) --dist loadgroup -q

unit: venv
	$(VENV)/bin/pytest -m "not cluster" -q

lint: venv
	$(VENV)/bin/ruff check operator tests bench hack
	$(VENV)/bin/ruff format --check operator tests bench hack
	$(VENV)/bin/mypy

down:
	bash $(CLUSTER) down

# The newest versions pyproject.toml allows, each pinned with the hashes of all
# its files (every platform's wheels), for the Python the image runs (3.11).
lock: venv
	$(VENV)/bin/pip-compile --quiet --upgrade --generate-hashes --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links --output-file $(LOCK) pyproject.toml

image:
	@engine=$$(command -v docker || command -v podman || true); \
	if [ -z "$$engine" ]; then \
		echo "make image: no container engine (docker or podman) on this machine; nothing built." >&2; \
		echo "The Dockerfile is still checked by tests/unit/test_supply_chain.py." >&2; \
		exit 1; \
	fi; \
	if ! "$$engine" info >/dev/null 2>&1; then \
		echo "make image: $$engine is installed but its engine does not answer (no daemon?); nothing built." >&2; \
		exit 1; \
	fi; \
	"$$engine" build --tag $(IMAGE) .
