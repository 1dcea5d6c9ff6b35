/**
 * The netconf provider: switches and routers over NETCONF (RFC 6241) over SSH
 * (RFC 6242), one session per target, every pass's writes to a target in one
 * device transaction (candidate + confirmed commit where the device has them).
 */
import type { Provider } from '../../src/provider.js';
import { netconfSchema } from './schema.js';
import { NetconfSession } from './session.js';
import { runTransaction } from './transaction.js';

export { NetconfSession } from './session.js';
export type { NetconfTargetSpec } from './session.js';
export type { ConfigSpec, ConfigActual } from './kinds/config.js';
export { NetconfClient } from './client/session.js';
export { RpcError } from './client/errors.js';

export const netconfProvider: Provider<NetconfSession> = {
  ...netconfSchema,
  open: (target, ctx) => NetconfSession.open(target, ctx),
  applyBatch: (s, items, ctx) => runTransaction(s, items, ctx),
};
