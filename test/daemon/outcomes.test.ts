import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { compileConfig } from '../../src/daemon/config.js';
import { Engine } from '../../src/daemon/engine.js';
import { silentLog } from '../../src/daemon/log.js';
import { builtinProviders } from '../../src/daemon/providers.js';
import type { KindHandler, Provider, Session } from '../../src/provider.js';
import type { SshSession } from '../../providers/ssh/index.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';
import { startSshLab, type SshLab } from '../helpers/ssh-lab.js';

/**
 * An action's outcome, journaled exactly: a guardless command whose request
 * never left Plumb is `not-sent` and simply runs on the next try; one cut off
 * after it was sent is `unknown`, is not run again on a guess, says why, and is
 * settled by an operator with `plumb resolve` (audited).
 */
describe('journaled outcomes of a command without a guard', () => {
  let lab: SshLab;
  let repo: TempRepo;
  let engine: Engine;
  let stateDir: string;
  /** Before the command's write starts, after its read: what the test does to the connection there. */
  let beforeWrite: ((s: SshSession) => Promise<void>) | undefined;

  beforeAll(async () => {
    lab = await startSshLab(['web1']);
  });
  afterAll(async () => {
    await lab.stop();
  });

  /** The real SSH provider, with a hook between a command's read and its write (the window a network cut lands in). */
  function providers(): Provider[] {
    return builtinProviders().map((p) => {
      if (p.name !== 'ssh') return p;
      const kinds = p.kinds.map((k) => {
        if (k.kind !== 'ssh.Command') return k;
        const wrapped: KindHandler<unknown, unknown, Session> = {
          ...k,
          async apply(s, r, changes, ctx) {
            await beforeWrite?.(s as SshSession);
            return k.apply(s, r, changes, ctx);
          },
        };
        return wrapped;
      });
      return { ...p, kinds };
    });
  }

  const host = () => lab.sim.host('web1');
  const runs = (): number => host().execLog.filter((e) => e.command.includes('migrate-once')).length;
  const ops = (): Array<{ state: string; error: string | null }> =>
    engine.store.db.prepare("SELECT state, error FROM ops WHERE resource_id = 'ssh.Command/migrate' ORDER BY id").all() as Array<{ state: string; error: string | null }>;

  beforeEach(async () => {
    beforeWrite = undefined;
    host().faults = {};
    repo = new TempRepo();
    stateDir = tempDir('plumb-outcomes-');
    repo.write('targets.yaml', lab.target('web1'));
    repo.write('cmd.yaml', `apiVersion: plumb/v1\nkind: ssh.Command\nmetadata: { name: migrate, target: web1 }\nspec: { run: "echo migrate-once" }\n`);
    repo.commit('A');
    engine = await Engine.open({
      config: compileConfig({ repo: { url: repo.dir }, stateDir, run: { maxAttempts: 1, backoff: '1ms', maxBackoff: '1ms', retryAfter: '1ms', maxRetryAfter: '1ms', connectTimeout: '2s', opTimeout: '5s' } }),
      providers: providers(),
      log: silentLog,
      env: {},
    });
  });
  afterEach(async () => {
    await engine.close();
    repo.cleanup();
  });

  test('the connection is gone before the command is sent: not-sent, and the next pass simply runs it once', async () => {
    beforeWrite = async (s) => {
      beforeWrite = undefined;
      const gone = new Promise<void>((resolve) => {
        const check = (): void => (s.alive ? void setImmediate(check) : resolve());
        check();
      });
      host().dropAll();
      await gone;
    };
    const first = await engine.pass();
    expect(first.run!.results[0]).toMatchObject({ status: 'failed', error: { code: 'PLUMB_SESSION_LOST', message: expect.stringContaining('it was not sent') } });
    expect(ops()).toEqual([{ state: 'not-sent', error: expect.stringContaining('connection lost before exec') }]);
    expect(runs()).toBe(0);

    const second = await engine.pass();
    expect(second.run!.results[0]).toMatchObject({ status: 'changed' });
    expect(runs()).toBe(1);
    expect(ops().map((o) => o.state)).toEqual(['not-sent', 'done']);
  });

  test('cut off after it was sent: unknown, not run again on a guess, the message says what happened; --not-run lets it run once more', async () => {
    host().faults.dropAfterRequests = 0; // the exec request arrives, and the connection goes down with it unanswered
    const first = await engine.pass();
    expect(first.run!.results[0]).toMatchObject({ status: 'failed' });
    expect(ops()).toEqual([{ state: 'unknown', error: expect.stringContaining('connection lost') }]);
    const before = runs(); // the host got the request: whether it ran is exactly what nobody knows

    const second = await engine.pass();
    const refused = second.run!.results[0]!;
    expect(refused).toMatchObject({ status: 'failed', error: { code: 'PLUMB_INTERRUPTED' } });
    expect(refused.error!.message).toContain('has an unknown outcome (ssh web1: connection lost');
    expect(refused.error!.message).not.toContain('crash');
    expect(refused.error!.message).toContain('plumb resolve ssh.Command/migrate --ran');
    expect(runs()).toBe(before);

    expect(engine.resolve({ id: 'ssh.Command/migrate', ran: false, by: 'alice', reason: 'checked the app log: never started' })).toBe(1);
    const third = await engine.pass();
    expect(third.run!.results[0]).toMatchObject({ status: 'changed' });
    expect(runs()).toBe(before + 1);
    const audit = engine.store.events({ resourceId: 'ssh.Command/migrate' }).find((e) => e.type === 'resolve');
    expect(audit?.message).toBe('resolved by alice: it did not run: checked the app log: never started');
  });

  test('--ran records it as done: the next passes do not run it', async () => {
    host().faults.dropAfterRequests = 0;
    await engine.pass();
    expect(ops().map((o) => o.state)).toEqual(['unknown']);
    const before = runs();
    expect(() => engine.resolve({ id: 'ssh.Command/nothing', ran: true, by: 'bob', reason: 'x' })).toThrow(/nothing called ssh\.Command\/nothing is recorded/);
    engine.resolve({ id: 'ssh.Command/migrate', ran: true, by: 'bob', reason: 'it ran by hand' });
    for (let i = 0; i < 2; i++) {
      const pass = await engine.pass({ sweep: true });
      expect(pass.run!.results.find((r) => r.id === 'ssh.Command/migrate')).toMatchObject({ status: 'converged' });
    }
    expect(runs()).toBe(before);
    expect(ops().map((o) => o.state)).toEqual(['done']);
    expect(() => engine.resolve({ id: 'ssh.Command/migrate', ran: true, by: 'bob', reason: 'again' })).toThrow(/no write of unknown outcome/);
  });
});
