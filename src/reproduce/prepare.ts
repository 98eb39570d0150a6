/**
 * Making a reproduction's run folder: <experiment>/<sweep>-repro-<n>/<run>/ next to the
 * original's sweep (or under <runsDir>/<experiment>/ for an MLflow run), holding the
 * original's config.yaml byte for byte and its saved split, which the trainer then reuses.
 * It gets identities of its own (a new sweep folder and uid), so the tracking server keeps
 * the original's record apart from the reproduction's.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { writeFileAtomic, writeJsonAtomic } from '../util/fsx.js';
import { runPath, sweepDirOf, sweepPath } from '../store/layout.js';
import { copySplit } from '../store/split.js';
import { readSweepIndex, writeSweepIndex } from '../store/sweep-index.js';
import { writePoint } from '../store/run.js';
import type { SweepIndex } from '../store/types.js';
import type { Original } from './find.js';

export function prepareReproduction(o: Original, runsDir: string): string {
  const expDir = o.dir ? dirname(sweepDirOf(o.dir)) : resolve(runsDir, o.experiment);
  const base = o.sweep.replace(/-repro-\d+$/, '');
  mkdirSync(expDir, { recursive: true });
  let sweepDir = '';
  for (let n = 1; !sweepDir; n++) {
    const candidate = join(expDir, `${base}-repro-${n}`);
    try {
      mkdirSync(candidate);
      sweepDir = candidate;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  const dir = join(sweepDir, o.name);
  writeFileAtomic(runPath(dir, 'config'), o.configText);
  if (o.splitDir) copySplit(o.splitDir, dir);
  const original = o.dir ? readSweepIndex(sweepDirOf(o.dir)) : undefined;
  if (o.dir && existsSync(sweepPath(sweepDirOf(o.dir), 'experiment')))
    copyFileSync(sweepPath(sweepDirOf(o.dir), 'experiment'), sweepPath(sweepDir, 'experiment'));
  const point = original?.points.find((p) => p.dir === o.name);
  const index: SweepIndex = {
    experiment: o.experiment,
    sweep: basename(sweepDir),
    uid: randomUUID(),
    file: original?.file ?? o.from,
    created: new Date().toISOString(),
    points: [{ index: 0, key: o.key, name: point?.name ?? o.name, params: o.params, dir: o.name }],
  };
  writeSweepIndex(sweepDir, index);
  writePoint(dir, {
    version: 1,
    uid: randomUUID(),
    key: o.key,
    name: index.points[0]!.name,
    index: 0,
    params: o.params,
    experiment: o.experiment,
    sweep: index.sweep,
    sweep_uid: index.uid,
    created: index.created,
  });
  writeJsonAtomic(runPath(dir, 'reproduction'), {
    of: {
      from: o.from,
      dir: o.dir,
      mlflow: o.mlflow,
      key: o.key,
      status: o.status,
      backend: o.backend,
      git_commit: o.gitCommit,
      split_hash: o.splitHash,
      data_fingerprint: o.fingerprint,
    },
    original_results: o.results,
    created: index.created,
  });
  return dir;
}
