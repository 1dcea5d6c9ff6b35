/**
 * netconf.Config: a subtree of a device's configuration, written in YAML that
 * maps to XML (see ../model.ts). merge mode owns only the leaves (and list
 * entries, leaf-list values) it names; replace mode owns its top elements
 * whole. Reads are get-config of running with a subtree filter built from the
 * spec; writes go through the per-target transaction (../transaction.ts), a
 * transaction of one when the resource is applied alone.
 */
import { throwIfAborted } from '../../../src/provider.js';
import { isObject } from '../../../src/util/object.js';
import type { Applied, Change, Json, KindHandler, OpContext, Resource } from '../../../src/provider.js';
import { claimsOf, compile, type ANode, type ConfigActual, type ConfigSpec } from '../model.js';
import type { NetconfSession } from '../session.js';
import { cancelInterrupted, configDiff, readConfig, releasedOf, runTransaction } from '../transaction.js';

export type { ConfigSpec, ConfigActual } from '../model.js';

function count(nodes: ANode[]): { elements: number; leaves: number } {
  let elements = 0;
  let leaves = 0;
  const walk = (ns: ANode[]): void => {
    for (const n of ns) {
      elements++;
      if (n.children) walk(n.children);
      else leaves++;
    }
  };
  walk(nodes);
  return { elements, leaves };
}

export const configKind: KindHandler<ConfigSpec, ConfigActual, NetconfSession> = {
  kind: 'netconf.Config',
  schema: 'netconf.config.schema.json',

  claims(spec) {
    return claimsOf(compile(spec, ''));
  },

  async read(s: NetconfSession, r: Resource<ConfigSpec>, ctx: OpContext): Promise<ConfigActual | undefined> {
    throwIfAborted(ctx.signal, `netconf ${s.targetName}: read ${r.id}`);
    const d = compile(r.spec, r.id);
    await cancelInterrupted(s, r, ctx);
    return readConfig(s, d, ctx.signal, releasedOf(r, d));
  },

  diff(r: Resource<ConfigSpec>, actual: ConfigActual | undefined): Change[] {
    // `ignore:` is the runner's business; the transaction's own verification applies it the same way.
    return configDiff(r, compile(r.spec, r.id), actual);
  },

  async apply(s: NetconfSession, r: Resource<ConfigSpec>, changes: Change[], ctx: OpContext, actual?: ConfigActual): Promise<Applied> {
    throwIfAborted(ctx.signal, `netconf ${s.targetName}: apply ${r.id}`);
    const [applied] = await runTransaction(s, [{ r: r as Resource, changes, remove: false, actual }], ctx);
    return applied ?? {};
  },

  async remove(s: NetconfSession, r: Resource<ConfigSpec>, ctx: OpContext): Promise<void> {
    throwIfAborted(ctx.signal, `netconf ${s.targetName}: remove ${r.id}`);
    await runTransaction(s, [{ r: r as Resource, changes: [], remove: true }], ctx);
  },

  /** For `plumb plan`, which never cancels anything: a confirmed commit journaled by a transaction that did not finish. */
  describeProgress(progress: Json): string | undefined {
    if (!isObject(progress) || typeof progress.confirmBy !== 'number') return undefined;
    return `an interrupted transaction left a confirmed commit that may still be pending on the device (it rolls back by itself at ${new Date(progress.confirmBy).toISOString()} unless confirmed); apply cancels it before it reads`;
  },

  summarize(actual: ConfigActual | undefined): Json {
    if (!actual) return null;
    const { elements, leaves } = count(actual.nodes);
    return { datastore: actual.datastore, top: actual.nodes.map((n) => n.name), elements, leaves };
  },
};
