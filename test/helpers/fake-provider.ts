import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CancelledError, SessionLostError, TimeoutError, UnreachableError } from '../../src/errors.js';
import type { Change, KindHandler, Provider, Resource, Session, Target } from '../../src/provider.js';

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
    if (!d) this.devices.set(address, (d = { items: new Map(), writes: 0, reads: 0, opens: 0, latencyMs: 0, unreachable: false, hang: false, failWrites: 0 }));
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
  } finally {
    world.inFlight--;
  }
}

export function fakeProvider(world: FakeWorld): Provider<FakeSession> {
  const item: KindHandler<Item, Item, FakeSession> = {
    kind: 'fake.Item',
    schema: join(here, 'schemas/fake.item.schema.json'),
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
  return {
    name: 'fake',
    targetSchema: join(here, 'schemas/fake.target.schema.json'),
    kinds: [item],
    async open(target: Target) {
      const device = world.device(target.spec.address);
      device.opens++;
      if (device.unreachable) throw new UnreachableError(`fake target ${target.name} refused the connection`);
      return new FakeSession(device, target.spec.address);
    },
  };
}
