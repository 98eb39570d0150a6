#!/usr/bin/env bash
# Installs what the test suite needs beyond `npm ci`, idempotently and offline-friendly:
# Debian packages (when missing and apt is usable), a project-local Python virtualenv with
# MLflow, and the native TensorFlow backend built from a PyPI wheel. Each step is skipped
# when its result is already there, so a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

# The project-local Python virtualenv: MLflow, TensorFlow/Keras and Optuna (scripts/setup-venv.sh).
bash scripts/setup-venv.sh

# The native TensorFlow backend (@tensorflow/tfjs-node) built from a PyPI wheel, so the
# training tests also run on the binding GPU users run. Skipped in seconds when built.
if [ "${EXP_SKIP_NATIVE:-}" != "1" ]; then
  bash scripts/build-native-backend.sh
  # The GPU build too (TensorFlow's CUDA wheel, 620 MB, cached in ~/.cache/exp/native; ~30 s to
  # build): test/backend/gpu-build.test.ts trains one epoch with it on the CPU.
  bash scripts/build-native-backend.sh --gpu
fi

# Debian packages, installed system-wide without their recommends (a desktop's worth of packages
# otherwise): headless Chromium for test/e2e/mlflow-ui.test.ts (driven by playwright-core;
# Debian's package, so no browser download from a CDN), and redis-server for the BullMQ queue
# tests (test/exec/queue.test.ts starts its own on a free port). One apt-get for both.
missing=()
# fonts-liberation: the one recommend of Chromium's that a headless page needs (text in screenshots).
[ -x /usr/bin/chromium ] || missing+=(chromium fonts-liberation)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v openssl >/dev/null 2>&1 || missing+=(openssl) # test/exec/queue-tls.test.ts makes a certificate
# A one-node Slurm cluster for test/slurm/ (test/helpers/slurm-cluster.ts configures and starts its own; no systemd needed).
for b in /usr/sbin/slurmctld:slurmctld /usr/sbin/slurmd:slurmd /usr/sbin/munged:munge /usr/bin/sbatch:slurm-client; do [ -x "${b%%:*}" ] || missing+=("${b##*:}"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-test-env: chromium, redis-server and slurm present ($(/usr/bin/chromium --version 2>/dev/null | head -n1); $(redis-server --version | cut -d' ' -f3))"
elif [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup-test-env: installing ${missing[*]} with apt-get"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # The package starts a system-wide Redis on port 6379; the tests start their own.
  if command -v systemctl >/dev/null 2>&1; then systemctl stop redis-server >/dev/null 2>&1 || true; fi
  # Likewise munge and Slurm's own daemons, where systemd started them: the tests run their own cluster.
  if command -v systemctl >/dev/null 2>&1; then systemctl stop slurmd slurmctld munge >/dev/null 2>&1 || true; fi
else
  echo "setup-test-env: missing ${missing[*]}; install with: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
fi
