import { defineCommand } from './command.js';
import { EXIT } from './io.js';
import { fetchWeights, KNOWN_WEIGHTS, type KnownWeightsName } from '../model/weights.js';
import { UsageError } from '../errors.js';

export const weightsFetchCommand = defineCommand({
  name: 'weights fetch',
  summary: "Download a base network's ImageNet weights (Keras's no-top HDF5 file) and check its MD5.",
  usage: 'weights fetch vgg16 [--dir DIR] [--url URL]',
  details: 'The file goes to ~/.cache/exp/weights (or --dir). Where there is no internet, the error says where to copy a file downloaded elsewhere.',
  positionals: { name: 'NAME', min: 1, max: 1 },
  flags: {
    dir: { type: 'string', arg: 'DIR', description: 'Folder to save into (default ~/.cache/exp/weights).' },
    url: { type: 'string', arg: 'URL', description: 'A mirror of the same file.' },
  },
  async run(names, flags, io) {
    const name = names[0]!;
    if (!(name in KNOWN_WEIGHTS))
      throw new UsageError({ code: 'USAGE', message: `unknown weights '${name}'; name one of: ${Object.keys(KNOWN_WEIGHTS).join(', ')}` });
    const path = await fetchWeights(name as KnownWeightsName, flags.dir, { env: io.env, ...(flags.url ? { url: flags.url } : {}) });
    io.stdout.write(`saved and verified ${path}\n`);
    return EXIT.ok;
  },
});
