import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Provider } from '../../src/provider.js';

const here = fileURLToPath(new URL('.', import.meta.url));

/**
 * A second provider for load tests, next to the fake one: blob.File has a file
 * reference (`source:`), so attachments are tested without the ssh provider, and
 * blob.Pair has schema combinators without x-hints. It never converges anything.
 */
export function blobProvider(): Provider {
  const never = (): never => {
    throw new Error('load tests never converge');
  };
  const kind = (name: string, schema: string, fileRefs?: string[]) => ({ kind: name, schema: join(here, 'schemas', schema), ...(fileRefs ? { fileRefs } : {}), claims: () => [], read: never, diff: never, apply: never, remove: never });
  return {
    name: 'blob',
    targetSchema: join(here, 'schemas/blob.target.schema.json'),
    kinds: [kind('blob.File', 'blob.file.schema.json', ['/source']), kind('blob.Pair', 'blob.pair.schema.json')],
    open: never,
  };
}
