/**
 * The user config file (config/user.ts): where it is looked for, the precedence of its launcher
 * settings (schema defaults < user config < experiment file < --set, key by key, lists replace),
 * that it changes no run key or sweep id, and each way it can be wrong: a coded problem naming
 * the file, with line and column where there is one, and exit status 2 from the CLI. Real files
 * in temp folders; EXP_CONFIG / XDG_CONFIG_HOME are always set, so the developer's own
 * ~/.config is never read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expIn, tempDir } from '../helpers/cli.js';
import { loadUserConfig, userConfigPlace } from '../../src/config/user.js';
import { planExperiment } from '../../src/sweep/plan.js';
import { defaultSweepId } from '../../src/store/sweep.js';

const tmp = tempDir('exp-user-config-');
let n = 0;
/** Writes `text` to a fresh file under tmp; returns its path. */
const file = (name: string, text: string): string => {
  const dir = join(tmp, String(n++));
  mkdirSync(dir, { recursive: true });
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const experiment = (extra = ''): string =>
  file('exp.yaml', `name: uc\ndata: { path: ${join(tmp, 'data')} }\nsweep: { grid: { training.learning_rate: [0.001, 0.0001] } }\n${extra}`);
const userAt = (path: string) => loadUserConfig({ file: path, from: 'EXP_CONFIG' });
const plan = (exp: string, user?: string, set: string[] = []) => {
  const r = planExperiment(exp, { set, ...(user ? { user: userAt(user) } : {}) });
  assert.deepEqual(r.problems, []);
  return r.plan!;
};

test('the user config is $EXP_CONFIG, else $XDG_CONFIG_HOME/exp/config.yaml, else ~/.config/exp/config.yaml', () => {
  assert.deepEqual(userConfigPlace({ EXP_CONFIG: 'mine.yaml', XDG_CONFIG_HOME: '/x', HOME: '/h' }, '/work'), { file: '/work/mine.yaml', from: 'EXP_CONFIG' });
  assert.deepEqual(userConfigPlace({ EXP_CONFIG: '', XDG_CONFIG_HOME: '/x', HOME: '/h' }, '/work'), { file: '/x/exp/config.yaml', from: 'XDG_CONFIG_HOME' });
  // A relative XDG_CONFIG_HOME is ignored, as the XDG spec says.
  assert.deepEqual(userConfigPlace({ XDG_CONFIG_HOME: 'rel', HOME: '/h' }, '/work'), { file: '/h/.config/exp/config.yaml', from: 'HOME' });
  assert.deepEqual(userConfigPlace({ HOME: '/h' }, '/work'), { file: '/h/.config/exp/config.yaml', from: 'HOME' });
});

test('precedence: schema defaults < user config < experiment file < --set, key by key; lists and explicit nulls in the file replace', () => {
  const user = file(
    'config.yaml',
    'launcher:\n  slurm:\n    partition: gpu\n    account: lab\n    time: "8:00:00"\n    setup: ["module load cuda/12.2", "source ~/venv/bin/activate"]\n    sbatch: ["--exclusive"]\n',
  );
  // No launcher section in the experiment: the user's settings, the schema's defaults for the rest.
  const bare = plan(experiment(), user).experiment.launcher.slurm;
  assert.equal(bare.partition, 'gpu');
  assert.equal(bare.account, 'lab');
  assert.deepEqual(bare.setup, ['module load cuda/12.2', 'source ~/venv/bin/activate']);
  assert.equal(bare.signal_seconds, 120);
  assert.equal(bare.qos, null);
  // The experiment sets only time and setup: partition and account stay the user's; its list replaces the user's.
  const own = experiment('launcher: { slurm: { time: "1:00:00", setup: ["echo hi"], account: null } }');
  const merged = plan(own, user).experiment.launcher.slurm;
  assert.equal(merged.partition, 'gpu');
  assert.equal(merged.time, '1:00:00');
  assert.deepEqual(merged.setup, ['echo hi']);
  assert.deepEqual(merged.sbatch, ['--exclusive']);
  assert.equal(merged.account, null, 'an explicit null in the experiment leaves the option to Slurm');
  // --set wins over both.
  const set = plan(own, user, ['launcher.slurm.partition=debug', 'launcher.slurm.time=0:10:00']).experiment.launcher.slurm;
  assert.equal(set.partition, 'debug');
  assert.equal(set.time, '0:10:00');
  assert.equal(set.sbatch[0], '--exclusive');
  // Without a user config, nothing of it.
  assert.equal(plan(own).experiment.launcher.slurm.partition, null);
  assert.equal(plan(own).userConfig, undefined);
  assert.equal(plan(own, user).userConfig, user);
});

test('a user config changes no point, run key or sweep id', () => {
  const user = file('config.yaml', 'launcher:\n  slurm: { partition: gpu, cpus_per_task: 8, setup: ["module load x"] }\n');
  const exp = experiment('launcher: { slurm: { time: "1:00:00" } }');
  const without = plan(exp);
  const withUser = plan(exp, user);
  assert.deepEqual(
    withUser.points.map((p) => [p.key, p.name, p.params]),
    without.points.map((p) => [p.key, p.name, p.params]),
  );
  assert.equal(defaultSweepId(withUser), defaultSweepId(without));
});

test('a missing user config is no defaults, silently; an empty one too', async () => {
  const exp = experiment();
  assert.deepEqual(userAt(join(tmp, 'nowhere', 'config.yaml')), { problems: [], texts: new Map() });
  const r = await expIn(['plan', exp], { env: { EXP_CONFIG: join(tmp, 'nowhere', 'config.yaml') } });
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /launcher defaults/);
  assert.equal(r.stderr, '');
  const empty = await expIn(['plan', exp], { env: { EXP_CONFIG: file('config.yaml', '# nothing yet\n') } });
  assert.equal(empty.code, 0, empty.stderr);
  assert.doesNotMatch(empty.stdout, /launcher defaults/);
});

