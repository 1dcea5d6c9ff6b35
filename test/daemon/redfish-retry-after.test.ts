/**
 * Issue 10, "Retry-After is honoured": a BMC that answers 503 or 429 with a
 * Retry-After is left alone at least that long, by the queue's retry within a
 * pass, by a later pass (next_attempt_at) and by a poll of a long operation.
 * Through the engine (real runner, store and provider) against the simulated
 * BMCs on loopback; the gaps are measured from the simulator's own request log
 * (arrival times), never bounded above.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { profileSpec, type RequestRecord, type SimBmc } from '../../fixtures/simulators/redfish/index.js';
import { compileConfig, type RawConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
import { builtinProviders } from '../../src/daemon/providers.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';
import { startRedfishLab, type RedfishLab } from '../providers/redfish/redfish-lab.js';

const BMCS = ['seconds1', 'date1', 'long1', 'later1', 'poll1', 'poll2', 'shared1', 'shared2'];
const paths = profileSpec('generic').paths;
/** Backoff far below any Retry-After here: a gap of a second can only come from the Retry-After. */
const RUN: NonNullable<RawConfig['run']> = { backoff: '10ms', maxBackoff: '20ms', retryAfter: '1ms', maxRetryAfter: '2ms', connectTimeout: '2s', opTimeout: '20s' };

function doc(kind: string, name: string, spec: string, target = name): string {
  return `apiVersion: plumb/v1\nkind: ${kind}\nmetadata: { name: ${name}, target: ${target} }\nspec:\n${spec}`;
}

