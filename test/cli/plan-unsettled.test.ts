import { afterAll, beforeAll, expect, test } from 'vitest';
import { compileConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
import { builtinProviders } from '../../src/daemon/providers.js';
import { runPlumb } from '../helpers/cli.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';
import { startNetconfLab, SW_NS, type NetconfLab } from '../providers/netconf/netconf-lab.js';

/**
 * `plan --live` with the state says what apply will find unsettled (a write of
 * unknown outcome, a confirmed commit that may still be pending) instead of
 * showing it converged, exits 2, and touches nothing on the device.
 */
let lab: NetconfLab;
beforeAll(async () => {
  lab = await startNetconfLab(['sw1']);
});
afterAll(async () => {
  await lab.stop();
});

test('a transaction cut off at its confirmed commit shows as unsettled in plan --live, which cancels nothing', async () => {
  const repo = new TempRepo();
  const state = tempDir('plumb-plan-unsettled-');
  try {
    repo.write('targets.yaml', lab.targetDoc('sw1', '  confirmTimeout: 10m\n'));
    repo.write('vlan.yaml', `apiVersion: plumb/v1\nkind: netconf.Config\nmetadata: { name: v700, target: sw1 }\nspec:\n  keys: { vlans/vlan: [id] }\n  config:\n    vlans:\n      "@xmlns": ${SW_NS}\n      vlan: [{ id: 700, name: lab }]\n`);
    repo.commit('A');
    const dev = lab.sim.device('sw1');
    dev.faults = { hangRpc: 'commit' }; // the confirmed commit gets no answer: its outcome is unknown
    const engine = await Engine.open({ config: compileConfig({ repo: { url: repo.dir }, stateDir: state, run: { maxAttempts: 1, opTimeout: '1s', connectTimeout: '5s' } }), providers: builtinProviders(), log: silentLog, env: {} });
    try {
      const pass = await engine.pass();
      expect(pass.run!.results[0]).toMatchObject({ status: 'failed', error: { code: 'PLUMB_TIMEOUT' } });
      expect(engine.store.db.prepare("SELECT state, progress IS NOT NULL AS p FROM ops WHERE resource_id = 'netconf.Config/v700'").all()).toEqual([{ state: 'unknown', p: 1 }]);
    } finally {
      await engine.close();
    }
    dev.faults = {};
    const counters = { ...dev.counters };
    const plan = await runPlumb(['plan', '--live', '--repo', repo.dir, '--state', state]).done;
    expect(plan.code, plan.stdout + plan.stderr).toBe(2);
    expect(plan.stdout).toMatch(/! unsettled netconf\.Config\/v700/);
    expect(plan.stdout).toContain('has an unknown outcome');
    expect(plan.stdout).toContain('a confirmed commit that may still be pending on the device');
    expect(plan.stdout).toContain('1 unsettled (settled first by apply)');
    const json = JSON.parse((await runPlumb(['plan', '--live', '--json', '--repo', repo.dir, '--state', state]).done).stdout) as { ops: Array<{ unsettled?: boolean }> };
    expect(json.ops[0]!.unsettled).toBe(true);
    // A dry run: no edit, no commit, no cancel-commit reached the device.
    expect(dev.counters.editConfigs).toBe(counters.editConfigs);
    expect(dev.counters.commits).toBe(counters.commits);
    expect(dev.counters.rollbacks).toBe(counters.rollbacks);
  } finally {
    repo.cleanup();
  }
}, 60_000);
