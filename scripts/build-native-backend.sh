#!/usr/bin/env bash
# Build the native TensorFlow backend for TensorFlow.js (@tensorflow/tfjs-node)
# without network access to storage.googleapis.com.
#
# tfjs-node's own install script downloads libtensorflow 2.9.1 from Google's
# storage bucket, which this environment cannot reach. Instead we take the
# TensorFlow C API shared libraries from the `tensorflow-cpu` wheel on PyPI,
# lay them out the way tfjs-node's binding.gyp expects
# (node_modules/@tensorflow/tfjs-node/deps/{include,lib}) and compile the addon
# with node-gyp against the local Node headers.
#
# Usage (from the repo root, after `npm ci`, which runs it for you unless EXP_NATIVE=0):
#   bash scripts/build-native-backend.sh [--force] [--gpu]
#
# --gpu builds @tensorflow/tfjs-node-gpu from TensorFlow's CUDA-enabled wheel instead (see
# GPU_TF_VERSION); without a visible GPU the same build runs on the CPU.
# Idempotent: when the addon is already built from the pinned wheel it only
# re-runs the smoke test (about a second). --force (or NATIVE_FORCE=1) rebuilds.
# Cache: $EXP_NATIVE_CACHE (default ~/.cache/exp/native) keeps the downloaded wheels.
# See docs/native-backend.md.

set -euo pipefail

# ---- pinned versions -------------------------------------------------------
TFJS_NODE_VERSION="4.22.0"
# The binding's install.js treats this file as "libtensorflow already present".
LEGACY_LIB_VERSION="2.9.1"

# CPU (default): the smallest cp311 tensorflow-cpu wheel that works (178 MB).
CPU_TF_DIST="tensorflow_cpu"; CPU_TF_VERSION="2.13.1"
CPU_TF_SHA256="87be6e61314b2c0fa062f71e26e41d6a17e162ffe4da72c820fe8f1fc94d97fe"
# GPU (--gpu): TensorFlow 2.20's Linux wheel is CUDA-enabled (CUDA 12.5, cuDNN 9.3; kernels for
# sm_60, sm_70, sm_80, sm_89 and compute_90 PTX, so A100 (sm_80) runs native kernels and H100/H200
# (sm_90) JIT-compile the compute_90 PTX once). Its CUDA runtime comes as nvidia-*-cu12 wheels
# (no system CUDA toolkit), installed next to the library when a GPU is visible (or EXP_CUDA_LIBS=1).
GPU_TF_DIST="tensorflow"; GPU_TF_VERSION="2.20.0"
GPU_TF_SHA256="481499fd0f824583de8945be61d5e827898cdaa4f5ea1bc2cc28ca2ccff8229e"   # 620 MB

# TensorFlow C API functions referenced by tfjs-node 4.22.0's binding/*.cc
# (= the TF_*/TFE_* undefined symbols of the built tfjs_binding.node).
REQUIRED_SYMBOLS=(
  TFE_ContextListDevices TFE_DeleteContext TFE_DeleteContextOptions TFE_DeleteOp
  TFE_DeleteTensorHandle TFE_Execute TFE_NewContext TFE_NewContextOptions TFE_NewOp
  TFE_NewTensorHandle TFE_OpAddInput TFE_OpSetAttrBool TFE_OpSetAttrBoolList
  TFE_OpSetAttrFloat TFE_OpSetAttrFloatList TFE_OpSetAttrInt TFE_OpSetAttrIntList
  TFE_OpSetAttrShape TFE_OpSetAttrString TFE_OpSetAttrType
  TFE_TensorHandleCopyToDevice TFE_TensorHandleDataType TFE_TensorHandleDim
  TFE_TensorHandleNumDims TFE_TensorHandleResolve
  TF_AllocateTensor TF_DataTypeSize TF_DeleteBuffer TF_DeleteDeviceList TF_DeleteGraph
  TF_DeleteSession TF_DeleteSessionOptions TF_DeleteStatus TF_DeleteTensor
  TF_DeviceListCount TF_DeviceListName TF_DeviceListType TF_Dim TF_GetCode
  TF_GraphOperationByName TF_LoadSessionFromSavedModel TF_Message TF_NewBuffer
  TF_NewBufferFromString TF_NewGraph TF_NewSessionOptions TF_NewStatus TF_NewTensor
  TF_NumDims TF_SessionRun TF_TensorByteSize TF_TensorData TF_TensorElementCount
  TF_TensorType TF_Version
)

