# The two commands of README.md:
#   make run    bring up the local control plane, install the CRD, apply examples/, run the operator
#   make test   run the whole test suite (unit tests and tests against the real control plane)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
CLUSTER := tests/controlplane/cluster.sh
WORKERS ?= 4

.PHONY: venv cluster run test unit lint down

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
	kubectl wait --for=condition=Established --timeout=60s crd/jobschedules.jobwarden.io >/dev/null && \
	kubectl apply -f examples/ && \
	echo "KUBECONFIG=$$KUBECONFIG  (try: kubectl get jobschedules -A -w)" && \
	JOBWARDEN_METRICS_ADDRESS=127.0.0.1:8080 JOBWARDEN_HEALTH_ADDRESS=127.0.0.1:8081 jobwarden

test: venv cluster
	$(VENV)/bin/pytest -n $(WORKERS) --dist loadgroup -q

unit: venv
	$(VENV)/bin/pytest -m "not cluster" -q

lint: venv
	$(VENV)/bin/ruff check operator tests bench hack
	$(VENV)/bin/ruff format --check operator tests bench hack
	$(VENV)/bin/mypy

down:
	bash $(CLUSTER) down
