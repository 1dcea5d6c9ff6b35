/** Long operations are never issued twice for one plan: the in-process record and the crash journal. */
import { describe, expect, it } from 'vitest';
import { issue, recall, settle } from '../../../providers/redfish/long-ops.js';
import type { RedfishSession } from '../../../providers/redfish/session.js';
import { ProviderError, TimeoutError, UnreachableError } from '../../../src/errors.js';
import type { Json } from '../../../src/provider.js';
import { opContext } from '../../helpers/provider-contract.js';
import { makeResource } from '../../helpers/resources.js';

const s = { targetName: 'bmc-x' } as RedfishSession;

describe('redfish long operations', () => {
  it('journals before sending; a clear refusal forgets, an unknown outcome remembers', async () => {
    const r = makeResource('redfish.System', 'n1', { bios: { A: 'x' } });
    const journal: Json[] = [];
    const ctx = { ...opContext(), checkpoint: (p: Json) => journal.push(p) };
    let sentAfterJournal = false;
    await expect(
      issue(s, r, ctx, { resetIssuedAt: 1 }, async () => {
        sentAfterJournal = journal.length === 1;
        throw new ProviderError('409 ResourceInUse', { retryable: true });
      }),
    ).rejects.toBeInstanceOf(ProviderError);
    expect(sentAfterJournal).toBe(true);
    expect(recall(s, r)).toBeUndefined();

    for (const err of [new UnreachableError('socket closed'), new TimeoutError('deadline')]) {
      await expect(issue(s, r, ctx, { resetIssuedAt: 2 }, () => Promise.reject(err))).rejects.toBe(err);
      expect(recall(s, r)).toEqual({ resetIssuedAt: 2 });
      // Another spec is another plan.
      expect(recall(s, { ...r, spec: { bios: { A: 'y' } } })).toBeUndefined();
      settle(s, r);
    }
    await issue(s, r, ctx, { resetIssuedAt: 3 }, async () => undefined);
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
});
