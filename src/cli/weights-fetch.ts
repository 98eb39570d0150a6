import type { Command } from './command.js';
import { EXIT } from './io.js';
import { fetchWeights, KNOWN_WEIGHTS, type KnownWeightsName } from '../model/weights.js';
import { WeightsError } from '../model/errors.js';

export const weightsFetchCommand: Command = {
  name: 'weights fetch',
  summary: "Download a base network's ImageNet weights (Keras's no-top HDF5 file) and check its MD5.",
  usage: 'weights fetch vgg16 [--dir DIR] [--url URL]',
  details: 'The file goes to ~/.cache/exp/weights (or --dir). Where there is no internet, the error says where to copy a file downloaded elsewhere.',
  flags: {
    dir: { type: 'string', arg: 'DIR', description: 'Folder to save into (default ~/.cache/exp/weights).' },
    url: { type: 'string', arg: 'URL', description: 'A mirror of the same file.' },
  },
  async run(names, flags, io) {
    const name = names[0];
    if (!name || !(name in KNOWN_WEIGHTS)) { io.stderr.write(`exp weights fetch: name one of: ${Object.keys(KNOWN_WEIGHTS).join(', ')}\n`); return EXIT.usage; }
    try {
      const path = await fetchWeights(name as KnownWeightsName, flags.dir as string | undefined, { env: io.env, ...(flags.url ? { url: flags.url as string } : {}) });
      io.stdout.write(`saved and verified ${path}\n`);
      return EXIT.ok;
    } catch (e) {
      if (e instanceof WeightsError) { io.stderr.write(`exp weights fetch: ${e.message}\n`); return EXIT.failed; }
      throw e;
    }
  },
};
