# syntax=docker/dockerfile:1
#
# The jobwarden operator image: `jobwarden` (the operator, the entrypoint) and
# `kubectl-jobwarden` (the plugin) in a virtualenv on a slim Python base,
# running as the non-root uid/gid 65532.
#
#   docker build -t jobwarden/jobwarden:0.1.0 .
#
# The base is pinned by tag here; production builds pin it by digest too
# (python:3.11-slim-bookworm@sha256:...), passed as --build-arg PYTHON_IMAGE=...
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the project wheel and its dependencies, installed in a venv ---
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Only what the wheel is built from (see .dockerignore).
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN python -m pip wheel --no-deps --wheel-dir /dist . \
 && python -m venv /opt/jobwarden \
 && /opt/jobwarden/bin/pip install /dist/jobwarden-*.whl \
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
