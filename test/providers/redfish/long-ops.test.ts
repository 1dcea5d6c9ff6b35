/** Long operations are never issued twice for one plan: the in-process record and the crash journal. */
import { describe, expect, it } from 'vitest';
import { notSent } from '../../../providers/redfish/http.js';
import { issue, pollUntil, recall, settle } from '../../../providers/redfish/long-ops.js';
import { httpError } from '../../../providers/redfish/messages.js';
import type { RedfishSession } from '../../../providers/redfish/session.js';
import { AuthError, CancelledError, HostKeyError, ProviderError, SessionLostError, SpecError, TimeoutError, UnreachableError } from '../../../src/errors.js';
import type { Json } from '../../../src/provider.js';
import { opContext } from '../../helpers/provider-contract.js';
import { makeResource } from '../../helpers/resources.js';

const s = { targetName: 'bmc-x' } as RedfishSession;

/** A context whose checkpoints land in `journal`, newest last (what Store.checkpoint would hold: the last one). */
function journaling(): { ctx: ReturnType<typeof opContext> & { checkpoint: (p: Json) => void }; journal: Json[] } {
  const journal: Json[] = [];
  return { ctx: { ...opContext(), checkpoint: (p: Json) => void journal.push(p) }, journal };
}

const refusals: Array<[string, () => Error]> = [
  ['503 with @Message.ExtendedInfo', () => httpError({ what: 'POST /reset', status: 503, body: { error: { '@Message.ExtendedInfo': [{ MessageId: 'Base.1.8.ServiceTemporarilyUnavailable', Message: 'busy' }] } } })],
  ['500 without a body', () => httpError({ what: 'POST /reset', status: 500, body: undefined })],
  ['409 ResourceInUse', () => httpError({ what: 'POST /reset', status: 409, body: { error: { '@Message.ExtendedInfo': [{ MessageId: 'Base.1.8.ResourceInUse' }] } } })],
  ['400 ActionParameterValueNotInList', () => httpError({ what: 'POST /reset', status: 400, body: { error: { '@Message.ExtendedInfo': [{ MessageId: 'Base.1.8.ActionParameterValueNotInList' }] } } })],
  ['403', () => httpError({ what: 'POST /reset', status: 403, body: undefined })],
  ['a 2xx refusing part of it', () => new SpecError('POST /reset -> 200, but the BMC refused part of it')],
  ['a refused log-in', () => new AuthError('the BMC refused the credentials')],
  ['a connection that never opened', () => new UnreachableError('ECONNREFUSED')],
  ['a certificate refused in the handshake', () => new HostKeyError('does not match the pinned fingerprint; no credentials were sent')],
  ['a deadline before the first byte', () => notSent(new TimeoutError('deadline'))],
  ['a cancellation before the first byte', () => notSent(new CancelledError('superseded'))],
  ['a connection dropped during the log-in, before the action', () => notSent(new SessionLostError('dropped'))],
];

const unknowns: Array<[string, () => Error]> = [
  ['the connection dropped after the request was written', () => new SessionLostError('dropped after sending')],
  ['a timeout after sending', () => new TimeoutError('no answer')],
  ['a cancellation mid-request', () => new CancelledError('cancelled')],
];