test('exp plan says where launcher defaults came from; plan --json shows them in each config', async () => {
  const home = join(tmp, 'home');
  const xdg = join(home, '.config');
  mkdirSync(join(xdg, 'exp'), { recursive: true });
  writeFileSync(join(xdg, 'exp', 'config.yaml'), 'launcher:\n  slurm:\n    partition: gpu\n');
  const exp = experiment();
  const env = { EXP_CONFIG: '', XDG_CONFIG_HOME: xdg, HOME: home };
  const r = await expIn(['plan', exp], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^launcher defaults from ~\/\.config\/exp\/config\.yaml$/m);
  const j = await expIn(['plan', exp, '--json'], { env });
  const points = JSON.parse(j.stdout) as { config: { launcher: { slurm: { partition: string } } } }[];
  assert.deepEqual(
    points.map((p) => p.config.launcher.slurm.partition),
    ['gpu', 'gpu'],
  );
});

/** Runs exp plan with EXP_CONFIG=config; returns its exit code and stderr. */
async function planWith(config: string): Promise<{ code: number; stderr: string }> {
  const r = await expIn(['plan', experiment()], { env: { EXP_CONFIG: config } });
  return { code: r.code, stderr: r.stderr };
}

test('schema problems in the user config name the file, line and column, with did-you-mean', async () => {
  const cfg = file('config.yaml', 'launcher:\n  slurm:\n    partiton: gpu\n    cpus_per_task: eight\nlauncer: {}\n');
  const r = userAt(cfg);
  assert.equal(r.config, undefined);
  assert.deepEqual(
    r.problems.map((p) => [p.code, p.file, p.line, p.col, p.path]).sort(),
    [
      ['TYPE', cfg, 4, 20, 'launcher.slurm.cpus_per_task'],
      ['UNKNOWN_KEY', cfg, 3, 5, 'launcher.slurm.partiton'],
      ['UNKNOWN_KEY', cfg, 5, 1, 'launcer'],
    ].sort(),
  );
  assert.match(r.problems.find((p) => p.path === 'launcer')!.message, /did you mean 'launcher'\?/);
  assert.match(r.problems.find((p) => p.path.endsWith('partiton'))!.message, /did you mean 'partition'\?/);
  const cli = await planWith(cfg);
  assert.equal(cli.code, 2);
  assert.match(cli.stderr, /config\.yaml:3:5 {2}launcher\.slurm\.partiton {2}unknown key 'partiton'; did you mean 'partition'\? \[UNKNOWN_KEY\]/);
  assert.match(cli.stderr, /\n {3}3 \| {5}partiton: gpu\n/);
});

test('a YAML syntax error in the user config names the file, line and column', async () => {
  const cfg = file('config.yaml', 'launcher:\n  slurm:\n    partition: gpu\n   account: lab\n');
  const [p] = userAt(cfg).problems;
  assert.equal(p?.code, 'YAML_SYNTAX');
  assert.equal(p?.file, cfg);
  assert.ok(p!.line >= 3 && p!.col >= 1, JSON.stringify(p));
  const dup = userAt(file('config.yaml', 'launcher:\n  slurm:\n    partition: gpu\n    partition: cpu\n')).problems;
  assert.deepEqual(
    dup.map((x) => [x.code, x.line, x.col]),
    [['DUPLICATE_KEY', 4, 5]],
  );
  const cli = await planWith(cfg);
  assert.equal(cli.code, 2);
  assert.match(cli.stderr, /config\.yaml:\d+:\d+ .*\[YAML_SYNTAX\]/);
});

test('a folder, a FIFO or /dev/zero as the user config is USER_CONFIG_UNREADABLE with what, where and the fix; exit 2', async () => {
  const fifo = join(tmp, 'fifo.yaml');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  for (const [path, kind] of [
    [tmp, 'a folder'],
    [fifo, 'a FIFO'],
    ['/dev/zero', 'a device'],
  ] as const) {
    const [p] = userAt(path).problems;
    assert.equal(p?.code, 'USER_CONFIG_UNREADABLE', path);
    assert.equal(p?.file, path);
    assert.match(p!.message, new RegExp(`is ${kind}`));
    assert.match(p!.message, /\(named by \$EXP_CONFIG\); make it a regular YAML file/);
    const cli = await planWith(path);
    assert.equal(cli.code, 2, cli.stderr);
    assert.match(cli.stderr, /\[USER_CONFIG_UNREADABLE\]/);
  }
  // exp's default place gets the same check, saying it was the default place.
  const home = join(tmp, 'home-with-folder');
  mkdirSync(join(home, '.config', 'exp', 'config.yaml'), { recursive: true });
  const [p] = loadUserConfig(userConfigPlace({ HOME: home }, tmp)).problems;
  assert.equal(p?.code, 'USER_CONFIG_UNREADABLE');
  assert.match(p!.message, /is a folder.*exp's default place/);
});

test('a user config over 256 KiB is refused unread', () => {
  const big = file('config.yaml', `launcher: {}\n${'# padding\n'.repeat(30_000)}`);
  const [p] = userAt(big).problems;
  assert.equal(p?.code, 'USER_CONFIG_UNREADABLE');
  assert.match(p!.message, /more than the 262144-byte limit/);
});
