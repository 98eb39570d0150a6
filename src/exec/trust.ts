/**
 * What a queue worker takes off the queue is untrusted input: any client of the Redis can add a
 * job, or edit one. Before the worker writes anything, checkJob turns a job's data into a
 * JobData whose names are folder names (one path segment of a safe set, never a path), whose
 * config has passed the resolved schema (as config.yaml is checked in a run folder), and whose
 * other fields have the shapes the worker uses. A job that fails the check can never succeed:
 * it fails once, with a coded reason that `exp queue status` and the submitter show, and is not
 * retried.
 *
 * Tracking: the server a worker sends runs (and its credentials) to is the worker's own:
 * `--tracking-uri`, else its MLFLOW_TRACKING_URI. A job naming another server is tracked to the
 * worker's instead (with a line in the worker's log). A worker with no server of its own follows
 * the job's server without credentials: it refuses to start when it holds credentials but no
 * server, so credentials can never go to a server a job chose.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { ExpError } from '../errors.js';
import { parseYaml } from '../config/load.js';
import type { Problem } from '../config/problem.js';
import { resolvedExperimentSchema, validateResolved } from '../config/resolved.js';
import type { JsonSchema } from '../config/schema.js';
import { validateWith } from '../config/validate.js';
import type { RunConfig } from '../config/normalise.js';
import { RUN_FILES, SWEEP_FILES, runDirName } from '../store/layout.js';
import { configText, type PointSpec } from '../store/sweep.js';
import { withoutCredentials } from '../track/sync-map.js';
import type { JobData } from './queue.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The experiment's and sweep's names, as the schema has `name` (a folder name). */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
/** A run folder's name: the point's name (pointName's characters) and its key. */
const RUN_DIR = /^[A-Za-z0-9_][A-Za-z0-9._=,+-]{0,199}$/;
const KEY = /^[0-9a-f]{8,64}$/;
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** config.yaml and sweep.yaml are written by exp and small. */
const MAX_TEXT = 1 << 20;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

const show = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

/** The one error of a rejected job (the worker records `CODE: message` as the job's reason, so a one-line reason shows the code). */
export class JobInvalid extends ExpError<'QUEUE_JOB_INVALID'> {
  constructor({ jobId, what }: { jobId: string; what: string }) {
    super({
      code: 'QUEUE_JOB_INVALID',
      message: `queue job ${show(jobId)}: ${what}`,
      fix: 'queue the experiment again with `exp run FILE --queue URL` (jobs are written by exp, not edited); if the submitter runs a newer exp, upgrade this worker, then `exp queue retry-failed`',
      exit: 'failed',
    });
  }
}

class Checker {
  constructor(readonly id: string) {}
  fail(what: string): never {
    throw new JobInvalid({ jobId: this.id, what });
  }
  obj(v: unknown, field: string): Obj {
    return isObj(v) ? v : this.fail(`${field} is ${show(v)}, not a mapping`);
  }
  str(v: unknown, field: string, re?: RegExp, why = 'is not valid here'): string {
    if (typeof v !== 'string') return this.fail(`${field} is ${show(v)}, not a string`);
    if (re && !re.test(v)) return this.fail(`${field} ${show(v)} ${why}`);
    return v;
  }
  text(v: unknown, field: string, max: number): string {
    const s = this.str(v, field);
    if (s.length > max) this.fail(`${field} has ${s.length} characters, more than ${max}`);
    return s;
  }
  line(v: unknown, field: string, max: number): string {
    const s = this.text(v, field, max);
    if (CONTROL.test(s)) this.fail(`${field} ${show(s)} holds control characters`);
    return s;
  }
}

const validators = new Map<JsonSchema, ValidateFunction>();
function schemaProblems(schema: JsonSchema, value: unknown, sources: Parameters<typeof validateWith>[3], file: string): Problem[] {
  let v = validators.get(schema);
  if (!v) validators.set(schema, (v = new Ajv2020({ allErrors: true, strict: false, useDefaults: true }).compile(schema)));
  return validateWith(v, schema, value, sources, file);
}

const describeProblems = (ps: readonly Problem[]): string =>
  ps
    .slice(0, 3)
    .map((p) => `${p.line ? `line ${p.line}: ` : ''}${p.path && !p.message.includes(p.path) ? `${p.path}: ` : ''}${p.message}`)
    .join('; ') + (ps.length > 3 ? `; and ${ps.length - 3} more` : '');

/** A YAML text of the job, parsed and checked against a schema; what fails is the job's reason. */
function checkedYaml(c: Checker, field: string, text: string, check: (value: unknown, sources: Parameters<typeof validateWith>[3]) => Problem[]): Obj {
  const parsed = parseYaml(field, text);
  const problems = parsed.problems.length > 0 ? parsed.problems : check(parsed.value, parsed.sources);
  if (problems.length > 0) c.fail(`${field} does not pass the schema: ${describeProblems(problems)}`);
  return c.obj(parsed.value, field);
}

