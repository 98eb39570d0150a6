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

# TensorFlow/Keras in the same .venv: the tests check that `exp export --format keras-h5` opens
# in Keras (keras.models.load_model) and predicts what exp predicts, and `npm run parity` trains
# the recipe in Keras. The CPU wheel is enough. Pinned for the same reason as MLflow.
TENSORFLOW_VERSION=2.20.0
if ! .venv/bin/python -c "import tensorflow" >/dev/null 2>&1; then
  echo "setup-test-env: installing tensorflow-cpu==${TENSORFLOW_VERSION} into .venv"
  .venv/bin/pip install --quiet "tensorflow-cpu==${TENSORFLOW_VERSION}"
else
  echo "setup-test-env: .venv has tensorflow $(.venv/bin/python -c 'import tensorflow as t; print(t.__version__)' 2>/dev/null)"
fi

# The native TensorFlow backend (@tensorflow/tfjs-node) built from a PyPI wheel, so the
# training tests also run on the binding GPU users run. Skipped in seconds when built.
if [ "${EXP_SKIP_NATIVE:-}" != "1" ]; then
  bash scripts/build-native-backend.sh
  # The GPU build too (TensorFlow's CUDA wheel, 620 MB, cached in ~/.cache/exp/native; ~30 s to
  # build): test/backend/gpu-build.test.ts trains one epoch with it on the CPU.
  bash scripts/build-native-backend.sh --gpu
fi

# Debian packages: headless Chromium for test/e2e/mlflow-ui.test.ts (driven by playwright-core;
# Debian's package, so no browser download from a CDN), and redis-server for the BullMQ queue
# tests (test/exec/queue.test.ts starts its own on a free port). One apt-get for both.
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v openssl >/dev/null 2>&1 || missing+=(openssl) # test/exec/queue-tls.test.ts makes a certificate
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-test-env: chromium and redis-server present ($(/usr/bin/chromium --version 2>/dev/null | head -n1); $(redis-server --version | cut -d' ' -f3))"
elif [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup-test-env: installing ${missing[*]} with apt-get"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  # The package starts a system-wide Redis on port 6379; the tests start their own.
  if command -v systemctl >/dev/null 2>&1; then systemctl stop redis-server >/dev/null 2>&1 || true; fi
else
  echo "setup-test-env: missing ${missing[*]}; install with: sudo apt-get install -y ${missing[*]}" >&2
fi
