import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Client } from 'ssh2';
import type { SimHost } from '../../../fixtures/simulators/ssh/index.js';
import { connect, exec, startTestSimulator, type TestSimulator } from './ssh-client.js';

describe('ssh simulator: shadow-utils', () => {
  let t: TestSimulator;
  let host: SimHost;
  let root: Client;
  let deploy: Client;
  const file = async (name: string): Promise<string> => (await host.fs.readFile(`/etc/${name}`)).toString('utf8');

  beforeAll(async () => {
    t = await startTestSimulator();
    host = t.sim.hosts[0] as SimHost;
    root = await connect(host, { privateKey: t.clientKey.private, username: 'root' });
    deploy = await connect(host, { privateKey: t.clientKey.private });
  });
  beforeEach(() => host.resetCounters());
  afterAll(async () => {
    root.end();
    deploy.end();
    await t.dispose();
  });

  it('seeds passwd, group and a root:shadow 0640 shadow with root, daemon and nobody', async () => {
    expect(await file('passwd')).toMatch(/^root:x:0:0:root:\/root:\/bin\/bash$/m);
    expect(await file('passwd')).toMatch(/^nobody:x:65534:65534:/m);
    expect(await file('shadow')).toMatch(/^daemon:\*:/m);
    expect(await host.stat('/etc/shadow')).toMatchObject({ uid: 0, gid: 42 });
    expect((await host.stat('/etc/shadow')).mode & 0o7777).toBe(0o640);
    expect(await exec(root, 'getent passwd root nosuch')).toMatchObject({ code: 2, stdout: 'root:x:0:0:root:/root:/bin/bash\n' });
  });

  it('useradd -m: passwd, shadow, a user private group, supplementary groups, an empty home owned by the user', async () => {
    const res = await exec(root, "LC_ALL=C useradd -m -u 2001 -s '/bin/bash' -G 'adm,sudo' -- 'alice' 2>&1");
    expect(res).toMatchObject({ code: 0, stdout: '' });
    expect(await file('passwd')).toContain('alice:x:2001:2001::/home/alice:/bin/bash\n');
    expect(await file('group')).toContain('alice:x:2001:\n');
    expect(await file('group')).toMatch(/^adm:x:4:deploy,alice$/m);
    expect(await file('shadow')).toMatch(/^alice:!:/m);
    expect(await host.stat('/home/alice')).toMatchObject({ type: 'dir', uid: 2001, gid: 2001 });
    expect((await host.fs.readdir('/home/alice')).names).toEqual([]);
    expect((await exec(root, 'id -Gn alice')).stdout).toBe('alice adm sudo\n');
    expect(host.counters.mutatingByCommand).toEqual({ useradd: 1 });
  });

  it('useradd: 9 for an existing user or group, 6 for an unknown group, 4 for a taken uid, 2 for unknown options', async () => {
    expect(await exec(root, 'useradd alice')).toMatchObject({ code: 9, stderr: "useradd: user 'alice' already exists\n" });
    expect(await exec(root, 'useradd -g nosuch bob')).toMatchObject({ code: 6, stderr: "useradd: group 'nosuch' does not exist\n" });
    expect(await exec(root, 'useradd -G adm,nosuch bob')).toMatchObject({ code: 6 });
    expect(await exec(root, 'useradd -u 2001 bob')).toMatchObject({ code: 4, stderr: 'useradd: UID 2001 is not unique\n' });
    expect(await exec(root, 'useradd users')).toMatchObject({ code: 9, stderr: expect.stringContaining('group users exists') });
    expect(await exec(root, 'useradd -Z bob')).toMatchObject({ code: 2, stderr: expect.stringContaining("useradd: invalid option -- 'Z'") });
    expect(await exec(root, 'useradd --frob bob')).toMatchObject({ code: 2 });
    expect(await exec(deploy, 'useradd bob')).toMatchObject({ code: 1, stderr: expect.stringContaining('cannot lock /etc/passwd') });
    expect(await file('passwd')).not.toContain('bob:');
    // Failed attempts still count: Plumb should not have made them.
    expect(host.counters.mutatingCommands).toBe(6);
  });

  it('usermod: fields, -a -G, replacing -G, -u re-owns the home; gpasswd -d; "no changes"', async () => {
    await host.fs.writeFile('/home/alice/notes', 'x', { append: false, owner: { uid: 2001, gid: 2001 } });
    expect(await exec(root, 'usermod -u 2005 -s /bin/sh -d /home/alice -- alice')).toMatchObject({ code: 0 });
    expect(await file('passwd')).toContain('alice:x:2005:2001::/home/alice:/bin/sh\n');
    expect(await host.stat('/home/alice/notes')).toMatchObject({ uid: 2005, gid: 2001 });
    expect(await host.stat('/home/alice')).toMatchObject({ uid: 2005 });
    expect((await exec(root, "usermod -a -G 'www-data' -- alice")).code).toBe(0);
    expect((await exec(root, 'id -Gn alice')).stdout).toBe('alice adm sudo www-data\n');
    expect(await exec(root, "gpasswd -d alice 'adm'")).toMatchObject({ code: 0, stdout: 'Removing user alice from group adm\n' });
    expect(await exec(root, 'gpasswd -d alice adm')).toMatchObject({ code: 3, stderr: "gpasswd: user 'alice' is not a member of 'adm'\n" });
    expect((await exec(root, 'usermod -G sudo alice')).code).toBe(0);
    expect((await exec(root, 'id -Gn alice')).stdout).toBe('alice sudo\n');
    expect(await exec(root, 'usermod -s /bin/sh alice')).toMatchObject({ code: 0, stderr: 'usermod: no changes\n' });
    expect(await exec(root, 'usermod -a alice')).toMatchObject({ code: 2, stderr: expect.stringContaining('-a flag is ONLY allowed with the -G flag') });
    expect(await exec(root, 'usermod -g nosuch alice')).toMatchObject({ code: 6 });
    expect(await exec(root, 'usermod -u 0 alice')).toMatchObject({ code: 4, stderr: "usermod: UID '0' already exists\n" });
    expect(await exec(root, 'usermod -s /bin/sh nosuch')).toMatchObject({ code: 6, stderr: "usermod: user 'nosuch' does not exist\n" });
  });

  it('groupadd, groupmod (primary groups follow the gid), groupdel (refused for a primary group)', async () => {
    expect(await exec(root, 'groupadd -g 3000 -- ops')).toMatchObject({ code: 0 });
    expect(await file('group')).toContain('ops:x:3000:\n');
    expect(await exec(root, 'groupadd ops')).toMatchObject({ code: 9, stderr: "groupadd: group 'ops' already exists\n" });
    expect(await exec(root, 'groupadd -f ops')).toMatchObject({ code: 0 });
    expect(await exec(root, 'groupadd -g 3000 ops2')).toMatchObject({ code: 4, stderr: "groupadd: GID '3000' already exists\n" });
    expect(await exec(root, 'groupmod -g 3001 -- ops')).toMatchObject({ code: 0 });
    expect(await exec(root, 'groupmod -g 4 ops')).toMatchObject({ code: 4 });
    expect(await exec(root, 'groupmod -g 3002 nosuch')).toMatchObject({ code: 6, stderr: "groupmod: group 'nosuch' does not exist\n" });
    expect(await exec(root, 'groupmod -g 2101 alice')).toMatchObject({ code: 0 });
    expect(await file('passwd')).toContain('alice:x:2005:2101:');
    expect(await exec(root, 'groupdel alice')).toMatchObject({ code: 8, stderr: "groupdel: cannot remove the primary group of user 'alice'\n" });
    expect(await exec(root, 'groupdel -- ops')).toMatchObject({ code: 0 });
    expect(await exec(root, 'groupdel ops')).toMatchObject({ code: 6 });
    expect(await exec(root, 'getent group ops')).toMatchObject({ code: 2 });
  });

  it('userdel -r removes the account, its private group, memberships and its home', async () => {
    expect(await exec(root, 'userdel -r -- alice')).toMatchObject({ code: 0 });
    expect(await file('passwd')).not.toContain('alice');
    expect(await file('group')).not.toContain('alice');
    expect(await file('shadow')).not.toContain('alice');
    await expect(host.stat('/home/alice')).rejects.toThrow();
    expect(await exec(root, 'userdel alice')).toMatchObject({ code: 6, stderr: "userdel: user 'alice' does not exist\n" });
  });
});

