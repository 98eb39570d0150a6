#!/usr/bin/env bash
# The project-local Python virtualenv (.venv) that the tests and `npm run parity` use: MLflow (the
# real tracking server the tests start, and its Python client that reads runs back) and
# TensorFlow/Keras (the reference `exp export` and the parity bench are checked against), and Optuna
# (the reference exp's adaptive search is checked against).
# Idempotent: each step is skipped when its result is there, so a second run takes seconds;
# pip's cache (~/.cache/pip) makes a reinstall mostly offline. Called by setup-test-env.sh and
# by `npm run parity`.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned: the REST behaviour src/mlflow/ relies on (error codes, limits, the artifact proxy) was
# checked against this version. (3.18.0 is on PyPI but needs an mlflow-skinny 3.18.0 that was not.)
MLFLOW_VERSION=3.17.2
if ! command -v python3 >/dev/null 2>&1; then
  echo "setup-venv: python3 is missing: install it (Debian: apt-get install -y --no-install-recommends python3 python3-venv) and rerun" >&2
  exit 1
fi
if [ ! -x .venv/bin/mlflow ]; then
  echo "setup-venv: creating .venv with mlflow==${MLFLOW_VERSION}"
  python3 -m venv .venv
  .venv/bin/pip install --quiet "mlflow==${MLFLOW_VERSION}"
else
  have=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("mlflow"))' 2>/dev/null || echo unknown)
  echo "setup-venv: .venv/bin/mlflow present (mlflow ${have})"
  [ "$have" = "$MLFLOW_VERSION" ] || echo "setup-venv: warning: tests are pinned to mlflow ${MLFLOW_VERSION}; rm -r .venv and rerun to match" >&2
fi

# TensorFlow/Keras: the tests check that `exp export --format keras-h5` opens in Keras and predicts
# what exp predicts, and `npm run parity` trains the recipe in Keras. The CPU wheel is enough.
TENSORFLOW_VERSION=2.20.0
if ! .venv/bin/python -c "import tensorflow" >/dev/null 2>&1; then
  echo "setup-venv: installing tensorflow-cpu==${TENSORFLOW_VERSION} into .venv"
  .venv/bin/pip install --quiet "tensorflow-cpu==${TENSORFLOW_VERSION}"
else
  echo "setup-venv: .venv has tensorflow $(.venv/bin/python -c 'import tensorflow as t; print(t.__version__)' 2>/dev/null)"
fi

# Optuna in the same .venv: test/search checks exp's ASHA and Hyperband decision for decision
# against Optuna's pruners, and its TPE against Optuna's TPESampler (test/search/optuna-ref.py).
# Pinned: the defaults exp matches (multivariate TPE with constant liar, eta 4 / 3) are 5.0's.
OPTUNA_VERSION=5.0.0
have_optuna=$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("optuna"))' 2>/dev/null || echo none)
if [ "$have_optuna" != "$OPTUNA_VERSION" ]; then
  echo "setup-venv: installing optuna==${OPTUNA_VERSION} into .venv (found ${have_optuna})"
  .venv/bin/pip install --quiet "optuna==${OPTUNA_VERSION}"
else
  echo "setup-venv: .venv has optuna ${have_optuna}"
fi
