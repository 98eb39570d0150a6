/**
 * Checks the parts of a sweep that the JSON Schema cannot express: every swept path must
 * be a real setting, every value must be valid for that setting, zip lists must line up,
 * a path may be swept in one place only, and random distributions must make sense.
 */
import { closest, type Problem } from '../config/problem.js';
import { allPaths, validatorAt } from '../config/schema.js';
import { describe, locate } from '../config/validate.js';
import type { SourceMap } from '../config/load.js';
import type { ExperimentFile } from '../config/types.gen.js';

type Sweep = NonNullable<ExperimentFile['sweep']>;
type Distribution = NonNullable<Sweep['random']>['params'][string];

/**
 * An adaptive study (sweep.tpe) proposes whole points from its own params: crossed with a grid,
 * zip groups or random draws it would be several studies in one, which exp does not run.
 */
function aloneInSweep(sweep: Sweep, sources: SourceMap): Problem[] {
  if (!sweep.tpe) return [];
  return (['grid', 'zip', 'random', 'exclude'] as const)
    .filter((k) => sweep[k] !== undefined)
    .map((k) => ({
      code: 'SWEEP_CONFLICT' as const,
      path: `sweep.${k}`,
      message: `sweep.tpe proposes every swept setting itself and cannot be combined with sweep.${k}; move those settings into sweep.tpe.params (a choice distribution for a list of values)`,
      ...locate(sources, ['sweep', k], true),
    }));
}

export function checkSweep(sweep: Sweep | undefined, sources: SourceMap): Problem[] {
  if (!sweep) return [];
  const c = new SweepChecker(sources);
  for (const [path, values] of Object.entries(sweep.grid ?? {})) {
    if (c.checkPath(path, ['sweep', 'grid', path], 'sweep.grid')) c.checkValues(path, values, ['sweep', 'grid', path]);
  }
  (sweep.zip ?? []).forEach((group, gi) => c.zipGroup(group, gi));
  if (sweep.random) c.distributions('random', sweep.random.params);
  if (sweep.tpe) c.distributions('tpe', sweep.tpe.params);
  c.problems.push(...aloneInSweep(sweep, sources));
  (sweep.exclude ?? []).forEach((rule, ri) => c.excludeRule(rule, ri));
  return c.problems;
}

type Segments = (string | number)[];

/** The problems found so far, and where each swept path was first swept (a path is swept in one place only). */
class SweepChecker {
  readonly problems: Problem[] = [];
  private readonly known = allPaths();
  private readonly sweptAt = new Map<string, string>();

  constructor(private readonly sources: SourceMap) {}

  add(code: Problem['code'], segs: Segments, message: string, preferKey = false): void {
    const loc = locate(this.sources, segs, preferKey);
    this.problems.push({ code, message, path: segs.join('.'), ...loc });
  }

  /** True when `path` is a setting; also records where it is swept, and reports a second place. */
  checkPath(path: string, segs: Segments, where: string): boolean {
    if (!validatorAt(path)) {
      const guess = closest(path, this.known);
      this.add('SWEEP_UNKNOWN_PATH', segs, `'${path}' is not a setting that can be swept${guess ? `; did you mean '${guess}'?` : ''}`, true);
      return false;
    }
    const prev = this.sweptAt.get(path);
    if (prev) this.add('SWEEP_CONFLICT', segs, `'${path}' is already swept in ${prev}; sweep each setting in one place only`, true);
    else this.sweptAt.set(path, where);
    return true;
  }

  checkValues(path: string, values: unknown[], segs: Segments): void {
    const v = validatorAt(path)!;
    values.forEach((value, i) => {
      if (!v(value)) {
        const why = v.errors?.[0];
        this.add(
          'SWEEP_VALUE',
          [...segs, i],
          `${describe(value)} is not a valid value for '${path}': ${why?.message ?? 'invalid'}${why?.params && 'allowedValues' in why.params ? ` (${(why.params.allowedValues as unknown[]).join(', ')})` : ''}`,
        );
      }
    });
  }

  zipGroup(group: Record<string, unknown[]>, gi: number): void {
    const lengths = Object.values(group).map((v) => v.length);
    for (const [path, values] of Object.entries(group)) {
      const segs = ['sweep', 'zip', gi, path];
      if (this.checkPath(path, segs, `sweep.zip[${gi}]`)) this.checkValues(path, values, segs);
      if (values.length !== lengths[0])
        this.add(
          'SWEEP_ZIP_LENGTH',
          segs,
          `zip lists must have equal lengths: '${path}' has ${values.length}, '${Object.keys(group)[0]}' has ${lengths[0]}`,
          true,
        );
    }
  }

  distributions(where: 'random' | 'tpe', params: Record<string, Distribution>): void {
    for (const [path, dist] of Object.entries(params)) {
      const segs = ['sweep', where, 'params', path];
      if (this.checkPath(path, segs, `sweep.${where}`)) this.distribution(path, dist, segs);
    }
  }

  private distribution(path: string, dist: Distribution, segs: Segments): void {
    if (dist.distribution === 'choice') {
      if (!dist.values) this.add('SWEEP_RANDOM', segs, `choice needs 'values': a list to choose from`, true);
      else this.checkValues(path, dist.values, [...segs, 'values']);
    } else if (
      typeof dist.low !== 'number' ||
      typeof dist.high !== 'number' ||
      !(dist.low < dist.high || (dist.distribution === 'int_uniform' && dist.low === dist.high))
    ) {
      this.add('SWEEP_RANDOM', segs, `${dist.distribution} needs numbers 'low' < 'high'`, true);
    } else if (dist.distribution === 'log_uniform' && dist.low <= 0) {
      this.add('SWEEP_RANDOM', [...segs, 'low'], `log_uniform needs low > 0, found ${dist.low}`);
    } else {
      const v = validatorAt(path)!;
      const ends = dist.distribution === 'int_uniform' ? [dist.low, dist.high] : [dist.low];
      for (const end of ends)
        if (!v(end))
          this.add(
            'SWEEP_VALUE',
            [...segs, end === dist.low ? 'low' : 'high'],
            `${end} is outside the valid range of '${path}': ${v.errors?.[0]?.message ?? 'invalid'}`,
          );
    }
  }

  excludeRule(rule: Record<string, unknown>, ri: number): void {
    for (const path of Object.keys(rule)) {
      if (!validatorAt(path)) {
        const guess = closest(path, this.known);
        this.add(
          'SWEEP_UNKNOWN_PATH',
          ['sweep', 'exclude', ri, path],
          `exclude names '${path}', which is not a setting${guess ? `; did you mean '${guess}'?` : ''}`,
          true,
        );
      }
    }
  }
}
