#!/usr/bin/env bash
# The browser the dashboard's browser tests drive: Debian's chromium and its
# chromium-driver, from the distribution's own packages (never a browser build
# downloaded at run time). Idempotent and quiet: does nothing when both are
# there. Run by `make test` (and so by .ci/run) before pytest.
set -euo pipefail
have() { command -v "$1" >/dev/null 2>&1; }
if have chromium && have chromedriver; then
  exit 0
fi
if ! have apt-get; then
  echo "install-browser: chromium and chromedriver are missing and this machine has no apt-get;" \
    "install Debian's chromium and chromium-driver (or your system's equivalent) by hand" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
have chromium && have chromedriver