# Headers the binding includes (transitively): 2.13 and 2.20 keep tsl in different places.
HEADER_GLOBS=(
  "tensorflow/include/tensorflow/c/*"
  "tensorflow/include/tensorflow/core/platform/ctstring*"
  "tensorflow/include/tensorflow/tsl/c/*"
  "tensorflow/include/tensorflow/tsl/platform/ctstring*"
  "tensorflow/include/tsl/platform/ctstring*"
  "tensorflow/include/xla/tsl/c/*"
)

# ---- helpers ----------------------------------------------------------------
log()  { printf '[native-backend] %s\n' "$*"; }
die()  { printf '[native-backend] ERROR: %s\n' "$*" >&2; exit 1; }
step() { printf '[native-backend] ==> %s (t=%ss)\n' "$*" "$SECONDS"; }

FORCE="${NATIVE_FORCE:-0}"
GPU=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    --gpu) GPU=1 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) die "unknown argument: $arg" ;;
  esac
done

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
cd "$ROOT"

if [ "$GPU" = 1 ]; then
  PKG="@tensorflow/tfjs-node-gpu"; TF_DIST="$GPU_TF_DIST"; TF_VERSION="$GPU_TF_VERSION"; TF_WHEEL_SHA256="$GPU_TF_SHA256"
else
  PKG="@tensorflow/tfjs-node"; TF_DIST="$CPU_TF_DIST"; TF_VERSION="$CPU_TF_VERSION"; TF_WHEEL_SHA256="$CPU_TF_SHA256"
fi
TF_WHEEL="${TF_DIST}-${TF_VERSION}-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"

# Outside the clone: a second clone (or a clean CI checkout) reuses the downloaded wheel.
CACHE_DIR="${EXP_NATIVE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/exp/native}"
PKG_DIR="$ROOT/node_modules/$PKG"
DEPS_DIR="$PKG_DIR/deps"
STAMP_FILE="$DEPS_DIR/.exp-native-backend"

# ---- 0. preflight -------------------------------------------------------------
[ "$(uname -s)" = "Linux" ] || die "only Linux is supported (got $(uname -s))"
[ "$(uname -m)" = "x86_64" ] || die "only x86_64 is supported (got $(uname -m))"
for tool in node npm nm; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found on PATH"
done
[ -f package.json ] || die "run from the repo root (no package.json in $ROOT)"
[ -d node_modules ] || die "node_modules/ missing: run 'npm ci' first"

NODE_ABI="$(node -p 'process.versions.modules + "-napi" + process.versions.napi')"
# Whether this build should carry the CUDA runtime (a GPU build on a machine that shows a GPU):
# part of the stamp, so a GPU build made where no GPU was visible is redone where one is.
CUDA_WANT=0
if [ "$GPU" = 1 ] && { { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; } || [ "${EXP_CUDA_LIBS:-0}" = 1 ]; }; then CUDA_WANT=1; fi
# binding=lists2: the addon was compiled with scripts/patch-binding.mjs (older builds are redone).
STAMP_WANT="$PKG=$TFJS_NODE_VERSION $TF_DIST=$TF_VERSION sha256=$TF_WHEEL_SHA256 node-abi=$NODE_ABI cuda=$CUDA_WANT binding=lists2"

smoke_test() {
  # Loads the addon and runs a real op on the TensorFlow backend.
  ( cd "$ROOT" && EXP_PKG="$PKG" EXP_REQUIRE_GPU="$CUDA_WANT" TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}" node -e '
    const tf = require(process.env.EXP_PKG);
    if (tf.getBackend() !== "tensorflow") throw new Error("backend is " + tf.getBackend());
    if (process.env.EXP_REQUIRE_GPU === "1" && !tf.backend().isUsingGpuDevice)
      throw new Error("the GPU build runs but sees no GPU (NVIDIA driver? the CUDA wheels in deps/nvidia?)");
    const v = tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5], [6]])).dataSync();
    if (v[0] !== 17 || v[1] !== 39) throw new Error("wrong matMul result " + Array.from(v));
    console.log("[native-backend] OK: backend=" + tf.getBackend() +
      " libtensorflow=" + tf.backend().binding.TF_Version +
      " devices=" + (tf.backend().isUsingGpuDevice ? "gpu" : "cpu only") +
      " " + process.env.EXP_PKG + "=" + tf.version["tfjs-node"]);
  ' )
}

