import type { Attachment } from '../provider.js';
import { hashJsonEntries } from '../util/canonical.js';

/** hashJson of `{ spec, target, blobs }`, `blobs` being each attachment's blob id by its pointer. (Its own module: parse workers import it, not the loader.) */
export function specHash(spec: unknown, target: string | undefined, attachments: Record<string, Attachment>): string {
  const blobs: Record<string, string> = {};
  for (const pointer in attachments) blobs[pointer] = attachments[pointer]!.oid;
  return hashJsonEntries([
    ['blobs', blobs],
    ['spec', spec],
    ['target', target ?? null],
  ]);
}

