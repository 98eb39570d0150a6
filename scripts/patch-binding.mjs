#!/usr/bin/env node
/**
 * Teaches tfjs-node's C++ binding (binding/tfjs_backend.cc) list-valued string op attributes,
 * before scripts/build-native-backend.sh compiles it.
 *
 * Why: the stock binding passes only scalar strings, so TensorFlow's `_MklNativeFusedConv2D`
 * (attribute `fused_ops: list(string)`) cannot be called, and exp's one-kernel
 * Conv2D+BiasAdd+Relu (src/backend/native-kernels.ts) needs it. An array where a string is expected
 * becomes TFE_OpSetAttrStringList; every call the stock binding accepted behaves as before.
 *
 * Usage: node scripts/patch-binding.mjs <package dir>   (idempotent; exits 1 if the source
 * does not look like tfjs-node 4.22's, rather than compiling a half-patched file).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const MARK = '// exp: list-valued string attributes';
const file = join(process.argv[2] ?? '.', 'binding', 'tfjs_backend.cc');
let src = readFileSync(file, 'utf8');
if (src.includes(MARK)) {
  console.log(`[patch-binding] ${file}: already patched`);
  process.exit(0);
}

const ANCHOR = '    case TF_ATTR_STRING: {\n';
// Copies each element into `strings` (which outlives the call: TFE_OpSetAttrStringList copies).
const INSERT = `      if (IsArray(env, nstatus, &js_value)) {  ${MARK}
        uint32_t length;
        nstatus = napi_get_array_length(env, js_value, &length);
        ENSURE_NAPI_OK(env, nstatus);
        std::vector<std::string> strings(length);
        std::vector<const void *> values(length);
        std::vector<size_t> lengths(length);
        for (uint32_t i = 0; i < length; ++i) {
          napi_value element;
          nstatus = napi_get_element(env, js_value, i, &element);
          ENSURE_NAPI_OK(env, nstatus);
          nstatus = GetStringParam(env, element, strings[i]);
          ENSURE_NAPI_OK(env, nstatus);
          values[i] = strings[i].data();
          lengths[i] = strings[i].size();
        }
        TFE_OpSetAttrStringList(tfe_op, attr_name, values.data(), lengths.data(), static_cast<int>(length));
        break;
      }
`;

const at = src.indexOf(ANCHOR);
if (at < 0 || src.indexOf(ANCHOR, at + 1) >= 0) {
  console.error(`[patch-binding] ${file}: expected exactly one '${ANCHOR.trim()}' (not tfjs-node 4.22's binding?)`);
  process.exit(1);
}
writeFileSync(file, src.slice(0, at + ANCHOR.length) + INSERT + src.slice(at + ANCHOR.length));
console.log(`[patch-binding] ${file}: list-valued string attributes added`);
