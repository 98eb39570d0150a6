import { readFileSync } from 'node:fs';
import { defineCommand } from './command.js';
import { EXIT } from './io.js';
import { SCHEMA_PATH } from '../config/schema.js';

export const schemaCommand = defineCommand({
  name: 'schema',
  summary: 'Print the experiment JSON Schema (draft 2020-12), e.g. for the YAML language server.',
  usage: 'schema [--path]',
  details: 'In VS Code with the YAML extension, put `# yaml-language-server: $schema=<path>` at the top of an experiment file.',
  positionals: { name: 'argument', max: 0 },
  flags: { path: { type: 'boolean', description: 'Print the schema file path instead of its contents.' } },
  async run(_args, flags, io) {
    io.stdout.write(flags.path ? `${SCHEMA_PATH}\n` : readFileSync(SCHEMA_PATH, 'utf8'));
    return EXIT.ok;
  },
});
