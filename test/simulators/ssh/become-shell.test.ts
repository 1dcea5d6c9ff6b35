/**
 * What the SSH provider runs under `become: { method: sudo }`, builtin by
 * builtin, on the simulator's mini-shell as the login user deploy: the command
 * strings are Plumb's own (providers/ssh/become.ts, remote.ts), and every tool
 * is as strict as GNU coreutils, dash and sudo on Debian 12.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from 'ssh2';
import type { SimHost } from '../../../fixtures/simulators/ssh/index.js';
import { becomeCommand, probeCommand } from '../../../providers/ssh/become.js';
import { shellQuote } from '../../../providers/ssh/quote.js';
import { connect, exec, startTestSimulator, type TestSimulator } from './ssh-client.js';

describe('ssh simulator: the commands Plumb runs under become', () => {
  let t: TestSimulator;
  let host: SimHost;
  let client: Client;
  const run = (command: string, stdin?: string) => exec(client, command, stdin === undefined ? {} : { stdin });
  const sudo = (command: string, stdin?: string) => run(becomeCommand({ method: 'sudo', user: 'root' }, command), stdin);
  const meta = async (p: string): Promise<{ mode: string; uid: number; gid: number } | undefined> => {
    const st = await host.stat(p).catch((err: unknown) => {
      if ((err as { code?: unknown }).code === 'ENOENT') return undefined;
      throw err;
    });
    return st && { mode: (st.mode & 0o7777).toString(8), uid: st.uid, gid: st.gid };
  };

  beforeAll(async () => {
    t = await startTestSimulator({ hosts: ['node1'] });
    host = t.sim.hosts[0] as SimHost;
    client = await connect(host, { privateKey: t.clientKey.private });
  });
  afterAll(async () => {
    client.end();
    await t.dispose();
  });

  describe('sudo', () => {
    it('the probe: the login ids, then id -u through sudo -n -u root -- sh -c', async () => {
      const res = await run(probeCommand({ method: 'sudo', user: 'root' }));
      expect(res).toMatchObject({ stdout: 'plumb-login:1000:1000\nplumb-become:0\n', code: 0 });
    });

    it('-k -S -p "": reads one password line from stdin; the command after exec </dev/null reads nothing', async () => {
      const command = becomeCommand({ method: 'sudo', user: 'root', password: 'x' }, 'id -u; cat; echo end');
      expect(await run(command, 'hunter2\nleftover\n')).toMatchObject({ stdout: '0\nend\n', code: 0 });
      // Without the inner exec </dev/null, the rest of stdin is the command's.
      expect(await run(`sudo -k -S -p '' -u root -- sh -c 'cat'`, 'hunter2\nleftover\n')).toMatchObject({ stdout: 'leftover\n', code: 0 });
    });

    it('-S with no password line on stdin fails as sudo does', async () => {
      expect(await run(`sudo -S -u root -- id -u`, '')).toMatchObject({ stdout: '', stderr: 'sudo: no password was provided\nsudo: a password is required\n', code: 1 });
    });

    it('refuses an option it does not know, and a missing -u value', async () => {
      const bad = await run('sudo -Z id');
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/^sudo: invalid option -- 'Z'\nusage: sudo /);
      expect((await run('sudo -u')).stderr).toMatch(/^sudo: option requires an argument -- 'u'/);
      expect((await run('sudo -n -u ghost -- id')).code).toBe(1);
    });

    it('the command runs as the become user: mutations are logged as root', async () => {
      host.resetCounters();
      expect((await sudo('touch /tmp/by-root')).code).toBe(0);
      expect(host.mutationLog.map((m) => [m.command, m.user])).toEqual([['touch', 'root']]);
      expect(await meta('/tmp/by-root')).toEqual({ mode: '644', uid: 0, gid: 0 });
    });
  });

  describe('exec, umask and set -C', () => {
    it('exec </dev/null: later commands read /dev/null; a pipe still feeds its own stage', async () => {
      expect(await run('exec </dev/null; cat; echo piped | cat', 'from stdin\n')).toMatchObject({ stdout: 'piped\n', code: 0 });
      expect(await run('cat', 'from stdin\n').then(() => run('exec true; echo never'))).toMatchObject({ stdout: '', code: 0 });
    });

    it('umask: printed, set in octal or symbolic form, applied to redirections, touch, mkdir and mktemp', async () => {
      expect((await run('umask')).stdout).toBe('0022\n');
      expect((await run('umask 027; umask; umask -S')).stdout).toBe('0027\nu=rwx,g=rx,o=\n');
      await run('umask 077; echo x > /tmp/um-file; touch /tmp/um-touch; mkdir /tmp/um-dir; umask u=rwx,g=rx,o=rx; echo y > /tmp/um-022');
      expect(await Promise.all(['/tmp/um-file', '/tmp/um-touch', '/tmp/um-dir', '/tmp/um-022'].map(async (p) => (await meta(p))?.mode))).toEqual(['600', '600', '700', '644']);
      // sudo keeps the caller's umask (Debian's sudoers default only adds 022).
      await run('umask 077; sudo -n -- sh -c "echo z > /tmp/um-sudo"');
      expect(await meta('/tmp/um-sudo')).toEqual({ mode: '600', uid: 0, gid: 0 });
    });

    it('umask refuses a bad number, a bad mode and an option', async () => {
      expect(await run('umask 8')).toMatchObject({ stderr: 'sh: 1: umask: Illegal number: 8\n', code: 2 });
      expect(await run('umask u=q')).toMatchObject({ stderr: 'sh: 1: umask: Illegal mode: u=q\n', code: 2 });
      expect(await run('umask -x')).toMatchObject({ stderr: 'sh: 1: umask: Illegal option -x\n', code: 2 });
    });

    it('set -C: > onto an existing file fails with "File exists" and leaves it alone; >> and new files work', async () => {
      await run('echo old > /tmp/nc');
      expect(await run('set -C; echo new > /tmp/nc')).toMatchObject({ stderr: 'sh: 1: cannot create /tmp/nc: File exists\n', code: 2 });
      expect((await run('cat /tmp/nc')).stdout).toBe('old\n');
      expect(await run('set -C; echo more >> /tmp/nc; echo fresh > /tmp/nc-new; set +C; echo over > /tmp/nc; cat /tmp/nc /tmp/nc-new')).toMatchObject({ stdout: 'over\nfresh\n', code: 0 });
      expect((await run('set -o noclobber; echo x > /tmp/nc')).code).toBe(2);
    });

    it('set refuses options the simulator does not have', async () => {
      expect(await run('set -x; echo after')).toMatchObject({ stdout: '', stderr: 'sh: 1: set: Illegal option -x\n', code: 2 });
      expect((await run('set -o vi')).code).toBe(2);
    });
  });

  describe('mktemp', () => {
    it('-d TEMPLATE makes a 0700 directory of the caller; plain mktemp a 0600 file in /tmp', async () => {
      const dir = (await sudo('mktemp -d /tmp/plumb-stage.XXXXXXXXXX')).stdout.trim();
      expect(dir).toMatch(/^\/tmp\/plumb-stage\.[A-Za-z0-9]{10}$/);
      expect(await meta(dir)).toEqual({ mode: '700', uid: 0, gid: 0 });
      const file = (await run('mktemp')).stdout.trim();
      expect(file).toMatch(/^\/tmp\/tmp\.[A-Za-z0-9]{10}$/);
      expect(await meta(file)).toEqual({ mode: '600', uid: 1000, gid: 1000 });
      expect((await run('mktemp -p /var/tmp x.XXX')).stdout).toMatch(/^\/var\/tmp\/x\.[A-Za-z0-9]{3}\n$/);
    });

    it('refuses too few X, an unknown option and a missing directory', async () => {
      expect(await run('mktemp /tmp/aXX')).toMatchObject({ stderr: "mktemp: too few X's in template '/tmp/aXX'\n", code: 1 });
      expect(await run('mktemp -z')).toMatchObject({ stderr: "mktemp: invalid option -- 'z'\nTry 'mktemp --help' for more information.\n", code: 1 });
      expect(await run('mktemp -d /nope/x.XXXXXX')).toMatchObject({ stderr: "mktemp: failed to create directory via template '/nope/x.XXXXXX': No such file or directory\n", code: 1 });
      expect((await run('mktemp -q /nope/x.XXXXXX')).stderr).toBe('');
    });
  });

  describe('the staging directory and the staged write (remote.ts stagingDir, writeFileEscalated)', () => {
    it('mktemp -d, chown to the login user, chmod 0700, then the move script: owner, group, mode land on the target', async () => {
      const made = await sudo(`d=$(mktemp -d /tmp/plumb-stage.XXXXXXXXXX) && chown '1000:1000' -- "$d" && chmod 0700 -- "$d" && printf 'plumb-stage:%s\\n' "$d"`);
      const stage = /^plumb-stage:(\S+)$/m.exec(made.stdout)?.[1];
      expect(stage).toBeDefined();
      expect(await meta(stage!)).toEqual({ mode: '700', uid: 1000, gid: 1000 });
      await run(`printf 't=1\\n' > ${stage}/0123456789ab`);
      const [d, tmp, st, p] = ['/etc', '/etc/.token.plumb-0123456789ab', `${stage}/0123456789ab`, '/etc/token'].map(shellQuote) as [string, string, string, string];
      const script = [
        `[ -d ${d} ] || { echo "plumb-no-parent" >&2; exit 3; }`,
        `umask 077`,
        `set -C`,
        `cat -- ${st} > ${tmp} || exit 1`,
        `if chown -h '0:4' -- ${tmp} && chmod '0640' -- ${tmp} && mv -f -- ${tmp} ${p}; then rm -f -- ${st}; else rm -f -- ${tmp}; exit 1; fi`,
      ].join('\n');
      expect(await sudo(`LC_ALL=C; export LC_ALL; ${script}`)).toMatchObject({ code: 0, stderr: '' });
      expect(await meta('/etc/token')).toEqual({ mode: '640', uid: 0, gid: 4 });
      expect(await meta('/etc/.token.plumb-0123456789ab')).toBeUndefined();
      expect(await meta(`${stage}/0123456789ab`)).toBeUndefined();
      // A temp name already there (a leftover) is never overwritten: set -C stops the copy.
      await run(`printf 'x' > ${stage}/0123456789ab; echo stale > /etc/.token.plumb-0123456789ab`);
      const again = await sudo(`LC_ALL=C; export LC_ALL; ${script}`);
      expect(again).toMatchObject({ code: 1, stderr: 'sh: 1: cannot create /etc/.token.plumb-0123456789ab: File exists\n' });
      // A missing parent is exit 3.
      expect((await sudo(script.replaceAll("'/etc", "'/nope"))).code).toBe(3);
    });

    it("chown -h UID:GID, UID alone keeps the group, :GID alone keeps the owner", async () => {
      await run('echo x > /tmp/own');
      await sudo(`chown -h '0' -- '/tmp/own'`);
      expect(await meta('/tmp/own')).toMatchObject({ uid: 0, gid: 1000 });
      await sudo(`chown -h ':4' -- '/tmp/own'`);
      expect(await meta('/tmp/own')).toMatchObject({ uid: 0, gid: 4 });
      expect((await run('chown -Z 0 /tmp/own')).stderr).toBe("chown: invalid option -- 'Z'\n");
    });
  });

  describe('chmod, mv, rm, mkdir, rmdir with --', () => {
    it('chmod MODE -- FILE, and -w style modes; refuses an unknown option and a bad mode', async () => {
      await run('echo x > /tmp/cm');
      expect((await run(`chmod '0640' -- '/tmp/cm'`)).code).toBe(0);
      expect((await meta('/tmp/cm'))?.mode).toBe('640');
      expect((await run('chmod -w /tmp/cm')).code).toBe(0);
      expect((await meta('/tmp/cm'))?.mode).toBe('440');
      expect(await run('chmod -Z 600 /tmp/cm')).toMatchObject({ stderr: "chmod: invalid option -- 'Z'\n", code: 1 });
      expect(await run('chmod 9 /tmp/cm')).toMatchObject({ stderr: "chmod: invalid mode: '9'\n", code: 1 });
      expect(await run('chmod 600 -- /tmp/none')).toMatchObject({ stderr: "chmod: cannot access '/tmp/none': No such file or directory\n", code: 1 });
    });

    it('mv -f -- A B, rm -f -- P (absent is fine), mkdir -m MODE -- P, rmdir -- P', async () => {
      await run('echo a > /tmp/mva');
      expect((await sudo(`mv -f -- '/tmp/mva' '/tmp/mvb' && rm -f -- '/tmp/mvb' && rm -f -- '/tmp/never'`)).code).toBe(0);
      expect(await meta('/tmp/mvb')).toBeUndefined();
      const p = shellQuote('/tmp/made dir');
      expect((await sudo(`if [ -d ${p} ] && [ ! -L ${p} ]; then exit 0; fi; mkdir -m '0750' -- ${p}`)).code).toBe(0);
      expect(await meta('/tmp/made dir')).toEqual({ mode: '750', uid: 0, gid: 0 });
      expect((await sudo(`if [ -d ${p} ] && [ ! -L ${p} ]; then exit 0; fi; mkdir -m '0750' -- ${p}`)).code).toBe(0);
      expect((await sudo(`rmdir -- ${p}`)).code).toBe(0);
      expect(await meta('/tmp/made dir')).toBeUndefined();
      expect((await run('rm -Z /tmp/x')).stderr).toBe("rm: invalid option -- 'Z'\n");
    });

    it('the rmdir script: a non-empty directory reports its entry count (ls -A | wc -l), absent is success', async () => {
      const script = (dir: string): string => {
        const p = shellQuote(dir);
        return `if [ ! -e ${p} ] && [ ! -L ${p} ]; then exit 0; fi; rmdir -- ${p} 2>/dev/null && exit 0; if [ -d ${p} ] && [ ! -L ${p} ]; then n=$(ls -A -- ${p} | wc -l); [ "$n" -gt 0 ] && { echo "plumb-not-empty:$n"; exit 0; }; fi; rmdir -- ${p}`;
      };
      await run('mkdir -p /tmp/full && touch /tmp/full/a /tmp/full/.b');
      expect(await sudo(script('/tmp/full'))).toMatchObject({ stdout: 'plumb-not-empty:2\n', code: 0 });
      expect(await sudo(script('/tmp/absent'))).toMatchObject({ stdout: '', code: 0 });
    });
  });

  describe('reads: stat, head, the NUL-separated listing', () => {
    it("stat -c '%f %s %u %g' -- P and stat -L; the escalatedStat script says plumb-absent for nothing there", async () => {
      await run('printf abc > /tmp/st && chmod 640 /tmp/st && ln -s /tmp/st /tmp/st-link');
      const statScript = (path: string, follow: boolean): string => {
        const p = shellQuote(path);
        const exists = follow ? `[ -e ${p} ]` : `{ [ -e ${p} ] || [ -L ${p} ]; }`;
        return `if ${exists}; then stat ${follow ? '-L ' : ''}-c '%f %s %u %g' -- ${p}; else echo plumb-absent; fi`;
      };
      expect((await sudo(statScript('/tmp/st', false))).stdout).toBe('81a0 3 1000 1000\n');
      expect((await sudo(statScript('/tmp/st-link', false))).stdout).toMatch(/^a1ff 7 1000 1000\n$/);
      expect((await sudo(statScript('/tmp/st-link', true))).stdout).toBe('81a0 3 1000 1000\n');
      expect((await sudo(statScript('/tmp/none', false))).stdout).toBe('plumb-absent\n');
    });

    it('head -c N -- F reads at most N bytes', async () => {
      expect(await sudo(`head -c 2 -- '/tmp/st'`)).toMatchObject({ stdout: 'ab', code: 0 });
      expect((await run('head -x /tmp/st')).code).toBe(1);
    });

    it('cd -- D && for f in * .[!.]* ..?*: every name once, dot files included, NUL-separated by printf', async () => {
      await run("mkdir -p '/tmp/ls d' && cd '/tmp/ls d' && touch a 'b c' .hidden ..dots && ln -s /nowhere dangling");
      const res = await sudo(`cd -- ${shellQuote('/tmp/ls d')} && for f in * .[!.]* ..?*; do if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\\0' "$f"; fi; done`);
      expect(res.code).toBe(0);
      expect(res.stdout.split('\0')).toEqual(['a', 'b c', 'dangling', '.hidden', '..dots', '']);
      // An empty directory: the patterns match nothing, stay as they are, and [ -e ] drops them.
      await run('mkdir -p /tmp/ls-empty');
      expect((await sudo(`cd -- '/tmp/ls-empty' && for f in * .[!.]* ..?*; do if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\\0' "$f"; fi; done`)).stdout).toBe('');
    });
  });

  describe('the shell itself', () => {
    it('for: words, globs in paths, positional parameters, the last status; quoted patterns stay literal', async () => {
      expect((await run('for x in a "b c" d; do echo "<$x>"; done')).stdout).toBe('<a>\n<b c>\n<d>\n');
      await run('mkdir -p /tmp/g && touch /tmp/g/one.conf /tmp/g/two.conf /tmp/g/three.txt');
      expect((await run('for f in /tmp/g/*.conf; do echo $f; done')).stdout).toBe('/tmp/g/one.conf\n/tmp/g/two.conf\n');
      expect((await run('echo /tmp/g/t??.* "/tmp/g/*"')).stdout).toBe('/tmp/g/two.conf /tmp/g/*\n');
      expect((await run('echo /tmp/g/[ot]*.conf /tmp/g/[!o]*')).stdout).toBe('/tmp/g/one.conf /tmp/g/two.conf /tmp/g/three.txt /tmp/g/two.conf\n');
      expect((await run('set -- p q; for a; do echo $a; done')).stdout).toBe('p\nq\n');
      expect((await run('for x in; do echo never; done; echo $?')).stdout).toBe('0\n');
      expect((await run('for x in a b; do false; done')).code).toBe(1);
    });

    it('for: syntax errors as dash reports them', async () => {
      expect((await run('for 1x in a; do echo; done')).code).toBe(2);
      expect((await run('for x in a; echo; done')).code).toBe(2);
      expect((await run('for x in a; do echo')).stderr).toBe('sh: 1: Syntax error: end of file unexpected\n');
    });

    it('id and id -u as the login user and through sudo; id refuses an unknown option', async () => {
      expect((await run('id -u; id -g; sudo -n -- id -u')).stdout).toBe('1000\n1000\n0\n');
      expect((await run('id')).stdout).toMatch(/^uid=1000\(deploy\) gid=1000\(deploy\) groups=1000\(deploy\),/);
      expect(await run('id -x')).toMatchObject({ stderr: "id: invalid option -- 'x'\nTry 'id --help' for more information.\n", code: 1 });
    });

    it('wc -l counts lines; cat -- FILE; cat refuses options it does not simulate', async () => {
      expect((await run('printf "a\\nb\\n" | wc -l')).stdout).toBe('2\n');
      expect((await run("printf 'a\\n' > /tmp/wc && wc -l /tmp/wc")).stdout).toBe('1 /tmp/wc\n');
      expect((await run('cat -- /tmp/wc')).stdout).toBe('a\n');
      expect((await run('cat -n /tmp/wc')).code).toBe(1);
    });
  });
});
