import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CancelledError, ProviderError, SessionLostError, TimeoutError, UnreachableError } from '../../src/errors.js';
import type { Applied, BatchItem, Change, KindHandler, Provider, Resource, Session, Target } from '../../src/provider.js';

const here = fileURLToPath(new URL('.', import.meta.url));

interface Item {
  value: string;
  extra?: string;
}

/** Behaviour of one fake device, adjustable mid-test. */
export interface FakeDevice {
  items: Map<string, Item>;
  writes: number;
  reads: number;
  opens: number;
  /** Added before every read/write. */
  latencyMs: number;
  unreachable: boolean;
  /** Reads/writes never answer (until aborted). */
  hang: boolean;
  /** The next N writes fail with a retryable SessionLostError. */
  failWrites: number;
  /** The next N writes are refused (a ProviderError: the device answered no, nothing changed). */
  refuseWrites: number;
  /** fake.Service: running or not, and how often each was restarted. */
  services: Map<string, { running: boolean; restarts: number }>;
  /** fake.Setting: current and staged values, applied at reboot. */
  settings: Map<string, { current: string; staged?: string }>;
  reboots: number;
  /** A reboot in progress finishes at this time (ms since epoch). */
  rebootingUntil: number;
  /** Keyed hashes of passwords the device "has" (it can't tell them back). */
  passwords: Map<string, string>;
  /** Transactions applied (transactional mode), and the size of each. */
  transactions: number[];
  /** The next N transactions fail before changing anything (retryable). */
  failTransactions: number;
  /** While set, every read and write waits for it (to hold ops in flight and count them). */
  gate?: Promise<void>;
}

/** In-memory targets for engine tests: the boundary fake of a provider. */
export class FakeWorld {
  readonly devices = new Map<string, FakeDevice>();
  /** Calls in order, as `op target id`, to assert ordering. */
  readonly calls: string[] = [];
  inFlight = 0;
  maxInFlight = 0;

  device(address: string): FakeDevice {
    let d = this.devices.get(address);
    if (!d) this.devices.set(address, (d = { items: new Map(), writes: 0, reads: 0, opens: 0, latencyMs: 0, unreachable: false, hang: false, failWrites: 0, refuseWrites: 0, services: new Map(), settings: new Map(), reboots: 0, rebootingUntil: 0, passwords: new Map(), transactions: [], failTransactions: 0 }));
    return d;
  }

  get totalWrites(): number {
    return [...this.devices.values()].reduce((n, d) => n + d.writes, 0);
  }
}

class FakeSession implements Session {
  alive = true;
  constructor(readonly device: FakeDevice, readonly address: string) {}
  async close(): Promise<void> {
    this.alive = false;
  }
}

async function wait(device: FakeDevice, world: FakeWorld, signal: AbortSignal): Promise<void> {
  world.inFlight++;
  world.maxInFlight = Math.max(world.maxInFlight, world.inFlight);
  try {
    if (device.hang) {
      await new Promise<void>((_, reject) => {
        const fail = (): void => reject(signal.reason instanceof DOMException && signal.reason.name === 'TimeoutError' ? new TimeoutError('fake device did not answer') : new CancelledError('cancelled'));
        if (signal.aborted) fail();
        signal.addEventListener('abort', fail, { once: true });
      });
    }
    if (device.latencyMs > 0) await new Promise((r) => setTimeout(r, device.latencyMs));
    if (device.gate) await device.gate;
  } finally {
    world.inFlight--;
  }
}

/**
 * `transactional`: the provider applies all of a target's writes in one all-or-nothing transaction (like NETCONF).
 * `kindBatch`: fake.Item writes (and reads) all of a target's items in one call (KindHandler.applyBatch/readMany, like ssh.Package).
 */
