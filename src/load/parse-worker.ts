/**
 * A worker of the parse pool (parse-pool.ts): parses and schema-checks the config
 * files it is sent, and posts back plain values and the files' own diagnostics.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ProviderSchema } from '../provider.js';
import { specHash } from './spec-hash.js';
import { parseConfigFile, toWire } from './parse-file.js';
import type { ParseJob, ParseReply, ParseWorkerData } from './parse-pool.js';
import { SchemaRegistry } from './schemas.js';

const data = workerData as ParseWorkerData;
const module = (await import(data.providers.url)) as Record<string, unknown>;
const registry = new SchemaRegistry((module[data.providers.name] as () => ProviderSchema[])(), ...(data.schemasDir ? [data.schemasDir] : []));
const noAttachments = {};
const hash = data.hashes === false ? undefined : (spec: unknown, target: string | undefined): string => specHash(spec, target, noAttachments);

/** Whether JSON text holds `value` exactly: no -0, NaN or Infinity (YAML has `.inf` and `.nan`), nothing but plain data. */
function jsonExact(value: unknown): boolean {
  switch (typeof value) {
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0);
    case 'string':
    case 'boolean':
      return true;
    case 'object':
      if (value === null) return true;
      if (Array.isArray(value)) return value.every(jsonExact);
      for (const key in value) if (!jsonExact((value as Record<string, unknown>)[key])) return false;
      return Object.getPrototypeOf(value) === Object.prototype;
    default:
      return false; // undefined (an absent specHash is left out, not sent as undefined), functions
  }
}

parentPort!.postMessage({ ready: true } satisfies ParseReply);

parentPort!.on('message', (job: ParseJob) => {
  let reply: ParseReply;
  try {
    const bytes = Buffer.from(job.bytes.buffer, job.bytes.byteOffset, job.bytes.byteLength);
    // ownStrings: false: posting the values copies every string anyway.
    const file = toWire(parseConfigFile(job.path, bytes, registry, job.limits, { ownStrings: false }), registry, hash);
    // As JSON text when that is exact (one string to copy, and JSON.parse is quicker than a structured clone of 100 small objects).
    reply = jsonExact(file) ? { seq: job.seq, json: JSON.stringify(file) } : { seq: job.seq, file };
  } catch (err) {
    reply = { seq: job.seq, error: (err as Error)?.stack ?? String(err) };
  }
  parentPort!.postMessage(reply);
});