/** Waits for a state the test can see (a guard of 30 s against a hang, not a timing assumption). */
async function until(cond: () => boolean, what: string): Promise<void> {
  const guard = Date.now() + 30_000;
  while (!cond()) {
    if (Date.now() > guard) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** The request right after the refused one, on the same method and path. */
function retryOf(log: RequestRecord[], refused: RequestRecord): RequestRecord {
  const next = log[log.indexOf(refused) + 1];
  if (!next) throw new Error(`no request after the refused ${refused.method} ${refused.path}`);
  return next;
}

describe('redfish: Retry-After is a floor for every retry', () => {
  let lab: RedfishLab;
  let repo: TempRepo | undefined;
  let engine: Engine | undefined;
  const bmc = (name: string): SimBmc => lab.sim.bmc(name);
  const row = (id: string): { status: string; next_attempt_at: number | null; last_error: string | null } =>
    engine!.store.db.prepare('SELECT status, next_attempt_at, last_error FROM resources WHERE id = ?').get(id) as { status: string; next_attempt_at: number | null; last_error: string | null };

  async function open(run: NonNullable<RawConfig['run']> = RUN): Promise<Engine> {
    repo = new TempRepo();
    repo.write('targets.yaml', BMCS.map((n) => lab.targetYaml(n)).join('---\n'));
    engine = await Engine.open({ config: compileConfig({ repo: { url: repo.dir }, stateDir: tempDir('plumb-rf-retry-after-'), run }), providers: builtinProviders(), log: silentLog, env: {} });
    return engine;
  }

  beforeAll(async () => {
    lab = await startRedfishLab(BMCS, { resetDelayMs: 40, gracefulDelayMs: 40 });
  });
  afterAll(async () => {
    await lab.stop();
  });
  afterEach(async () => {
    await engine?.close();
    repo?.cleanup();
    engine = undefined;
    repo = undefined;
  });

  test('a 503 with Retry-After: 1 on a PATCH: the queue retries no sooner than 1 s after the refusal (backoff 10 ms)', async () => {
    const b = bmc('seconds1');
    await open();
    repo!.write('s.yaml', doc('redfish.System', 'seconds1', '  assetTag: rack-1\n'));
    repo!.commit('asset tag');
    const refusal = b.faults.failNext('PATCH', paths.system, 503, { retryAfter: 1 });
    const report = await engine!.pass();
    expect(report.run!.results.map((r) => [r.status, r.attempts])).toEqual([['changed', 2]]);
    const patches = b.requests('PATCH', paths.system);
    expect(patches.map((r) => r.status)).toEqual([503, 204]);
    expect(refusal.fired).toBe(1);
    expect(patches[1]!.at - patches[0]!.at).toBeGreaterThanOrEqual(1_000);
    expect(b.state.assetTag).toBe('rack-1');
  });

  test('a 429 with an HTTP-date: the retry arrives no earlier than the date named', async () => {
    const b = bmc('date1');
    await open();
    repo!.write('s.yaml', doc('redfish.System', 'date1', '  indicatorLed: Lit\n'));
    repo!.commit('led');
    // An HTTP-date has whole seconds: between 1 and 2 s from now.
    const refusal = b.faults.failNext('PATCH', paths.system, 429, { retryAfter: new Date(Date.now() + 2_000) });
    const report = await engine!.pass();
    expect(report.run!.results.map((r) => [r.status, r.attempts])).toEqual([['changed', 2]]);
    const [refused, retry] = b.requests('PATCH', paths.system);
    expect([refused!.status, retry!.status]).toEqual([429, 204]);
    expect(retry!.at).toBeGreaterThanOrEqual(Date.parse(refusal.retryAfter!));
    expect(b.state.indicatorLed).toBe('Lit');
  });

  test('a Retry-After longer than one attempt may take: failed at once, saying so; no retry before it, in this pass or the next', async () => {
    const b = bmc('long1');
    await open();
    repo!.write('s.yaml', doc('redfish.System', 'long1', '  assetTag: rack-3\n'));
    repo!.commit('asset tag');
    b.faults.failNext('PATCH', paths.system, 503, { retryAfter: 3_600 });
    const report = await engine!.pass();
    const [result] = report.run!.results;
    expect([result!.status, result!.attempts, result!.error?.code]).toEqual(['failed', 1, 'PLUMB_PROVIDER']);
    expect(result!.error?.message).toMatch(/-> 503: .*\(Retry-After 3600 s\); the target asked to wait 3600 s before trying again, longer than one attempt may take \(20 s\): not retried in this pass$/);
    const [refused] = b.requests('PATCH', paths.system);
    expect(b.requests('PATCH', paths.system)).toHaveLength(1);
    const stored = row('redfish.System/long1');
    expect(stored.status).toBe('failed');
    expect(stored.next_attempt_at!).toBeGreaterThanOrEqual(refused!.at + 3_600_000);
    // The next pass finds the retry not due: no second PATCH.
    await engine!.pass();
    expect(b.requests('PATCH', paths.system)).toHaveLength(1);
    expect(b.state.assetTag).toBe('');
  });

  test('the retry by a later pass is not due before the Retry-After, however short run.retryAfter is', async () => {
    const b = bmc('later1');
    await open({ ...RUN, maxAttempts: 1 });
    repo!.write('s.yaml', doc('redfish.System', 'later1', '  assetTag: rack-4\n'));
    repo!.commit('asset tag');
    b.faults.failNext('PATCH', paths.system, 503, { retryAfter: 120 });
    const report = await engine!.pass();
    expect(report.run!.results.map((r) => [r.status, r.attempts])).toEqual([['failed', 1]]);
    const [refused] = b.requests('PATCH', paths.system);
    const stored = row('redfish.System/later1');
    expect(stored.last_error).toMatch(/\(Retry-After 120 s\)$/);
    expect(stored.next_attempt_at!).toBeGreaterThanOrEqual(refused!.at + 120_000);
  });

  test('the Retry-After holds for the whole target: its next resource sends nothing before it either (no second log-in at once)', async () => {
    const b = bmc('shared1');
    await open();
    repo!.write('s.yaml', [doc('redfish.System', 'shared1', '  assetTag: rack-5\n'), doc('redfish.Manager', 'shared1-bmc', '  timeZone: "+01:00"\n', 'shared1')].join('---\n'));
    repo!.commit('system and manager');
    // Whichever resource goes first has its log-in refused; the other waits its turn in the target's lane.
    b.faults.failNext('POST', paths.sessions, 503, { retryAfter: 1 });
    const report = await engine!.pass();
    expect(report.run!.results.map((r) => r.status).sort()).toEqual(['changed', 'changed']);
    const all = b.requests();
    const refused = all.find((r) => r.status === 503)!;
    const after = all.slice(all.indexOf(refused) + 1);
    expect(after.length).toBeGreaterThan(0);
    expect(Math.min(...after.map((r) => r.at)) - refused.at).toBeGreaterThanOrEqual(1_000);
    expect(b.requests('POST', paths.sessions).map((r) => r.status)).toEqual([503, 201]);
    expect([b.state.assetTag, b.state.timeZone]).toEqual(['rack-5', '+01:00']);
  });

  test('a Retry-After past one attempt fails the target\'s other resources at once too, unsent, due no earlier', async () => {
    const b = bmc('shared2');
    await open({ ...RUN, perTarget: 1 });
    repo!.write('s.yaml', [doc('redfish.System', 'shared2', '  assetTag: rack-6\n'), doc('redfish.Manager', 'shared2-bmc', '  timeZone: "+02:00"\n', 'shared2')].join('---\n'));
    repo!.commit('system and manager');
    b.faults.failNext('POST', paths.sessions, 503, { retryAfter: 3_600 });
    const report = await engine!.pass();
    expect(report.run!.results.map((r) => [r.status, r.attempts])).toEqual([
      ['failed', 1],
      ['failed', 1],
    ]);
    const messages = report.run!.results.map((r) => r.error!.message);
    expect(messages.some((m) => /\(Retry-After 3600 s\); the target asked to wait 3600 s before trying again/.test(m))).toBe(true);
    expect(messages.some((m) => /^target shared2: the target asked to wait \d+ s more \(the Retry-After of an earlier answer\), longer than one attempt may take \(20 s\): not retried in this pass$/.test(m))).toBe(true);
    // One log-in, refused; nothing after it.
    const all = b.requests();
    expect(all[all.length - 1]!.status).toBe(503);
    expect(b.requests('POST', paths.sessions)).toHaveLength(1);
    for (const id of ['redfish.System/shared2', 'redfish.Manager/shared2-bmc']) expect(row(id).next_attempt_at!).toBeGreaterThanOrEqual(all[all.length - 1]!.at + 3_600_000);
  });

  test('a poll refused with Retry-After: 1 while the system powers on: the next poll comes no sooner than 1 s later, within the same attempt', async () => {
    const b = bmc('poll1');
    b.state.powerState = 'Off';
    await open();
    repo!.write('s.yaml', doc('redfish.System', 'poll1', '  powerState: On\n'));
    repo!.commit('on');
    b.faults.holdPower = true;
    try {
      const passing = engine!.pass();
      // The power on was sent and is held in PoweringOn: Plumb is polling. Refuse one poll.
      await until(() => b.counters.resets === 1, 'the power on');
      const refusal = b.faults.failNext('GET', paths.system, 503, { retryAfter: 1 });
      await until(() => refusal.fired === 1, 'a poll to be refused');
      b.faults.holdPower = false;
      const report = await passing;
      expect(report.run!.results.map((r) => [r.status, r.attempts])).toEqual([['changed', 1]]);
    } finally {
      b.faults.holdPower = false;
    }
    const gets = b.requests('GET', paths.system);
    const refused = gets.find((r) => r.status === 503)!;
    expect(retryOf(gets, refused).at - refused.at).toBeGreaterThanOrEqual(1_000);
    expect(b.counters.resetsByType).toEqual({ On: 1 });
    expect(b.state.powerState).toBe('On');
  });

  test('a poll refused with a Retry-After past the operation\'s deadline: failed at once, not waited for, one power on only', async () => {
    const b = bmc('poll2');
    b.state.powerState = 'Off';
    await open();
    repo!.write('s.yaml', doc('redfish.System', 'poll2', '  powerState: On\n'));
    repo!.commit('on');
    b.faults.holdPower = true;
    try {
      const passing = engine!.pass();
      await until(() => b.counters.resets === 1, 'the power on');
      // A power on may take 20 minutes; the BMC asks for an hour.
      b.faults.failNext('GET', paths.system, 503, { retryAfter: 3_600 });
      const report = await passing;
      const [result] = report.run!.results;
      expect([result!.status, result!.attempts]).toEqual(['failed', 1]);
      expect(result!.error?.message).toMatch(/\(Retry-After 3600 s\); the target asked to wait 3600 s before polling again, past this operation's deadline \(\d+ s left\): not retried in this pass$/);
    } finally {
      b.faults.holdPower = false;
    }
    const gets = b.requests('GET', paths.system);
    expect(gets[gets.length - 1]!.status).toBe(503);
    expect(row('redfish.System/poll2').next_attempt_at!).toBeGreaterThanOrEqual(gets[gets.length - 1]!.at + 3_600_000);
    expect(b.counters.resetsByType).toEqual({ On: 1 });
  });
});