# ---- 1. tfjs-node package present? -------------------------------------------
installed_version() {
  node -p 'try { require(process.argv[1]).version } catch (e) { "" }' \
    "$PKG_DIR/package.json" 2>/dev/null || true
}
if [ "$(installed_version)" != "$TFJS_NODE_VERSION" ]; then
  step "installing $PKG@$TFJS_NODE_VERSION (scripts disabled)"
  # --ignore-scripts: its install script would try to download libtensorflow.
  npm install --no-save --ignore-scripts --no-audit --no-fund \
    "$PKG@$TFJS_NODE_VERSION" \
    || die "npm install $PKG@$TFJS_NODE_VERSION failed"
  [ "$(installed_version)" = "$TFJS_NODE_VERSION" ] \
    || die "$PKG@$TFJS_NODE_VERSION still not in node_modules after npm install"
  FORCE=1
fi

# ---- fast path ------------------------------------------------------------------
if [ "$FORCE" != 1 ] && [ -f "$STAMP_FILE" ] && [ "$(cat "$STAMP_FILE")" = "$STAMP_WANT" ] \
   && compgen -G "$PKG_DIR/lib/napi-v*/tfjs_binding.node" >/dev/null \
   && { [ "$CUDA_WANT" = 0 ] || [ -d "$DEPS_DIR/nvidia/." ]; }; then
  log "already built ($STAMP_WANT); verifying"
  smoke_test && exit 0
  log "smoke test failed on the existing build; rebuilding"
fi