/** The point's names: each one folder name, never a path. */
function checkNames(c: Checker, spec: Obj): PointSpec['entry'] {
  c.str(spec.experiment, 'spec.experiment', NAME, "is not an experiment name (1 to 100 letters, digits, '.', '_', '-'; a folder name, not a path)");
  c.str(spec.sweep, 'spec.sweep', NAME, "is not a sweep name (1 to 100 letters, digits, '.', '_', '-'; a folder name, not a path)");
  if ((spec.sweep as string).includes('..')) c.fail(`spec.sweep ${show(spec.sweep)} holds '..'`);
  c.str(spec.sweepUid, 'spec.sweepUid', ID, 'is not a sweep id');
  c.str(spec.uid, 'spec.uid', ID, 'is not a run id');
  c.line(spec.file, 'spec.file', 4096);
  const entry = c.obj(spec.entry, 'spec.entry');
  const key = c.str(entry.key, 'spec.entry.key', KEY, 'is not a run key (hexadecimal)');
  const name = c.str(entry.name, 'spec.entry.name', RUN_DIR, 'is not a point name');
  const dir = c.str(entry.dir, 'spec.entry.dir', RUN_DIR, 'is not a run folder name (a folder name, not a path)');
  if (dir !== runDirName({ name, key })) c.fail(`spec.entry.dir ${show(dir)} is not the point's folder (${show(runDirName({ name, key }))})`);
  if (!Number.isSafeInteger(entry.index) || (entry.index as number) < 0) c.fail(`spec.entry.index ${show(entry.index)} is not a point number`);
  const params = c.obj(entry.params, 'spec.entry.params');
  return { index: entry.index as number, key, name, dir, params };
}

/** Where the submitter asked the point to be tracked: an http(s) URL and an experiment name. */
function checkTracking(c: Checker, v: unknown): JobData['tracking'] {
  if (v === null) return null;
  const t = c.obj(v, 'tracking');
  const uri = c.line(t.uri, 'tracking.uri', 2048);
  if (!/^https?:\/\/[^/\s]/i.test(uri)) c.fail(`tracking.uri ${show(withoutCredentials(uri))} is not an http(s) URL`);
  return { uri, experiment: c.line(t.experiment, 'tracking.experiment', 500) };
}

/** The sweep's early-termination rule, checked against the schema's sweep.early_stop and checkpoint.monitor. */
function checkEarlyStop(c: Checker, v: unknown): JobData['earlyStop'] {
  if (v === null) return null;
  const e = c.obj(v, 'earlyStop');
  const props = resolvedExperimentSchema().properties ?? {};
  const ruleSchema = props.sweep?.properties?.early_stop;
  const monitorSchema = props.checkpoint?.properties?.monitor;
  if (!ruleSchema || !monitorSchema) return c.fail('earlyStop cannot be checked (the schema has no sweep.early_stop)');
  const rule = c.obj(e.rule, 'earlyStop.rule');
  const problems = [
    ...schemaProblems(ruleSchema, rule, new Map(), 'earlyStop.rule'),
    ...schemaProblems(monitorSchema, e.monitor, new Map(), 'earlyStop.monitor'),
  ];
  if (problems.length > 0) c.fail(`earlyStop does not pass the schema: ${describeProblems(problems)}`);
  return { rule: rule as NonNullable<JobData['earlyStop']>['rule'], monitor: e.monitor as string };
}

export interface CheckedJob {
  data: JobData;
  /** The point's resolved config, checked. */
  config: RunConfig;
}

/**
 * Checks everything a worker uses of a job; throws JobInvalid (QUEUE_JOB_INVALID) saying what
 * is wrong. Nothing is written before this passes.
 */
export function checkJob(jobId: string, raw: unknown): CheckedJob {
  const c = new Checker(jobId);
  const data = c.obj(raw, 'the job data');
  if (data.version !== 1) c.fail(`version ${show(data.version)} is not 1 (a job of another exp version)`);
  const spec = c.obj(data.spec, 'spec');
  const entry = checkNames(c, spec);
  const configYaml = c.text(spec.configText, 'spec.configText', MAX_TEXT);
  const config = checkedYaml(c, RUN_FILES.config, configYaml, (v, s) => validateResolved(v, s, RUN_FILES.config)) as unknown as RunConfig;
  if (config.name !== spec.experiment) c.fail(`spec.experiment ${show(spec.experiment)} is not the config's name ${show(config.name)}`);
  const experimentText = c.text(spec.experimentText, 'spec.experimentText', MAX_TEXT);
  const experiment = checkedYaml(c, SWEEP_FILES.experiment, experimentText, (v, s) => schemaProblems(resolvedExperimentSchema(), v, s, SWEEP_FILES.experiment));
  if (experiment.name !== spec.experiment) c.fail(`spec.experiment ${show(spec.experiment)} is not sweep.yaml's name ${show(experiment.name)}`);
  const checked: JobData = {
    version: 1,
    spec: {
      experiment: spec.experiment as string,
      sweep: spec.sweep as string,
      sweepUid: spec.sweepUid as string,
      file: spec.file as string,
      experimentText,
      entry,
      uid: spec.uid as string,
      configText: configYaml,
    },
    tracking: checkTracking(c, data.tracking),
    earlyStop: checkEarlyStop(c, data.earlyStop),
    submitted: isObj(data.submitted) ? (data.submitted as JobData['submitted']) : { by: '', at: '' },
  };
  return { data: checked, config };
}

