import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimHost } from '../../../fixtures/simulators/ssh/index.js';
import { startTestSimulator, type TestSimulator } from './ssh-client.js';

const run = promisify(execFile);
const haveOpenSsh = ['/usr/bin/ssh', '/usr/bin/sftp', '/usr/bin/ssh-keygen'].every((bin) => existsSync(bin));

/** The real OpenSSH client against the simulator: the other half of "behaves like sshd". */
describe.skipIf(!haveOpenSsh)('ssh simulator: with the OpenSSH client', () => {
  let t: TestSimulator;
  let host: SimHost;
  let dir: string;
  let common: string[];

  beforeAll(async () => {
    t = await startTestSimulator({ hosts: ['ossh'] });
    host = t.sim.hosts[0] as SimHost;
    dir = await mkdtemp(path.join(tmpdir(), 'plumb-openssh-'));
    await writeFile(path.join(dir, 'id'), t.clientKey.private, { mode: 0o600 });
    await writeFile(path.join(dir, 'known_hosts'), t.sim.knownHostsLines());
    common = [
      '-i', path.join(dir, 'id'),
      '-o', `UserKnownHostsFile=${path.join(dir, 'known_hosts')}`,
      '-o', 'StrictHostKeyChecking=yes',
      '-o', 'BatchMode=yes',
      '-o', 'IdentitiesOnly=yes',
      '-F', '/dev/null',
    ];
  });
  afterAll(async () => {
    await t.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('prints the same fingerprint with ssh-keygen -lf', async () => {
    await writeFile(path.join(dir, 'host.pub'), `${t.sim.hostPublicKey}\n`);
    const { stdout } = await run('ssh-keygen', ['-lf', path.join(dir, 'host.pub')]);
    expect(stdout.split(' ')[1]).toBe(t.sim.hostKeyFingerprint);
  });

  it('runs commands over ssh with the pinned known_hosts line', async () => {
    const { stdout } = await run('ssh', [...common, '-p', String(host.port), 'deploy@127.0.0.1', 'id -un; cat /etc/hostname'], { timeout: 10_000 });
    expect(stdout).toBe('deploy\nossh\n');
  });

  it('runs an sftp batch: put, chmod, symlink, rename, overwrite by rename, and exits', async () => {
    await writeFile(path.join(dir, 'payload'), 'payload\n');
    const batch = [
      'mkdir /srv',
      `put ${path.join(dir, 'payload')} /srv/app.conf`,
      'chmod 600 /srv/app.conf',
      'symlink /srv/app.conf /srv/current',
      `put ${path.join(dir, 'payload')} /srv/next.conf`,
      'rename /srv/next.conf /srv/app.conf',
    ].join('\n');
    await writeFile(path.join(dir, 'batch'), `${batch}\n`);
    await run('sftp', [...common, '-P', String(host.port), '-b', path.join(dir, 'batch'), 'deploy@127.0.0.1'], { timeout: 10_000 });
    expect(await readFile(path.join(host.root, 'srv/app.conf'), 'utf8')).toBe('payload\n');
    expect(await readlink(path.join(host.root, 'srv/current'))).toBe('/srv/app.conf');
    expect(existsSync(path.join(host.root, 'srv/next.conf'))).toBe(false);
    expect((await host.stat('/srv/app.conf')).uid).toBe(1000);
  });
});
