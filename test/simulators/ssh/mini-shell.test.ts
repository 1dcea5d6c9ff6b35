import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from 'ssh2';
import type { SimHost } from '../../../fixtures/simulators/ssh/index.js';
import { connect, exec, startTestSimulator, type TestSimulator } from './ssh-client.js';

describe('ssh simulator: the exec mini-shell', () => {
  let t: TestSimulator;
  let host: SimHost;
  let client: Client;
  let rootClient: Client;
  const run = (command: string, stdin?: string) => exec(client, command, stdin === undefined ? {} : { stdin });

  beforeAll(async () => {
    t = await startTestSimulator({
      hosts: ['node1'],
      commands: {
        systemctl: (ctx) => {
          ctx.io.stdout.write(`fake ${ctx.args.join(' ')}\n`);
          return 3;
        },
      },
    });
    host = t.sim.hosts[0] as SimHost;
    client = await connect(host, { privateKey: t.clientKey.private });
    rootClient = await connect(host, { username: 'root', privateKey: t.clientKey.private });
  });
  afterAll(async () => {
    client.end();
    rootClient.end();
    await t.dispose();
  });

  it('delivers stdout, stderr and the exit status separately', async () => {
    expect(await run('echo out; echo err >&2; exit 3')).toEqual({ stdout: 'out\n', stderr: 'err\n', code: 3, signal: undefined });
  });

  it('answers unknown commands like dash: "not found", exit 127', async () => {
    expect(await run('frobnicate --now')).toMatchObject({ stdout: '', stderr: 'sh: 1: frobnicate: not found\n', code: 127 });
    expect((await run('/opt/tool/bin/x')).code).toBe(127);
  });

  it('evaluates test, [ ], !, && and ||', async () => {
    expect((await run('test -e /etc/passwd')).code).toBe(0);
    expect((await run('test -e /etc/nope')).code).toBe(1);
    expect((await run('[ -d /etc ] && [ ! -f /etc ] && echo yes')).stdout).toBe('yes\n');
    expect((await run('test -f /nope || echo fallback')).stdout).toBe('fallback\n');
    expect((await run('! test -e /nope')).code).toBe(0);
    expect((await run('false && echo never; echo after')).stdout).toBe('after\n');
    expect((await run('[ "a b" = "a b" ] && [ 3 -lt 10 ] && [ -z "" ] && [ -n x ]')).code).toBe(0);
    expect((await run('[ -s /etc/hostname -a -r /etc/hostname ]')).code).toBe(0);
    expect((await run('[ -x /etc/passwd ]')).code).toBe(1);
  });

  it('reads users and groups from the sandbox with getent and id', async () => {
    expect(await run('getent passwd deploy')).toMatchObject({ stdout: 'deploy:x:1000:1000:Deploy,,,:/home/deploy:/bin/bash\n', code: 0 });
    expect((await run('getent passwd 33')).stdout).toBe('www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n');
    expect((await run('getent group nogroup')).stdout).toBe('nogroup:x:65534:\n');
    expect(await run('getent passwd nosuchuser')).toMatchObject({ stdout: '', code: 2 });
    expect((await run('id')).stdout).toBe('uid=1000(deploy) gid=1000(deploy) groups=1000(deploy),4(adm),27(sudo),33(www-data)\n');
    expect((await run('id -u; id -un; id -g www-data; id -gn')).stdout).toBe('1000\ndeploy\n33\ndeploy\n');
    expect((await run('id ghost')).code).toBe(1);
  });

  it('formats stat -c with virtual owner and mode', async () => {
    await run('printf "a=1\\n" > /tmp/s.conf && chmod 640 /tmp/s.conf');
    await exec(rootClient, 'chown www-data:adm /tmp/s.conf');
    expect((await run('stat -c "%a %u %g %U %G %s %F %n" /tmp/s.conf')).stdout).toBe('640 33 4 www-data adm 4 regular file /tmp/s.conf\n');
    expect((await run('stat -c %F /etc')).stdout).toBe('directory\n');
    expect((await run('stat -c %A /tmp')).stdout).toBe('drwxrwxrwt\n');
    expect(await run('stat -c %n /nope')).toMatchObject({ code: 1, stderr: "stat: cannot statx '/nope': No such file or directory\n" });
  });

  it('changes owners by name or number, and rejects unknown names', async () => {
    await run('touch /tmp/owned');
    expect((await run('chown root:root /tmp/owned && stat -c %u:%g /tmp/owned')).stdout).toBe('0:0\n');
    expect((await run('chown 1001 /tmp/owned && stat -c %U:%G /tmp/owned')).stdout).toBe('app:root\n');
    expect((await run('chown deploy: /tmp/owned && stat -c %U:%G /tmp/owned')).stdout).toBe('deploy:deploy\n');
    expect(await run('chown nobody:nogroup /tmp/owned && chown ghost /tmp/owned')).toMatchObject({ code: 1, stderr: "chown: invalid user: 'ghost'\n" });
  });

  it('chown -h changes the link, not its target', async () => {
    await run('touch /tmp/target && ln -s /tmp/target /tmp/lnk && chown -h root /tmp/lnk');
    expect((await run('stat -c %U /tmp/lnk; stat -L -c %U /tmp/lnk')).stdout).toBe('root\ndeploy\n');
  });

  it('runs sh -c and bash -c recursively, with their own exit and positional parameters', async () => {
    expect(await run("sh -c 'echo inner; exit 4'; echo outer $?")).toMatchObject({ stdout: 'inner\nouter 4\n', code: 0 });
    expect((await run('bash -c \'echo "$0:$1:$2"\' name one two')).stdout).toBe('name:one:two\n');
    expect((await run("sh -ec 'false; echo unreachable'")).code).toBe(1);
    expect((await run('sudo sh -c "id -u && touch /etc/made-by-root && stat -c %U /etc/made-by-root"')).stdout).toBe('0\nroot\n');
  });

  it('parses quotes and escapes like sh', async () => {
    expect((await run(`echo 'single $HOME' "double $HOME" esc\\ aped "q\\"uote" ''`)).stdout).toBe('single $HOME double /home/deploy esc aped q"uote \n');
    expect((await run('printf "%s|%s\\n" a "b c" d')).stdout).toBe('a|b c\nd|\n');
    expect((await run('echo -n no-newline')).stdout).toBe('no-newline');
    expect((await run('X=1; echo "[$X]" $(echo sub) `echo tick`')).stdout).toBe('[1] sub tick\n');
  });

  it('reports syntax errors with exit 2', async () => {
    expect(await run('echo "unterminated')).toMatchObject({ code: 2, stderr: 'sh: 1: Syntax error: Unterminated quoted string\n' });
    expect((await run('echo a &&')).code).toBe(2);
    expect((await run('while true; do echo x; done')).code).toBe(2);
    expect((await run('if true; then echo x')).code).toBe(2);
    expect((await run('{ echo x; ')).code).toBe(2);
  });

  it('runs { list; } groups and if/elif/else/fi; an assignment takes its substitution\'s status', async () => {
    expect(await run('{ echo a; echo b; } > /tmp/grp; cat /tmp/grp')).toMatchObject({ stdout: 'a\nb\n', code: 0 });
    expect(await run('false || { echo "absent:$?"; exit 7; }; echo not-reached')).toMatchObject({ stdout: 'absent:1\n', code: 7 });
    expect(await run('if [ -e /nope ]; then echo yes; elif true; then echo elif; else echo no; fi')).toMatchObject({ stdout: 'elif\n', code: 0 });
    expect(await run('if false; then echo yes; fi')).toMatchObject({ stdout: '', code: 0 });
    expect(await run('if false\nthen echo yes\nelse echo no; false\nfi')).toMatchObject({ stdout: 'no\n', code: 1 });
    expect(await run('e=$(getent passwd nosuch) || echo "st:$?"')).toMatchObject({ stdout: 'st:2\n' });
    expect(await run('e=$(true); echo "$?"')).toMatchObject({ stdout: '0\n' });
  });

  it('redirects into sandbox files: >, >>, 2>/dev/null, 2>&1, < and pipes', async () => {
    await run('echo one > /tmp/out.txt; echo two >> /tmp/out.txt');
    expect(await readFile(path.join(host.root, 'tmp/out.txt'), 'utf8')).toBe('one\ntwo\n');
    expect(await run('cat /nope 2>/dev/null')).toMatchObject({ stderr: '', code: 1 });
    expect(await run('cat /nope 2>&1')).toMatchObject({ stdout: 'cat: /nope: No such file or directory\n', stderr: '' });
    expect((await run('cat < /tmp/out.txt | tee /tmp/copy.txt | cat')).stdout).toBe('one\ntwo\n');
    expect(await readFile(path.join(host.root, 'tmp/copy.txt'), 'utf8')).toBe('one\ntwo\n');
    expect((await run('cat </dev/null; echo done')).stdout).toBe('done\n');
    expect(await run('echo x > /no/such/dir/f')).toMatchObject({ code: 2, stderr: 'sh: 1: cannot create /no/such/dir/f: Directory nonexistent\n' });
  });

  it('feeds here-documents to stdin, expanding $ unless the delimiter is quoted', async () => {
    expect((await run('X=v; cat <<EOF > /tmp/hd\nline $X \\$X\nEOF\ncat /tmp/hd')).stdout).toBe('line v $X\n');
    expect((await run("cat <<'EOF'\n$HOME\nEOF")).stdout).toBe('$HOME\n');
    expect((await run('cat <<-END\n\t\tindented\n\tEND\necho after')).stdout).toBe('indented\nafter\n');
  });

  it('changes modes and owners recursively with -R', async () => {
    await run('mkdir -p /tmp/r/a && touch /tmp/r/a/f && chmod -R 700 /tmp/r');
    await exec(rootClient, 'chown -R www-data:www-data /tmp/r');
    expect((await run("stat -c '%a %U:%G' /tmp/r /tmp/r/a /tmp/r/a/f")).stdout).toBe('700 www-data:www-data\n'.repeat(3));
  });

  it('writes stdin to a file with cat > and gives new files the user and 0644', async () => {
    expect((await run('cat > /tmp/from-stdin && stat -c "%a %U" /tmp/from-stdin', 'payload\n')).stdout).toBe('644 deploy\n');
    expect(await readFile(path.join(host.root, 'tmp/from-stdin'), 'utf8')).toBe('payload\n');
  });

  it('manages directories and files: mkdir -p -m, mv, cp, rm, rmdir', async () => {
    expect((await run('mkdir -p -m 750 /opt/app/conf && stat -c %a /opt/app /opt/app/conf')).stdout).toBe('755\n750\n');
    expect((await run('mkdir /opt/app')).stderr).toBe("mkdir: cannot create directory '/opt/app': File exists\n");
    await run('echo v1 > /opt/app/conf/a && cp /opt/app/conf/a /opt/app/conf/b && mv -f /opt/app/conf/b /opt/app/c');
    expect((await run('cat /opt/app/c && test ! -e /opt/app/conf/b')).stdout).toBe('v1\n');
    expect((await run('rmdir /opt/app/conf')).stderr).toBe("rmdir: failed to remove '/opt/app/conf': Directory not empty\n");
    expect((await run('rm /opt/app/conf')).stderr).toBe("rm: cannot remove '/opt/app/conf': Is a directory\n");
    expect((await run('rm -rf /opt/app && rm -f /opt/app/missing && test ! -e /opt/app')).code).toBe(0);
    expect((await run('rm /opt/missing')).code).toBe(1);
  });

  it('keeps cd within one command line and starts each exec in the home directory', async () => {
    expect((await run('pwd; cd /var/log && pwd; cd ..; pwd')).stdout).toBe('/home/deploy\n/var/log\n/var\n');
    expect((await run('pwd')).stdout).toBe('/home/deploy\n');
    expect((await exec(rootClient, 'pwd')).stdout).toBe('/root\n');
  });

  it('knows the host: uname, hostname, whoami, env', async () => {
    expect((await run('uname; uname -n; hostname; whoami')).stdout).toBe('Linux\nnode1\nnode1\ndeploy\n');
    expect((await run('uname -a')).stdout).toMatch(/^Linux node1 \S+ .* x86_64 GNU\/Linux\n$/);
    expect((await run('env')).stdout).toContain('HOME=/home/deploy\n');
  });

  it('runs executable shell scripts from the sandbox, and refuses non-executable ones', async () => {
    await run('printf "#!/bin/sh\\necho script \\$1\\nexit 7\\n" > /tmp/run.sh');
    expect((await run('/tmp/run.sh arg')).code).toBe(126);
    expect(await run('chmod +x /tmp/run.sh && /tmp/run.sh arg')).toMatchObject({ stdout: 'script arg\n', code: 7 });
  });

  it('runs extra commands given through the commands option', async () => {
    expect(await run('systemctl is-active nginx')).toMatchObject({ stdout: 'fake is-active nginx\n', code: 3 });
    expect((await run('command -v systemctl; command -v nope')).stdout).toBe('/usr/bin/systemctl\n');
  });

  it('hashes and encodes files', async () => {
    await run('printf abc > /tmp/abc');
    expect((await run('sha256sum /tmp/abc')).stdout).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  /tmp/abc\n');
    expect((await run('base64 /tmp/abc | base64 -d')).stdout).toBe('abc');
  });

  it('logs every exec with its exit status', async () => {
    host.execLog.length = 0;
    await run('true');
    await run('exit 5');
    expect(host.execLog.map((e) => [e.command, e.exitCode, e.user])).toEqual([
      ['true', 0, 'deploy'],
      ['exit 5', 5, 'deploy'],
    ]);
    expect(host.execLog[0]?.at).toBeGreaterThan(Date.now() - 60_000);
  });

  it('rejects subsystems other than sftp', async () => {
    const err = await new Promise<Error | undefined>((resolve) => client.subsys('netconf', (e) => resolve(e)));
    expect(err?.message).toMatch(/Unable to start subsystem/);
  });
});
