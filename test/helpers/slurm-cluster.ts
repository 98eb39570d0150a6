/**
 * A real one-node Slurm cluster for tests: Debian's munge, slurmctld and slurmd (installed by
 * scripts/setup-test-env.sh), configured in a temp folder with their own munge key and socket,
 * free ports, state and spool folders, and no cgroups (proctrack/linuxproc, task/none). The
 * clients find it through SLURM_CONF (`env`). stop() cancels what is left and stops the daemons.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { freePort } from './mlflow-server.js';
import { tempDir } from './cli.js';

export const SLURM_BINS = ['/usr/sbin/munged', '/usr/sbin/slurmctld', '/usr/sbin/slurmd', '/usr/bin/sbatch', '/usr/bin/squeue', '/usr/bin/scontrol'];
export const slurmInstalled = (): boolean => SLURM_BINS.every((b) => existsSync(b));

export interface SlurmCluster {
  /** The folder with slurm.conf, the munge key, state, spool and logs. */
  dir: string;
  /** The environment the clients (sbatch, squeue, scontrol, exp) need: SLURM_CONF. */
  env: Record<string, string>;
  /** The one partition, and the node's name. */
  partition: string;
  node: string;
  /** Runs a Slurm client against this cluster. */
  client(bin: string, args: string[]): { code: number; stdout: string; stderr: string };
  stop(): Promise<void>;
}

const NODE = 'expnode';

function slurmConf(dir: string, ctldPort: number, slurmdPort: number, cpus: number): string {
  return [
    'ClusterName=exptest',
    // slurmctld refuses to run on a host that is not its SlurmctldHost: this machine, reached on loopback.
    `SlurmctldHost=${hostname().split('.')[0]}(127.0.0.1)`,
    `SlurmctldPort=${ctldPort}`,
    `SlurmdPort=${slurmdPort}`,
    'AuthType=auth/munge',
    'CredType=cred/munge',
    `AuthInfo=socket=${join(dir, 'munge.sock')}`,
    'SlurmUser=root',
    'SlurmdUser=root',
    `StateSaveLocation=${join(dir, 'state')}`,
    `SlurmdSpoolDir=${join(dir, 'spool')}`,
    `SlurmctldPidFile=${join(dir, 'slurmctld.pid')}`,
    `SlurmdPidFile=${join(dir, 'slurmd.pid')}`,
    `SlurmctldLogFile=${join(dir, 'log', 'slurmctld.log')}`,
    `SlurmdLogFile=${join(dir, 'log', 'slurmd.log')}`,
    'ProctrackType=proctrack/linuxproc',
    'TaskPlugin=task/none',
    'SelectType=select/cons_tres',
    'SelectTypeParameters=CR_CPU',
    'SchedulerType=sched/backfill',
    'AccountingStorageType=accounting_storage/none',
    'JobAcctGatherType=jobacct_gather/none',
    'JobCompType=jobcomp/none',
    'MpiDefault=none',
    'MailProg=/bin/true',
    'ReturnToService=2',
    // The node's CPUs as configured, whatever the machine has: tests ask for 1 CPU per task.
    'SlurmdParameters=config_overrides',
    'SchedulerParameters=sched_interval=1',
    // Ended jobs stay visible to scontrol (no accounting database here) for the test's length.
    'MinJobAge=3600',
    // A stopped point finishes its batch before it exits: generous under load.
    'KillWait=120',
    `NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=8000 State=UNKNOWN`,
    `PartitionName=debug Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP`,
    '',
  ].join('\n');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function daemon(bin: string, args: string[], env: NodeJS.ProcessEnv, log: string): ChildProcess {
  const fd = openSync(log, 'a');
  return spawn(bin, args, { env, stdio: ['ignore', fd, fd] });
}

async function waitFor(what: string, deadlineMs: number, check: () => boolean, logs: string): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`slurm test cluster: ${what} did not happen in ${deadlineMs / 1000} s; logs in ${logs}`);
    await sleep(200);
  }
}

/** Starts munged, slurmctld and slurmd; resolves when sinfo shows the node idle. */
export async function startSlurm(opts: { cpus?: number } = {}): Promise<SlurmCluster> {
  if (!slurmInstalled())
    throw new Error('Slurm is not installed; run: bash scripts/setup-test-env.sh (or apt-get install slurmctld slurmd munge slurm-client)');
  const dir = tempDir('exp-slurm-');
  // munged refuses a socket folder others cannot traverse, and a key others can read.
  chmodSync(dir, 0o711);
  for (const d of ['state', 'spool', 'log']) mkdirSync(join(dir, d), { recursive: true });
  const key = join(dir, 'munge.key');
  writeFileSync(key, randomBytes(1024), { mode: 0o400 });
  const [ctldPort, slurmdPort] = [await freePort(), await freePort()];
  const conf = join(dir, 'slurm.conf');
  writeFileSync(conf, slurmConf(dir, ctldPort, slurmdPort, opts.cpus ?? 4));
  const env = { SLURM_CONF: conf };
  const full = { ...process.env, ...env };
  const logs = join(dir, 'log');
  const sock = join(dir, 'munge.sock');
  const munged = daemon(
    '/usr/sbin/munged',
    [
      '-F',
      '-f',
      `--socket=${sock}`,
      `--key-file=${key}`,
      `--pid-file=${join(dir, 'munged.pid')}`,
      `--seed-file=${join(dir, 'munged.seed')}`,
      `--log-file=${join(logs, 'munged.log')}`,
    ],
    full,
    join(logs, 'munged.out'),
  );
  const procs: ChildProcess[] = [munged];
  const client = (bin: string, args: string[]): { code: number; stdout: string; stderr: string } => {
    const r = spawnSync(bin, args, { env: full, encoding: 'utf8', timeout: 60_000 });
    return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  };
  const stop = async (): Promise<void> => {
    client('/usr/bin/scancel', ['--full', '--signal=KILL', '--user=root']);
    for (const p of [...procs].reverse()) {
      if (p.exitCode !== null || p.signalCode !== null) continue;
      p.kill('SIGTERM');
      const gone = await Promise.race([new Promise((r) => p.once('exit', () => r(true))), sleep(15_000).then(() => false)]);
      if (!gone) p.kill('SIGKILL');
    }
    // Job processes outlive slurmd under proctrack/linuxproc only if they escaped its tree: none of ours do.
    rmSync(join(dir, 'spool'), { recursive: true, force: true });
  };
  try {
    await waitFor('munged creating its socket', 30_000, () => existsSync(sock), logs);
    procs.push(daemon('/usr/sbin/slurmctld', ['-D', '-c', '-i'], full, join(logs, 'slurmctld.out')));
    await waitFor('slurmctld answering', 60_000, () => client('/usr/bin/scontrol', ['ping']).stdout.includes('UP'), logs);
    procs.push(daemon('/usr/sbin/slurmd', ['-D', '-N', NODE], full, join(logs, 'slurmd.out')));
    await waitFor('the node going idle', 90_000, () => /^idle\s*$/m.test(client('/usr/bin/sinfo', ['-h', '-N', '-o', '%t']).stdout), logs);
  } catch (e) {
    await stop();
    throw e;
  }
  return { dir, env, partition: 'debug', node: NODE, client, stop };
}