describe('ssh simulator: cut and head', () => {
  let t: TestSimulator;
  let client: Client;
  beforeAll(async () => {
    t = await startTestSimulator();
    client = await connect(t.sim.hosts[0] as SimHost, { privateKey: t.clientKey.private });
  });
  afterAll(async () => {
    client.end();
    await t.dispose();
  });

  it('cut -d: -f, -c; head -c and -n; bad lists and options refused', async () => {
    expect((await exec(client, "getent passwd deploy | cut -d: -f4,6")).stdout).toBe('1000:/home/deploy\n');
    expect((await exec(client, "printf 'abcdef\\nxyz\\n' | cut -c 2-3")).stdout).toBe('bc\nyz\n');
    expect((await exec(client, "printf 'a b\\nnodelim\\n' | cut -d ' ' -f 2 -s")).stdout).toBe('b\n');
    expect((await exec(client, "printf '123456' | head -c 4")).stdout).toBe('1234');
    expect((await exec(client, "printf '1\\n2\\n3\\n' | head -n 2")).stdout).toBe('1\n2\n');
    expect((await exec(client, "printf '1\\n2\\n3\\n' | head -1")).stdout).toBe('1\n');
    expect(await exec(client, 'cut -f 0 /etc/passwd')).toMatchObject({ code: 1 });
    expect(await exec(client, 'cut /etc/passwd')).toMatchObject({ code: 1, stderr: expect.stringContaining('you must specify a list') });
    expect(await exec(client, 'head -z /etc/passwd')).toMatchObject({ code: 1, stderr: expect.stringContaining("invalid option -- 'z'") });
  });
});
