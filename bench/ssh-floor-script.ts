/**
 * The floor for bench/ssh-floor: what a hand-written ssh2 script needs to put 1
 * directory and N files on each host, with nothing Plumb adds (no git, no state,
 * no reads, no verification). Same honest work per host as Plumb's create: one
 * connection, host key checked against the pinned fingerprint before auth, one
 * SFTP channel, mkdir with mode, then every file in parallel, each written
 * atomically: open a temp file exclusively, write, set mode, close, posix-rename.
 *
 *   node dist/bench/ssh-floor-script.js JOB.json    (JOB: see FloorJob; written by bench/ssh-floor)
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import ssh2, { type SFTPWrapper } from 'ssh2';

export interface FloorJob {
  hosts: Array<{ address: string; port: number; user: string; keyPath: string; fingerprint: string; dir: string; files: Array<{ path: string; content: string }> }>;
}

const p = <T>(f: (cb: (err: Error | null | undefined, v?: T) => void) => void): Promise<T> => new Promise((ok, no) => f((e, v) => (e ? no(e) : ok(v as T))));

async function host(h: FloorJob['hosts'][number]): Promise<number> {
  const client = new ssh2.Client();
  const fp = (key: Buffer): string => `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
  await new Promise<void>((ok, no) => {
    client.once('ready', ok).once('error', no);
    client.connect({ host: h.address, port: h.port, username: h.user, privateKey: readFileSync(h.keyPath), hostVerifier: (key: Buffer) => fp(key) === h.fingerprint, readyTimeout: 15_000 });
    client.setNoDelay(true);
  });
  const sftp = await p<SFTPWrapper>((cb) => client.sftp(cb));
  await p<void>((cb) => sftp.mkdir(h.dir, { mode: 0o755 }, cb));
  await Promise.all(
    h.files.map(async (f) => {
      const tmp = `${f.path.replace(/[^/]*$/, '')}.${f.path.replace(/.*\//, '')}.floor-${randomBytes(6).toString('hex')}`;
      const bytes = Buffer.from(f.content);
      const handle = await p<Buffer>((cb) => sftp.open(tmp, 'wx', { mode: 0o600 }, cb));
      await p<void>((cb) => sftp.write(handle, bytes, 0, bytes.length, 0, cb));
      await p<void>((cb) => sftp.fsetstat(handle, { mode: 0o644 }, cb));
      await p<void>((cb) => sftp.close(handle, cb));
      await p<void>((cb) => sftp.ext_openssh_rename(tmp, f.path, cb));
    }),
  );
  client.end();
  return h.files.length;
}

const job = JSON.parse(readFileSync(process.argv[2] as string, 'utf8')) as FloorJob;
const files = (await Promise.all(job.hosts.map(host))).reduce((a, b) => a + b, 0);
console.log(`floor: ${job.hosts.length} hosts, ${files} files`);
