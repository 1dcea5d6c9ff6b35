import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** The hash a repository names its objects with (`git rev-parse --show-object-format`). */
export type ObjectFormat = 'sha1' | 'sha256';

/** What git hashes in front of a blob's bytes. */
function blobHeader(size: number): Buffer {
  return Buffer.from(`blob ${size}\0`, 'utf8');
}

/** A hash primed with the blob header: feed it the `size` bytes, then `digest('hex')`. */
export function blobHasher(size: number, format: ObjectFormat = 'sha1'): Hash {
  return createHash(format).update(blobHeader(size));
}

/** Git blob id of some bytes: `blob <size>\0<bytes>` hashed, as `git hash-object` prints it. */
export function gitBlobId(bytes: Buffer, format: ObjectFormat = 'sha1'): string {
  return blobHasher(bytes.length, format).update(bytes).digest('hex');
}

/**
 * Git blob id of a local file, streamed (a large file is never held in memory).
 * `size` is the lstat size: a file that changes meanwhile gets an id no later read will match.
 */
export async function fileBlobId(path: string, size: number, format: ObjectFormat = 'sha1'): Promise<string> {
  const hash = blobHasher(size, format);
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