/** MLflow's credential variables: never sent to a server the worker was not told to trust. */
export const CREDENTIAL_VARS = ['MLFLOW_TRACKING_TOKEN', 'MLFLOW_TRACKING_USERNAME', 'MLFLOW_TRACKING_PASSWORD'] as const;

/** Where a job is tracked by this worker, and the line the worker logs when that is not where the job asked. */
export interface JobTracking {
  uri: string;
  experiment: string;
  /** Whether the worker's credentials go with it (only to the worker's own server). */
  credentials: boolean;
  note?: string;
}

const sameServer = (a: string, b: string): boolean =>
  withoutCredentials(a).replace(/\/+$/, '').toLowerCase() === withoutCredentials(b).replace(/\/+$/, '').toLowerCase();

/**
 * The worker's own server wins: a job is tracked there whatever it names (a job that names no
 * server too, as its child would have inherited the worker's variable). Without one, the job's
 * server is followed, with no credentials.
 */
export function jobTracking(job: JobData, config: RunConfig, trusted: string | undefined, env: NodeJS.ProcessEnv): JobTracking | null {
  const experiment = job.tracking?.experiment || config.tracking.experiment || env.MLFLOW_EXPERIMENT_NAME || config.name;
  if (trusted) {
    const asked = job.tracking?.uri;
    return {
      uri: trusted,
      experiment,
      credentials: true,
      ...(asked && !sameServer(asked, trusted)
        ? { note: `the job names tracking server ${withoutCredentials(asked)}; tracked to this worker's server ${withoutCredentials(trusted)} instead` }
        : {}),
    };
  }
  return job.tracking ? { uri: job.tracking.uri, experiment, credentials: false } : null;
}

/**
 * The child's environment and the config.yaml the worker writes, so that neither the job's
 * config nor a recorded server can steer the child: the launch settings' pinTracking (set by
 * the worker for every child) makes it track to MLFLOW_TRACKING_URI only (or to no server when
 * it is unset).
 */
export function pinTracking(env: NodeJS.ProcessEnv, t: JobTracking | null): void {
  if (!t?.credentials) for (const k of CREDENTIAL_VARS) delete env[k];
  if (t) Object.assign(env, { MLFLOW_TRACKING_URI: t.uri, MLFLOW_EXPERIMENT_NAME: t.experiment });
  else delete env.MLFLOW_TRACKING_URI;
}

/** The config.yaml a worker writes for a checked job: exp's own rendering, naming the server it is really tracked to. */
export function trackedConfigText(config: RunConfig, t: JobTracking | null): string {
  return configText({
    ...config,
    tracking: { ...config.tracking, uri: t ? withoutCredentials(t.uri) : null, experiment: t ? t.experiment : config.tracking.experiment },
  });
}

/**
 * The server this worker trusts, from --tracking-uri or its MLFLOW_TRACKING_URI; a worker that
 * holds credentials but no server refuses to start, since any job could name where they go.
 */
export function trustedServer(flag: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  const uri = flag || env.MLFLOW_TRACKING_URI || undefined;
  if (uri && !/^https?:\/\/[^/\s]/i.test(uri)) {
    throw new ExpError({
      code: 'MLFLOW_CONFIG',
      message: `the worker's tracking server ${show(withoutCredentials(uri))} (${flag ? '--tracking-uri' : 'MLFLOW_TRACKING_URI'}) is not an http(s) URL`,
      fix: 'give the MLflow server as http://HOST:PORT or https://...',
    });
  }
  const held = CREDENTIAL_VARS.filter((k) => env[k]);
  if (!uri && held.length > 0) {
    throw new ExpError({
      code: 'MLFLOW_CONFIG',
      message: `${held.join(' and ')} ${held.length === 1 ? 'is' : 'are'} set, but this worker has no tracking server of its own: a queue job could name the server they go to`,
      fix: "name the server they are for: exp worker --tracking-uri URL (or set MLFLOW_TRACKING_URI); or unset them to follow each job's server without credentials",
    });
  }
  return uri;
}
