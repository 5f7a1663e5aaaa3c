# syntax=docker/dockerfile:1
#
# The jobwarden operator image: `jobwarden` (the operator, the entrypoint) and
# `kubectl-jobwarden` (the plugin) in a virtualenv on a slim Python base,
# running as the non-root uid/gid 65532.
#
#   make image          (docker or podman; IMAGE=repo:tag to name it)
#
# Supply chain: the base image is pinned by digest (the multi-arch index of
# python:3.11-slim-bookworm, Python 3.11.16, as recorded by the official
# image's repo-info), and every dependency is installed from requirements.lock
# (pip-compile --generate-hashes of pyproject.toml; `make lock` refreshes it)
# with --require-hashes and wheels only: nothing unpinned, nothing built from
# an unverified source. The project's own wheel is built with the base
# image's setuptools (part of the pinned digest), without build isolation, so
# no build dependency is fetched either. tests/unit/test_supply_chain.py
# checks that this file, the lock and pyproject.toml agree.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:0bee7276f83efd4a1ee05bbbf4281d95ed28e079220a9457f25a93e3f1e3c31b

# --- build: the dependencies from the lock, then the project wheel, in a venv ---
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY requirements.lock ./
RUN python -m venv /opt/jobwarden \
 && /opt/jobwarden/bin/pip install --require-hashes --only-binary=:all: --no-deps \
        -r requirements.lock
# Only what the wheel is built from (see .dockerignore).
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN python -m pip wheel --no-deps --no-build-isolation --wheel-dir /dist . \
 && /opt/jobwarden/bin/pip install --no-deps /dist/jobwarden-*.whl \
 && /opt/jobwarden/bin/pip check \
 && /opt/jobwarden/bin/python -m pip uninstall --yes pip setuptools wheel \
 && /opt/jobwarden/bin/jobwarden --help >/dev/null \
 && /opt/jobwarden/bin/kubectl-jobwarden --help >/dev/null

# --- runtime: the venv only, no compilers, no pip ---
FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="jobwarden" \
      org.opencontainers.image.description="Kubernetes operator that runs scheduled batch work safely" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# A named user for uid 65532, so that libraries asking for the user name
# (getpass, kopf's identity when POD_ID is unset) get an answer.
RUN groupadd --gid 65532 jobwarden \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin jobwarden
COPY --from=build /opt/jobwarden /opt/jobwarden
ENV PATH=/opt/jobwarden/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp
# The root filesystem may be read-only (the chart mounts /tmp writable).
WORKDIR /tmp
USER 65532:65532
# metrics, health
EXPOSE 8080 8081
ENTRYPOINT ["jobwarden"]