describe('redfish long operations', () => {
  it.each(refusals)('a step refused by %s was not performed: the journal goes back to null, the record is dropped', async (_what, error) => {
    const r = makeResource('redfish.System', 'n1', { bios: { A: 'x' } });
    const { ctx, journal } = journaling();
    let journaledFirst = false;
    const err = error();
    await expect(
      issue(s, r, ctx, { resetIssuedAt: 1 }, async () => {
        journaledFirst = journal.length === 1;
        throw err;
      }),
    ).rejects.toBe(err);
    expect(journaledFirst).toBe(true);
    expect(journal).toEqual([{ resetIssuedAt: 1 }, null]);
    expect(recall(s, r)).toBeUndefined();
  });

  it.each(refusals)('a later step refused by %s goes back to the step before it, in the journal and in the process', async (_what, error) => {
    const r = makeResource('redfish.System', 'n2', { powerState: 'Off' });
    const { ctx, journal } = journaling();
    await issue(s, r, ctx, { shutdownIssuedAt: 1 }, async () => undefined);
    await expect(issue(s, r, ctx, { shutdownIssuedAt: 1, forceOffIssuedAt: 2 }, () => Promise.reject(error()))).rejects.toThrow();
    expect(journal).toEqual([{ shutdownIssuedAt: 1 }, { shutdownIssuedAt: 1, forceOffIssuedAt: 2 }, { shutdownIssuedAt: 1 }]);
    expect(recall(s, r)).toEqual({ shutdownIssuedAt: 1 });
    settle(s, r);
  });

  it.each(unknowns)('when %s the outcome is unknown: it stays journaled and a retry recalls it', async (_what, error) => {
    const r = makeResource('redfish.System', 'n3', { bios: { A: 'x' } });
    const { ctx, journal } = journaling();
    const err = error();
    await expect(issue(s, r, ctx, { resetIssuedAt: 2 }, () => Promise.reject(err))).rejects.toBe(err);
    expect(journal).toEqual([{ resetIssuedAt: 2 }]);
    expect(recall(s, r)).toEqual({ resetIssuedAt: 2 });
    // Another spec is another plan.
    expect(recall(s, { ...r, spec: { bios: { A: 'y' } } })).toBeUndefined();
    settle(s, r);
  });

  it('notSent never marks a shared abort reason: it returns a fresh error of the same kind', () => {
    const reason = new TimeoutError('deadline');
    const fresh = notSent(reason);
    expect(fresh).not.toBe(reason);
    expect(fresh).toBeInstanceOf(TimeoutError);
    expect(fresh).toMatchObject({ requestSent: false, message: 'deadline', cause: reason });
    expect((reason as { requestSent?: boolean }).requestSent).toBeUndefined();
    const refused = new ProviderError('503');
    expect(notSent(refused)).toBe(refused);
  });

  it('success keeps the record until the kind settles it', async () => {
    const r = makeResource('redfish.System', 'n4', { bios: { A: 'x' } });
    await issue(s, r, opContext(), { resetIssuedAt: 3 }, async () => undefined);
    expect(recall(s, r)).toEqual({ resetIssuedAt: 3 });
    settle(s, r);
    expect(recall(s, r)).toBeUndefined();
  });

  it('after a crash the journaled progress (Resource.resume) is recalled; something issued since in this process is newer', async () => {
    const r = { ...makeResource('redfish.Firmware', 'f', { component: 'BIOS' }), resume: { startedAt: 1, progress: { taskMonitor: '/t/1' } } };
    expect(recall(s, r)).toEqual({ taskMonitor: '/t/1' });
    await issue(s, r, opContext(), { taskMonitor: '/t/2' }, async () => undefined);
    expect(recall(s, r)).toEqual({ taskMonitor: '/t/2' });
    settle(s, r);
    expect(recall(s, r)).toEqual({ taskMonitor: '/t/1' });
  });

  it('a refused step after a crash goes back to the journaled progress it resumed from', async () => {
    const r = { ...makeResource('redfish.System', 'n5', { powerState: 'Off' }), resume: { startedAt: 1, progress: { shutdownIssuedAt: 5 } } };
    const { ctx, journal } = journaling();
    await expect(issue(s, r, ctx, { shutdownIssuedAt: 5, forceOffIssuedAt: 6 }, () => Promise.reject(new ProviderError('503', { retryable: true })))).rejects.toThrow();
    expect(journal).toEqual([{ shutdownIssuedAt: 5, forceOffIssuedAt: 6 }, { shutdownIssuedAt: 5 }]);
    expect(recall(s, r)).toEqual({ shutdownIssuedAt: 5 });
    settle(s, r);
  });

  it('a poll refused with a Retry-After waits it out in full, past the pollInterval cap', async () => {
    const polling = { targetName: 'bmc-x', pollMaxMs: 10 } as RedfishSession;
    const calls: number[] = [];
    const value = await pollUntil(polling, { signal: AbortSignal.timeout(10_000) }, 'waiting', async () => {
      calls.push(Date.now());
      if (calls.length === 1) throw httpError({ what: 'GET /s', status: 503, body: undefined, retryAfterMs: 60 });
      return { done: true, value: 'settled' };
    });
    expect(value).toBe('settled');
    expect(calls).toHaveLength(2);
    expect(calls[1]! - calls[0]!).toBeGreaterThanOrEqual(60);
  });

  it('a poll refused with a Retry-After that ends past the deadline fails at once, saying what the BMC asked', async () => {
    const polling = { targetName: 'bmc-x', pollMaxMs: 10 } as RedfishSession;
    let calls = 0;
    const err = await pollUntil(polling, { signal: AbortSignal.timeout(60_000), deadlineAt: Date.now() + 5_000 }, 'waiting', async () => {
      calls += 1;
      throw httpError({ what: 'redfish bmc-x: GET /s', status: 503, body: undefined, retryAfterMs: 120_000 });
    }).catch((e: unknown) => e);
    expect(calls).toBe(1);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ retryable: true, retryAfterMs: 120_000 });
    expect((err as Error).message).toMatch(/^redfish bmc-x: GET \/s -> 503: .*\(Retry-After 120 s\); the target asked to wait 120 s before polling again, past this operation's deadline \([0-5] s left\)$/);
  });
});
