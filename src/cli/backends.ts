import { defineCommand } from './command.js';
import { JSON_FLAG } from './flags.js';
import { EXIT } from './io.js';
import { table } from './report.js';

export const backendsCommand = defineCommand({
  name: 'backends',
  summary: 'List the TensorFlow.js backends, whether each works here, and how to get the ones that do not.',
  usage: 'backends [--json]',
  details: '`backend: auto` takes the first available one, in this order.',
  positionals: { name: 'argument', max: 0 },
  flags: { json: JSON_FLAG },
  async run(_args, flags, io) {
    // Loaded here: probing loads TensorFlow.js, which only this command (and exp train) needs.
    const { probeBackends } = await import('../backend/select.js');
    const rows = await probeBackends();
    if (flags.json) {
      io.stdout.write(JSON.stringify(rows, null, 2) + '\n');
      return EXIT.ok;
    }
    io.stdout.write(
      table(
        ['backend', 'available', 'device / reason'],
        rows.map((r) => [
          r.name,
          r.available ? 'yes' : 'no',
          r.available ? [r.device ?? '', r.note, r.fusedConv ? 'fused conv+bias+relu (oneDNN)' : undefined].filter(Boolean).join(': ') : (r.reason ?? ''),
        ]),
      ),
    );
    const missing = rows.filter((r) => !r.available && r.fix);
    if (missing.length) io.stdout.write('\nTo get:\n' + missing.map((r) => `  ${r.name}: ${r.fix}`).join('\n') + '\n');
    // As selectBackend('auto') decides: the GPU build without a GPU gives way to the CPU build.
    const { gpuVisible, nativePackageBuilt } = await import('../backend/available.js');
    const skipGpu = !gpuVisible() && nativePackageBuilt('@tensorflow/tfjs-node');
    const chosen = rows.find((r) => r.available && !(skipGpu && r.name === 'tensorflow-gpu'));
    io.stdout.write(`\nbackend: auto uses ${chosen?.name ?? 'none'}${skipGpu && rows[0]?.available ? ' (tensorflow-gpu sees no GPU here)' : ''}\n`);
    return EXIT.ok;
  },
});
