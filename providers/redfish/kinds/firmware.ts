/**
 * redfish.Firmware: the version of one component of the UpdateService's
 * FirmwareInventory. A different version is updated with SimpleUpdate, then the
 * task monitor (202 + Location) is followed to completion under the operation's
 * deadline. The update is journaled before it is requested and its task monitor
 * right after: a retry or a restart follows that task instead of starting another
 * update. No remove(): firmware is not uninstalled.
 */
import { throwIfAborted } from '../../../src/provider.js';
import { ProviderError, SpecError } from '../../../src/errors.js';
import type { JsonObject, KindHandler, OpContext } from '../../../src/provider.js';
import { isObject } from '../../../src/util/object.js';
import { action, forget, memberById, memberIds, members, serviceLink } from '../discovery.js';
import { retryAfterMs } from '../http.js';
import { issue, pollUntil, recall, remember, settle } from '../long-ops.js';
import { extractMessages, messagesText } from '../messages.js';
import type { RedfishSession } from '../session.js';
import { odataId } from '../session.js';
import { firmwareClaims } from '../claims.js';

export interface FirmwareSpec {
  component: string;
  version: string;
  image: string;
  transferProtocol?: string;
}

export interface FirmwareActual {
  component: string;
  name: string | null;
  version: string | null;
  updateable: boolean | null;
}

const RUNNING = new Set(['New', 'Starting', 'Running', 'Pending', 'Stopping', 'Suspended', 'Service', 'Interrupted']);
const FAILED = new Set(['Exception', 'Killed', 'Cancelled', 'Cancelling']);
const RECENT_TASKS = 20;
/** Task monitors seen to end in failure: a retry starts a new update rather than following them again. */
const finishedTasks = new Set<string>();

async function inventoryUri(s: RedfishSession, component: string, signal: AbortSignal): Promise<string> {
  const key = `fw:${component}`;
  const cached = s.discovery.get(key);
  if (typeof cached === 'string') return cached;
  const update = await s.getJson(await serviceLink(s, 'UpdateService', signal), signal);
  const link = odataId(update.FirmwareInventory);
  if (!link) throw new ProviderError(`redfish ${s.targetName}: the UpdateService lists no FirmwareInventory`);
  const all = await members(s, s.path(link), signal);
  let found = memberById(all, component);
  if (!found) {
    // Not an Id: try the Name of each item.
    for (const u of all) {
      const body = await s.getJson(u, signal);
      if (body.Name === component) {
        found = u;
        break;
      }
    }
  }
  if (!found) throw new SpecError(`redfish ${s.targetName}: no firmware component "${component}" (the inventory has: ${memberIds(all, 'nothing')})`);
  s.discovery.set(key, found);
  return found;
}

function taskState(body: unknown): string | undefined {
  return isObject(body) && typeof body.TaskState === 'string' ? body.TaskState : undefined;
}

/** Follows a task monitor (202 while running) or a Task resource (TaskState) until it ends. */
async function followTask(s: RedfishSession, uri: string, ctx: OpContext): Promise<void> {
  await pollUntil(s, ctx, `redfish ${s.targetName}: waiting for the update task ${uri}`, async () => {
    const res = await s.request('GET', uri, { signal: ctx.signal });
    const later = retryAfterMs(res.headers['retry-after']);
    if (res.status === 404) {
      // Some BMCs drop the monitor once the task is done: the verifying re-read judges the outcome.
      ctx.log.info({ target: s.targetName, uri }, 'the task monitor is gone; reading the version');
      return { done: true, value: undefined };
    }
    if (res.status === 202) return { done: false, ...(later !== undefined ? { delayMs: later } : {}) };
    if (res.status < 200 || res.status >= 300) {
      const text = messagesText(extractMessages(res.json));
      const asked = res.status === 429 || res.status === 503 ? later : undefined;
      throw new ProviderError(`redfish ${s.targetName}: GET ${uri} -> ${res.status} while following the update task${text ? `: ${text}` : ''}`, {
        retryable: res.status >= 500 || res.status === 429,
        ...(asked !== undefined ? { retryAfterMs: asked } : {}),
      });
    }
    const state = taskState(res.json);
    if (state === undefined || state === 'Completed') return { done: true, value: undefined };
    if (FAILED.has(state)) {
      const body = res.json as JsonObject;
      const text = messagesText([...extractMessages(body), ...(Array.isArray(body.Messages) ? extractMessages({ '@Message.ExtendedInfo': body.Messages }) : [])]);
      throw new ProviderError(`redfish ${s.targetName}: the update task ended in ${state}${text ? `: ${text}` : ''}`);
    }
    if (RUNNING.has(state)) return { done: false, ...(later !== undefined ? { delayMs: later } : {}) };
    return { done: false };
  });
}

