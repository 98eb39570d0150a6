#!/usr/bin/env node
/**
 * Teaches tfjs-node's C++ binding (binding/tfjs_backend.cc) list-valued string and type op
 * attributes, before scripts/build-native-backend.sh compiles it.
 *
 * Why: the stock binding passes only scalar strings and types, so TensorFlow's
 * `_MklNativeFusedConv2D` (attributes `fused_ops: list(string)`, and from TensorFlow 2.20
 * `TArgs: list(type)`) cannot be called, and exp's one-kernel Conv2D+BiasAdd+Relu
 * (src/backend/native-kernels.ts) needs it. An array where a string or a type is expected becomes
 * TFE_OpSetAttrStringList / TypeList; every call the stock binding accepted behaves as before.
 *
 * Usage: node scripts/patch-binding.mjs <package dir>   (idempotent; exits 1 if the source
 * does not look like tfjs-node 4.22's, rather than compiling a half-patched file).
 */
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const MARK = '// exp: list-valued string and type attributes';
const file = join(process.argv[2] ?? '.', 'binding', 'tfjs_backend.cc');
// The pristine source is kept beside it, so a later version of this patch starts from it too.
const pristine = `${file}.orig`;
if (!existsSync(pristine)) copyFileSync(file, pristine);
let src = readFileSync(file, 'utf8');
if (src.includes(MARK)) {
  console.log(`[patch-binding] ${file}: already patched`);
  process.exit(0);
}
src = readFileSync(pristine, 'utf8');
if (src.includes('// exp: ')) {
  console.error(`[patch-binding] ${pristine} is not tfjs-node's own source; reinstall it: rm -rf ${join(process.argv[2] ?? '.')} && npm ci`);
  process.exit(1);
}

/** Code that, when `js_value` is a JS array, reads each element with `read` (then `keep`) and sets the list. */
const listCase = (decl, read, set, keep = '') => `      if (IsArray(env, nstatus, &js_value)) {  ${MARK}
        uint32_t length;
        nstatus = napi_get_array_length(env, js_value, &length);
        ENSURE_NAPI_OK(env, nstatus);
        ${decl}
        for (uint32_t i = 0; i < length; ++i) {
          napi_value element;
          nstatus = napi_get_element(env, js_value, i, &element);
          ENSURE_NAPI_OK(env, nstatus);
          ${read}
          ENSURE_NAPI_OK(env, nstatus);${keep}
        }
        ${set}
        break;
      }
`;

const EDITS = [
  {
    anchor: '    case TF_ATTR_STRING: {\n',
    // `strings` outlives the call (TFE_OpSetAttrStringList copies the values).
    insert: listCase(
      'std::vector<std::string> strings(length);\n        std::vector<const void *> values(length);\n        std::vector<size_t> lengths(length);',
      'nstatus = GetStringParam(env, element, strings[i]);',
      'TFE_OpSetAttrStringList(tfe_op, attr_name, values.data(), lengths.data(), static_cast<int>(length));',
      '\n          values[i] = strings[i].data();\n          lengths[i] = strings[i].size();',
    ),
  },
  {
    anchor: '    case TF_ATTR_TYPE: {\n',
    insert: listCase(
      'std::vector<TF_DataType> types(length);',
      'nstatus = napi_get_value_int32(env, element, reinterpret_cast<int32_t *>(&types[i]));',
      'TFE_OpSetAttrTypeList(tfe_op, attr_name, types.data(), static_cast<int>(length));',
    ),
  },
];

for (const { anchor, insert } of EDITS) {
  const at = src.indexOf(anchor);
  if (at < 0 || src.indexOf(anchor, at + 1) >= 0) {
    console.error(`[patch-binding] ${file}: expected exactly one '${anchor.trim()}' (not tfjs-node 4.22's binding?)`);
    process.exit(1);
  }
  src = src.slice(0, at + anchor.length) + insert + src.slice(at + anchor.length);
}
writeFileSync(file, src);
console.log(`[patch-binding] ${file}: list-valued string and type attributes added`);
