import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { applyCommand } from '../../src/cli/apply.js';
import type { Out } from '../../src/cli/output.js';
import { openReadOnly } from '../../src/state/db.js';
import { Store } from '../../src/state/store.js';
import { fakeProvider, FakeWorld } from '../helpers/fake-provider.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';

const target = (name: string): string => `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: ${name} }\nspec: { provider: fake, address: ${name} }\n`;
const item = (name: string, on: string, value: string, meta = ''): string => `apiVersion: plumb/v1\nkind: fake.Item\nmetadata: { name: ${name}, target: ${on}${meta} }\nspec: { value: "${value}" }\n`;
const setting = (name: string, on: string, value: string): string => `apiVersion: plumb/v1\nkind: fake.Setting\nmetadata: { name: ${name}, target: ${on} }\nspec: { value: "${value}" }\n`;

/** `plumb apply --once` in process, against the fake provider; stdout captured, the exit code returned. */
describe('apply --once: the exit code and summary say where everything stands, not only what this pass did', () => {
  let repo: TempRepo;
  let world: FakeWorld;
  let config: string;
  let stateDir: string;

  const apply = async (...extra: Array<'--all'>): Promise<{ code: number; stdout: string }> => {
    let stdout = '';
    const out: Out = { isTTY: false, columns: 200, write: (text) => void (stdout += text) };
    const code = await applyCommand({ once: true, config, ...(extra.includes('--all') ? { all: true } : {}) }, out, {}, { providers: [fakeProvider(world)] });
    return { code, stdout };
  };
  const statusOf = (id: string): string | undefined => {
    const store = new Store(openReadOnly(stateDir));
    try {
      return store.status(id);
    } finally {
      store.close();
    }
  };

  beforeEach(() => {
    repo = new TempRepo();
    world = new FakeWorld();
    stateDir = tempDir('plumb-apply-state-');
    config = join(tempDir('plumb-apply-config-'), 'plumb.yaml');
    // One attempt per pass, and a failure is due again only an hour later: the next pass does not retry it.
    writeFileSync(config, `repo:\n  url: ${repo.dir}\n  branch: main\nstateDir: ${stateDir}\nrun:\n  maxAttempts: 1\n  retryAfter: 1h\n  maxRetryAfter: 2h\n`);
    repo.write('targets.yaml', `${target('t1')}---\n${target('t2')}`);
  });
  afterEach(() => repo.cleanup());

  test('a resource that failed in an earlier pass and is not due for a retry keeps the exit code 1, and the summary says so', async () => {
    repo.write('items.yaml', `${item('a', 't1', 'A1')}---\n${item('b', 't2', 'B1')}`);
    repo.commit('A');
    expect((await apply()).code).toBe(0);

    // Commit B changes b, and its target cannot be reached: recorded failed, due again in an hour.
    repo.write('items.yaml', `${item('a', 't1', 'A1')}---\n${item('b', 't2', 'B2')}`);
    repo.commit('B');
    world.device('t2').unreachable = true;
    const failed = await apply();
    expect(failed.stdout).toMatch(/: 0 changed, 0 deleted, 0 already converged, 1 not done in [\d.]+s\n$/);
    expect(failed.code).toBe(1);
    expect(statusOf('fake.Item/b')).toBe('failed');

    // Nothing new in Git and the retry is not due: this pass works on nothing (t2 would answer now), and b is still failed.
    world.device('t2').unreachable = false;
    world.calls.length = 0;
    const next = await apply();
    expect(world.calls).toEqual([]);
    expect(statusOf('fake.Item/b')).toBe('failed');
    expect(next.stdout).toMatch(/: 0 changed, 0 deleted, 0 already converged, 0 not done in [\d.]+s; not converged: 1 failed from earlier passes \(plumb status lists them\)\n$/);
    expect(next.code).toBe(1);

    // A sweep reads it again (and the device works now): converged, exit 0.
    const sweep = await apply('--all');
    expect(world.device('t2').items.get('b')).toEqual({ value: 'B2' });
    expect(sweep.stdout).toMatch(/: 1 changed, 0 deleted, 1 already converged, 0 not done in [\d.]+s\n$/);
    expect(sweep.code).toBe(0);
  });

  test('a removal left pending by an earlier pass keeps the exit code 1 until the provider confirms it', async () => {
    repo.write('items.yaml', `${item('a', 't1', 'A1')}---\n${item('b', 't2', 'B1')}`);
    repo.commit('A');
    expect((await apply()).code).toBe(0);

    repo.write('items.yaml', item('a', 't1', 'A1'));
    repo.commit('B drops b');
    world.device('t2').unreachable = true;
    const failed = await apply();
    expect(failed.stdout).toMatch(/ 1 not done in [\d.]+s\n$/);
    expect(failed.code).toBe(1);

    world.device('t2').unreachable = false;
    world.calls.length = 0;
    const next = await apply();
    expect(world.calls).toEqual([]); // backing off: not due yet
    expect(next.stdout).toMatch(/: 0 changed, 0 deleted, 0 already converged, 0 not done in [\d.]+s; not converged: 1 deletion\(s\) pending from earlier passes \(plumb status lists them\)\n$/);
    expect(next.code).toBe(1);
    expect(world.device('t2').items.has('b')).toBe(true);
  });

  test('a pending reboot is shown in the summary, this pass and the next, and counts as converged for the exit code', async () => {
    repo.write('settings.yaml', setting('turbo', 't1', 'on'));
    repo.commit('A');
    const first = await apply();
    expect(world.device('t1').settings.get('turbo')).toEqual({ current: '', staged: 'on' });
    expect(first.stdout).toMatch(/: 1 changed, 0 deleted, 0 already converged, 0 not done in [\d.]+s; 1 pending reboot\n$/);
    expect(first.code).toBe(0);

    const second = await apply();
    expect(second.stdout).toMatch(/: 0 changed, 0 deleted, 0 already converged, 0 not done in [\d.]+s; 1 pending reboot\n$/);
    expect(second.code).toBe(0);
  });

  test('drift on a drift: report resource is reported, left alone and exits 0, until a sweep reads it converged again', async () => {
    repo.write('items.yaml', item('motd', 't1', 'hello', ', drift: report'));
    repo.commit('A');
    expect((await apply()).code).toBe(0);
    world.device('t1').items.set('motd', { value: 'changed by hand' });

    const sweep = await apply('--all');
    expect(sweep.stdout).toMatch(/: 0 changed, 0 deleted, 0 already converged, 0 not done in [\d.]+s; 1 drifted \(reported\)\n$/);
    expect(sweep.code).toBe(0);
    expect(world.device('t1').items.get('motd')).toEqual({ value: 'changed by hand' });

    // A pass that does not read it still says it drifted (as plumb status does), not "0 drifted".
    const quiet = await apply();
    expect(quiet.stdout).toMatch(/; 1 drifted \(reported\)\n$/);

    world.device('t1').items.set('motd', { value: 'hello' });
    const back = await apply('--all');
    expect(back.stdout).toMatch(/: 0 changed, 0 deleted, 1 already converged, 0 not done in [\d.]+s\n$/);
  });
});