/** After a crash between journaling an update and learning its task: a task still running on the BMC, if any. */
async function runningUpdateTask(s: RedfishSession, signal: AbortSignal): Promise<string | undefined> {
  try {
    const service = await s.getJson(await serviceLink(s, 'TaskService', signal), signal);
    const link = odataId(service.Tasks);
    if (!link) return undefined;
    const all = (await members(s, s.path(link), signal)).slice(-RECENT_TASKS).reverse();
    for (const uri of all) {
      const state = taskState(await s.getJson(uri, signal));
      if (state !== undefined && RUNNING.has(state)) return uri;
    }
  } catch (err) {
    if (err instanceof ProviderError) return undefined;
    throw err;
  }
  return undefined;
}

export const firmwareKind: KindHandler<FirmwareSpec, FirmwareActual, RedfishSession> = {
  kind: 'redfish.Firmware',
  schema: 'redfish.firmware.schema.json',
  claims: (spec) => firmwareClaims(spec),

  async read(s, r, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: read`);
    const uri = await inventoryUri(s, r.spec.component, ctx.signal);
    const got = await s.readOptional(uri, ctx.signal);
    if (!got) {
      forget(s, `fw:${r.spec.component}`);
      throw new ProviderError(`redfish ${s.targetName}: ${uri} disappeared from the FirmwareInventory; will look again`, { retryable: true });
    }
    const b = got.body;
    return {
      component: r.spec.component,
      name: typeof b.Name === 'string' ? b.Name : null,
      version: typeof b.Version === 'string' ? b.Version.trim() : null,
      updateable: typeof b.Updateable === 'boolean' ? b.Updateable : null,
    };
  },

  diff(r, actual) {
    const want = r.spec.version.trim();
    if (actual?.version === want) return [];
    return [{ path: '/version', before: actual?.version ?? null, after: want, note: `update ${r.spec.component} ${actual?.version ?? '(unknown)'} -> ${want} from ${r.spec.image}` }];
  },

  async apply(s, r, changes, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: apply`);
    if (changes.length === 0) return;
    const spec = r.spec;
    const progress = recall(s, r);
    const journaled = typeof progress?.taskMonitor === 'string' ? progress.taskMonitor : undefined;
    const failedBefore = journaled !== undefined && finishedTasks.has(`${s.targetName} ${journaled}`);
    let monitor = failedBefore ? undefined : journaled;
    if (!monitor && !failedBefore && typeof progress?.updateRequestedAt === 'number') {
      // Journaled, then the process died before the BMC's answer was recorded: follow a running task if there is one.
      monitor = await runningUpdateTask(s, ctx.signal);
      if (monitor) ctx.log.info({ target: s.targetName, id: r.id, task: monitor }, 'following an update task started before a restart');
    }
    if (monitor) {
      ctx.log.info({ target: s.targetName, id: r.id, task: monitor }, 'an update for this spec is already under way; following it instead of starting another');
    } else {
      const componentUri = await inventoryUri(s, spec.component, ctx.signal);
      const current = s.lastRead(componentUri)?.body ?? (await s.getJson(componentUri, ctx.signal));
      if (current.Updateable === false) throw new SpecError(`${r.id}: the BMC reports ${spec.component} as not updateable`);
      const service = await s.getJson(await serviceLink(s, 'UpdateService', ctx.signal), ctx.signal);
      const simple = await action(s, service, '#UpdateService.SimpleUpdate', undefined, ctx.signal);
      if (!simple) throw new SpecError(`redfish ${s.targetName}: the UpdateService offers no SimpleUpdate action`);
      const requestedAt = Date.now();
      const body = { ImageURI: spec.image, Targets: [componentUri], ...(spec.transferProtocol ? { TransferProtocol: spec.transferProtocol } : {}) };
      const res = await issue(s, r, ctx, { updateRequestedAt: requestedAt, image: spec.image }, () => s.post(simple.target, body, ctx.signal));
      const location = res.headers.location ?? (res.status === 202 ? odataId(res.json) : undefined);
      if (location) {
        monitor = s.path(location);
        await remember(s, r, ctx, { updateRequestedAt: requestedAt, image: spec.image, taskMonitor: monitor });
      } else if (taskState(res.json) !== undefined && taskState(res.json) !== 'Completed') {
        throw new ProviderError(`redfish ${s.targetName}: SimpleUpdate started a task but named no monitor to follow`);
      }
    }
    if (monitor) {
      try {
        await followTask(s, monitor, ctx);
      } catch (err) {
        if (err instanceof ProviderError && !err.retryable) {
          // The task ended: that update is over, a later attempt may start a new one.
          finishedTasks.add(`${s.targetName} ${monitor}`);
          settle(s, r);
        }
        throw err;
      }
    }
    settle(s, r);
  },

  /** Transfer, flash and verify: up to an hour on slow BMCs. */
  deadlineMs() {
    return 60 * 60_000;
  },

  summarize(actual) {
    if (!actual) return null;
    return { component: actual.component, version: actual.version };
  },
};
