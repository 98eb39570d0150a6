#!/usr/bin/env bash
# Installs what the test suite needs beyond `npm ci`, idempotently and offline-friendly:
# Debian packages (when missing and apt is usable), a project-local Python virtualenv with
# MLflow, and the native TensorFlow backend built from a PyPI wheel. Each step is skipped
# when its result is already there, so a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

# MLflow tracking server for test/track (test/helpers/mlflow-server.ts starts .venv/bin/mlflow).
# Pinned: the REST behaviour src/track/mlflow.ts relies on (error codes, limits, the artifact
# proxy) was checked against this version. (3.18.0 is on PyPI but needs an mlflow-skinny
# 3.18.0 that was not.) pip's cache (~/.cache/pip) makes a reinstall mostly offline.
MLFLOW_VERSION=3.17.2
if [ ! -x .venv/bin/mlflow ]; then
  echo "setup-test-env: creating .venv with mlflow==${MLFLOW_VERSION}"
  python3 -m venv .venv
  .venv/bin/pip install --quiet "mlflow==${MLFLOW_VERSION}"
else
  have=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("mlflow"))' 2>/dev/null || echo unknown)
  echo "setup-test-env: .venv/bin/mlflow present (mlflow ${have})"
  [ "$have" = "$MLFLOW_VERSION" ] || echo "setup-test-env: warning: tests are pinned to mlflow ${MLFLOW_VERSION}; rm -r .venv and rerun to match" >&2
fi

# The native TensorFlow backend (@tensorflow/tfjs-node) built from a PyPI wheel, so the
# training tests also run on the binding GPU users run. Skipped in seconds when built.
if [ "${EXP_SKIP_NATIVE:-}" != "1" ]; then
  bash scripts/build-native-backend.sh
fi

# Headless Chromium for test/e2e/mlflow-ui.test.ts (driven by playwright-core; the test skips
# without it). Debian's package, so no browser download from a CDN.
if [ -x /usr/bin/chromium ]; then
  echo "setup-test-env: /usr/bin/chromium present ($(/usr/bin/chromium --version 2>/dev/null | head -n1))"
elif [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup-test-env: installing chromium with apt-get"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
else
  echo "setup-test-env: /usr/bin/chromium is missing; the MLflow UI test will be skipped. Install it with: sudo apt-get install -y chromium" >&2
fi