export function fakeProvider(world: FakeWorld, options: { transactional?: boolean; kindBatch?: boolean; perTarget?: number } = {}): Provider<FakeSession> {
  const item: KindHandler<Item, Item, FakeSession> = {
    kind: 'fake.Item',
    schema: join(here, 'schemas/fake.item.schema.json'),
    claims: (_spec, name) => [{ key: ['item', name], label: `item ${name}` }],
    async read(s, r, ctx) {
      await wait(s.device, world, ctx.signal);
      s.device.reads++;
      world.calls.push(`read ${s.address} ${r.id}`);
      const found = s.device.items.get(r.name);
      return found ? { ...found } : undefined;
    },
    diff(r: Resource<Item>, actual) {
      const changes: Change[] = [];
      if (actual?.value !== r.spec.value) changes.push({ path: '/value', before: actual?.value ?? null, after: r.spec.value });
      if (r.spec.extra !== undefined && actual?.extra !== r.spec.extra) changes.push({ path: '/extra', before: actual?.extra ?? null, after: r.spec.extra });
      return changes;
    },
    async apply(s, r) {
      await wait(s.device, world, new AbortController().signal);
      world.calls.push(`apply ${s.address} ${r.id}`);
      if (s.device.failWrites > 0) {
        s.device.failWrites--;
        throw new SessionLostError('fake session dropped mid-write');
      }
      if (s.device.refuseWrites > 0) {
        s.device.refuseWrites--;
        throw new ProviderError('fake device refused the write');
      }
      s.device.writes++;
      s.device.items.set(r.name, { value: r.spec.value, ...(r.spec.extra !== undefined ? { extra: r.spec.extra } : {}) });
      return { memo: { appliedValue: r.spec.value } };
    },
    async remove(s, r) {
      world.calls.push(`remove ${s.address} ${r.id}`);
      if (s.device.items.delete(r.name)) s.device.writes++;
    },
    summarize: (actual) => (actual ? { value: actual.value } : null),
  };
  /** Staged like BIOS settings: applying stages, a reboot (spec.reboot) makes staged current. */
  interface SettingSpec {
    value: string;
    reboot?: boolean;
    password?: string;
  }
  interface SettingActual {
    current: string;
    staged?: string;
    rebooting: boolean;
    passwordCurrent?: boolean;
  }
  const finishReboot = (d: FakeDevice): void => {
    if (d.rebootingUntil !== 0 && Date.now() >= d.rebootingUntil) {
      for (const v of d.settings.values()) {
        if (v.staged === undefined) continue;
        v.current = v.staged;
        delete v.staged;
      }
      d.rebootingUntil = 0;
    }
  };
  const setting: KindHandler<SettingSpec, SettingActual, FakeSession> = {
    kind: 'fake.Setting',
    schema: join(here, 'schemas/fake.setting.schema.json'),
    claims: (_spec, name) => [{ key: ['setting', name], label: `setting ${name}` }],
    async read(s, r, ctx) {
      finishReboot(s.device);
      world.calls.push(`read ${s.address} ${r.id}`);
      const found = s.device.settings.get(r.name);
      if (!found) return undefined;
      const actual: SettingActual = { current: found.current, rebooting: s.device.rebootingUntil !== 0, ...(found.staged !== undefined ? { staged: found.staged } : {}) };
      if (r.spec.password) {
        // The device can't say its password; compare what we last set with the secret now referenced.
        const now = ctx.keyedHash((await ctx.secrets.resolve(r.spec.password)).reveal());
        actual.passwordCurrent = (r.memo as { passwordHash?: string } | undefined)?.passwordHash === now;
      }
      return actual;
    },
    diff(r, actual) {
      const changes: Change[] = [];
      // With reboot allowed only the running value counts; without, a staged value is as good as it gets.
      const effective = r.spec.reboot ? actual?.current : (actual?.staged ?? actual?.current);
      if (effective !== r.spec.value) changes.push({ path: '/value', before: actual?.current ?? null, after: r.spec.value });
      if (r.spec.password && !actual?.passwordCurrent) changes.push({ path: '/password', before: null, after: '(changed)' });
      return changes;
    },
    async apply(s, r, _changes, ctx) {
      const d = s.device;
      world.calls.push(`apply ${s.address} ${r.id}`);
      const entry = d.settings.get(r.name) ?? { current: '' };
      if (entry.current !== r.spec.value && entry.staged !== r.spec.value) {
        entry.staged = r.spec.value;
        d.writes++;
      }
      d.settings.set(r.name, entry);
      let memo: { passwordHash?: string } | undefined;
      if (r.spec.password) {
        memo = { passwordHash: ctx.keyedHash((await ctx.secrets.resolve(r.spec.password)).reveal()) };
        d.writes++;
      }
      if (r.spec.reboot && entry.staged !== undefined) {
        const resumed = (r.resume?.progress as { rebootIssuedAt?: number } | undefined)?.rebootIssuedAt;
        if (resumed === undefined) {
          ctx.checkpoint?.({ rebootIssuedAt: Date.now() });
          d.reboots++;
          d.rebootingUntil = Date.now() + d.latencyMs + 20;
        }
        while (d.rebootingUntil !== 0) {
          await new Promise((res) => setTimeout(res, 5));
          finishReboot(d);
        }
      }
      return memo ? { memo } : undefined;
    },
    pendingReboot(r, actual) {
      return !r.spec.reboot && actual.staged === r.spec.value && actual.current !== r.spec.value ? `value ${r.spec.value} is staged for the next reboot` : undefined;
    },
  };
  /** Like ssh.Service: running or stopped, restarted once after what it subscribes to (restartOn) changed. */
  interface ServiceSpec {
    running: boolean;
    restartOn?: string[];
  }
  const service: KindHandler<ServiceSpec, { running: boolean }, FakeSession> = {
    kind: 'fake.Service',
    schema: join(here, 'schemas/fake.service.schema.json'),
    claims: (_spec, name) => [{ key: ['service', name], label: `service ${name}` }],
    subscribes: (spec) => (spec.restartOn ?? []).map((id, i) => ({ id, pointer: `/restartOn/${i}` })),
    async read(s, r, ctx) {
      await wait(s.device, world, ctx.signal);
      world.calls.push(`read ${s.address} ${r.id}`);
      const found = s.device.services.get(r.name);
      return found ? { running: found.running } : undefined;
    },
    diff(r, actual) {
      const running = actual?.running ?? false;
      if (running !== r.spec.running) return [{ path: '/running', before: running, after: r.spec.running }];
      if (running && r.notified) return [{ path: '/restart', before: null, after: 'restart', note: `restart: ${r.notified.join(', ')} changed` }];
      return [];
    },
    async apply(s, r, changes) {
      world.calls.push(`apply ${s.address} ${r.id}`);
      const svc = s.device.services.get(r.name) ?? { running: false, restarts: 0 };
      if (changes.some((c) => c.path === '/restart')) {
        svc.restarts++;
        world.calls.push(`restart ${s.address} ${r.id}`);
      }
      svc.running = r.spec.running;
      s.device.services.set(r.name, svc);
      s.device.writes++;
    },
  };
  const applyBatch = async (s: FakeSession, batch: BatchItem[]): Promise<Array<Applied | void>> => {
    world.calls.push(`transaction ${s.address} ${batch.map((b) => `${b.remove ? '-' : '+'}${b.r.id}`).join(' ')}`);
    if (s.device.failTransactions > 0) {
      s.device.failTransactions--;
      throw new SessionLostError('fake transaction aborted before commit; nothing changed');
    }
    s.device.transactions.push(batch.length);
    for (const b of batch) {
      if (b.r.kind !== 'fake.Item') throw new Error('only fake.Item is transactional');
      const spec = b.r.spec as Item;
      if (b.remove) s.device.items.delete(b.r.name);
      else s.device.items.set(b.r.name, { value: spec.value, ...(spec.extra !== undefined ? { extra: spec.extra } : {}) });
      s.device.writes++;
    }
    return batch.map(() => undefined);
  };
  if (options.kindBatch) {
    item.readMany = async (s, rs, ctx) => {
      await wait(s.device, world, ctx.signal);
      s.device.reads++;
      world.calls.push(`readMany ${s.address} ${rs.map((r) => r.id).join(' ')}`);
      return rs.map((r) => {
        const found = s.device.items.get(r.name);
        return found ? { ...found } : undefined;
      });
    };
    item.applyBatch = async (s, batch) => {
      world.calls.push(`batch ${s.address} ${batch.map((b) => `${b.remove ? '-' : '+'}${b.r.id}`).join(' ')}`);
      if (s.device.failTransactions > 0) {
        s.device.failTransactions--;
        throw new SessionLostError('fake batch call lost');
      }
      s.device.transactions.push(batch.length);
      for (const b of batch) {
        const spec = b.r.spec as Item;
        if (b.remove) s.device.items.delete(b.r.name);
        else s.device.items.set(b.r.name, { value: spec.value, ...(spec.extra !== undefined ? { extra: spec.extra } : {}) });
        s.device.writes++;
      }
      return batch.map((b) => ({ memo: { batched: b.r.name } }));
    };
  }
  return {
    name: 'fake',
    targetSchema: join(here, 'schemas/fake.target.schema.json'),
    ...(options.transactional ? { applyBatch } : {}),
    ...(options.perTarget !== undefined ? { perTarget: options.perTarget } : {}),
    kinds: [item, setting, service].map((k) => k as unknown as KindHandler<unknown, unknown, FakeSession>),
    async open(target: Target) {
      const device = world.device(target.spec.address);
      device.opens++;
      if (device.unreachable) throw new UnreachableError(`fake target ${target.name} refused the connection`);
      return new FakeSession(device, target.spec.address);
    },
  };
}