# ---- 2. fetch the wheel (cached, hash-pinned) ----------------------------------
command -v python3 >/dev/null 2>&1 || die "python3 (with pip) is needed to download the TensorFlow wheel"
mkdir -p "$CACHE_DIR/wheels"
WHEEL_PATH="$CACHE_DIR/wheels/$TF_WHEEL"
sha_ok() { [ -f "$1" ] && { [ -z "$TF_WHEEL_SHA256" ] || [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$TF_WHEEL_SHA256" ]; }; }
if sha_ok "$WHEEL_PATH"; then
  log "using cached wheel $WHEEL_PATH"
else
  rm -f "$WHEEL_PATH"
  step "downloading $TF_WHEEL from PyPI"
  REQ="$CACHE_DIR/requirements.txt"
  if [ -n "$TF_WHEEL_SHA256" ]; then
    printf '%s==%s --hash=sha256:%s\n' "${TF_DIST//_/-}" "$TF_VERSION" "$TF_WHEEL_SHA256" > "$REQ"; HASHES=(--require-hashes)
  else
    printf '%s==%s\n' "${TF_DIST//_/-}" "$TF_VERSION" > "$REQ"; HASHES=()
  fi
  # Platform/ABI flags make this independent of the local Python version:
  # only the C++ shared libraries are used, never the Python package.
  python3 -m pip download --quiet --no-deps --only-binary=:all: "${HASHES[@]}" \
      --platform manylinux2014_x86_64 --python-version 3.11 \
      --implementation cp --abi cp311 \
      -r "$REQ" -d "$CACHE_DIR/wheels" \
    || die "pip download of ${TF_DIST//_/-}==$TF_VERSION failed"
  sha_ok "$WHEEL_PATH" || die "sha256 mismatch or missing file: $WHEEL_PATH"
fi

# ---- 3. extract libs + headers into deps/ --------------------------------------
step "extracting libtensorflow + C API headers into $DEPS_DIR"
rm -rf "$DEPS_DIR" "$PKG_DIR/build" "$PKG_DIR/lib"
mkdir -p "$DEPS_DIR/lib" "$DEPS_DIR/include"
python3 - "$WHEEL_PATH" "$DEPS_DIR" "${HEADER_GLOBS[@]}" <<'PY'
import fnmatch, os, shutil, sys, zipfile
wheel, deps, globs = sys.argv[1], sys.argv[2], sys.argv[3:]
libs = {"tensorflow/libtensorflow_cc.so.2": "lib/libtensorflow_cc.so.2",
        "tensorflow/libtensorflow_framework.so.2": "lib/libtensorflow_framework.so.2"}
n_headers = 0
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        name = info.filename
        if name in libs:
            dest = os.path.join(deps, libs.pop(name))
        elif not name.endswith("/") and any(fnmatch.fnmatch(name, g) for g in globs):
            dest = os.path.join(deps, "include", name[len("tensorflow/include/"):])
            n_headers += 1
        else:
            continue
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with z.open(info) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        os.chmod(dest, 0o755 if dest.endswith(".so.2") else 0o644)
if libs:
    sys.exit("missing in wheel: " + ", ".join(libs))
if n_headers == 0:
    sys.exit("no C API headers found in wheel")
print(f"[native-backend] extracted 2 libraries and {n_headers} headers")
PY
[ -f "$DEPS_DIR/include/tensorflow/c/c_api.h" ] && [ -f "$DEPS_DIR/include/tensorflow/c/eager/c_api.h" ] \
  || die "C API headers missing after extraction"

# Drop debug info (~135 MB); dynamic symbols are kept.
if command -v strip >/dev/null 2>&1; then
  strip --strip-unneeded "$DEPS_DIR/lib/libtensorflow_cc.so.2" "$DEPS_DIR/lib/libtensorflow_framework.so.2" \
    || log "warning: strip failed, keeping unstripped libraries"
fi

# The wheel's C API library is libtensorflow_cc.so.2 (SONAME libtensorflow_cc.so.2);
# binding.gyp links -ltensorflow -ltensorflow_framework, so provide those names.
# The addon ends up NEEDing libtensorflow_cc.so.2 + libtensorflow_framework.so.2,
# found at run time through its RUNPATH $ORIGIN/../../deps/lib (no LD_LIBRARY_PATH).
(
  cd "$DEPS_DIR/lib"
  ln -sf libtensorflow_cc.so.2 libtensorflow.so
  ln -sf libtensorflow_cc.so.2 libtensorflow.so.2
  ln -sf libtensorflow_framework.so.2 libtensorflow_framework.so
  # tfjs-node's scripts/install.js skips its download when this file exists.
  ln -sf libtensorflow_cc.so.2 "libtensorflow.so.$LEGACY_LIB_VERSION"
  ln -sf libtensorflow_framework.so.2 "libtensorflow_framework.so.$LEGACY_LIB_VERSION"
)

# ---- 3b. GPU: the CUDA runtime from nvidia-*-cu12 wheels ---------------------------
# The GPU wheel's libraries look for CUDA in $ORIGIN/../nvidia/<lib>/lib (how pip lays out
# tensorflow[and-cuda]); deps/nvidia points at the wheels installed in the cache, with the
# exact versions the TensorFlow wheel asks for in its and-cuda extra.
if [ "$GPU" = 1 ]; then
  if [ "$CUDA_WANT" = 1 ]; then
    CUDA_DIR="$CACHE_DIR/cuda-$TF_VERSION"
    if [ ! -f "$CUDA_DIR/.complete" ]; then
      step "installing the CUDA runtime wheels (nvidia-*-cu12, ~3 GB) into $CUDA_DIR"
      mapfile -t CUDA_SPECS < <(python3 - "$WHEEL_PATH" <<'PY'
import re, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
for line in z.read(meta).decode().splitlines():
    m = re.match(r'Requires-Dist: (nvidia-[^;]+);\s*extra == "and-cuda"', line)
    if m:
        print(m.group(1).replace(" ", ""))
PY
)
      [ ${#CUDA_SPECS[@]} -gt 0 ] || die "no nvidia-* requirements found in the wheel's and-cuda extra"
      rm -rf "$CUDA_DIR"
      python3 -m pip install --quiet --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
          --python-version 3.11 --implementation cp --abi cp311 --target "$CUDA_DIR" "${CUDA_SPECS[@]}" \
        || die "pip install of the CUDA runtime wheels failed"
      touch "$CUDA_DIR/.complete"
    fi
    ln -sfn "$CUDA_DIR/nvidia" "$DEPS_DIR/nvidia"
    log "CUDA runtime: $(ls "$CUDA_DIR/nvidia" | tr '\n' ' ')"
  else
    log "no GPU visible (nvidia-smi): CUDA runtime wheels not installed (EXP_CUDA_LIBS=1 installs them anyway); this build runs on the CPU"
  fi
fi

# ---- 4. symbol check ---------------------------------------------------------------
step "checking ${#REQUIRED_SYMBOLS[@]} C API symbols with nm -D"
DEFINED="$(nm -D --defined-only "$DEPS_DIR/lib/libtensorflow_cc.so.2" "$DEPS_DIR/lib/libtensorflow_framework.so.2" \
           | awk '$2 ~ /^[TW]$/ && $3 ~ /^TFE?_/ {sub(/@.*/, "", $3); print $3}' | sort -u)"
missing=()
for s in "${REQUIRED_SYMBOLS[@]}"; do
  grep -qx "$s" <<<"$DEFINED" || missing+=("$s")
done
[ ${#missing[@]} -eq 0 ] || die "libtensorflow $TF_VERSION lacks symbols: ${missing[*]}"
log "all ${#REQUIRED_SYMBOLS[@]} symbols present"

# ---- 5. build the addon with node-gyp (via node-pre-gyp) --------------------------
command -v g++ >/dev/null 2>&1 && command -v make >/dev/null 2>&1 \
  || die "g++ and make are needed to build the addon (apt-get install g++ make)"

# Node headers, offline: node-gyp would otherwise download them.
NODEDIR="${npm_config_nodedir:-}"
if [ -z "$NODEDIR" ]; then
  NODE_PREFIX="$(cd "$(dirname "$(readlink -f "$(command -v node)")")/.." && pwd)"
  [ -f "$NODE_PREFIX/include/node/node_api.h" ] && NODEDIR="$NODE_PREFIX"
fi
[ -n "$NODEDIR" ] && [ -f "$NODEDIR/include/node/node_api.h" ] \
  || die "Node headers not found (looked for <prefix>/include/node/node_api.h); set npm_config_nodedir"

PRE_GYP="$(cd "$PKG_DIR" && node -p 'require.resolve("@mapbox/node-pre-gyp/bin/node-pre-gyp")')" \
  || die "@mapbox/node-pre-gyp (a tfjs-node dependency) not found"
NODE_GYP_JS="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
[ -f "$NODE_GYP_JS" ] && export npm_config_node_gyp="$(readlink -f "$NODE_GYP_JS")"

# List-valued op attributes, for exp's fused oneDNN convolution (src/backend/native-kernels.ts).
node "$ROOT/scripts/patch-binding.mjs" "$PKG_DIR" || die "could not patch $PKG_DIR/binding/tfjs_backend.cc"
step "compiling tfjs_binding.node (nodedir=$NODEDIR)"
BUILD_LOG="$CACHE_DIR/build.log"
if ! (cd "$PKG_DIR" && node "$PRE_GYP" rebuild --build-from-source \
      --build-latest-napi-version-only --nodedir="$NODEDIR") >"$BUILD_LOG" 2>&1; then
  tail -n 40 "$BUILD_LOG" >&2
  die "addon build failed (full log: $BUILD_LOG)"
fi
ADDON="$(compgen -G "$PKG_DIR/lib/napi-v*/tfjs_binding.node" | head -n1)"
[ -n "$ADDON" ] || die "build finished but lib/napi-v*/tfjs_binding.node is missing (log: $BUILD_LOG)"

# Every TF symbol the addon imports must resolve in the two libraries.
unresolved=()
while read -r s; do
  grep -qx "$s" <<<"$DEFINED" || unresolved+=("$s")
done < <(nm -D --undefined-only "$ADDON" | awk '{sub(/@.*/, "", $2); print $2}' | grep -E '^TFE?_' || true)
[ ${#unresolved[@]} -eq 0 ] || die "addon imports symbols missing from libtensorflow: ${unresolved[*]}"
log "built $ADDON"

# ---- 6. verify ------------------------------------------------------------------------
printf '%s' "$STAMP_WANT" > "$STAMP_FILE"
step "verifying"
smoke_test || { rm -f "$STAMP_FILE"; die "smoke test failed"; }
log "done in ${SECONDS}s"
