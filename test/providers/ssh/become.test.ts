/**
 * The become wrapper and the quoting every command line goes through: hostile
 * values reach a real `sh` byte-exact through `sudo ... sh -c '...'` (fake sudo
 * and doas first on PATH that check their options and exec the rest, so the
 * test needs neither root nor a sudoers rule); NUL is refused before quoting,
 * at validation with file:line:col.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { becomeCommand, parseProbe, probeCommand, resolveBecome } from '../../../providers/ssh/become.js';
import { shellQuote } from '../../../providers/ssh/remote.js';
import { builtinProviders } from '../../../src/daemon/providers.js';
import { ProviderError, SpecError } from '../../../src/errors.js';
import { loadFull } from '../../../src/load/loader.js';
import { SchemaRegistry } from '../../../src/load/schemas.js';
import { SecretResolver } from '../../../src/secrets/resolve.js';
import { GitObjects } from '../../../src/source/git.js';
import { TempRepo } from '../../helpers/git-repo.js';

const run = promisify(execFile);
const hostile = [`it's`, `a'b'c`, `"dq"`, `$(touch /tmp/plumb-pwned)`, '`id`', '"; rm -rf / #', 'a b\tc', 'line1\nline2', '\\', '$HOME', '*', '/etc/*', '-rf', '--', '', "''", '!event', '~root', ' lead and trail ', 'ünï/cödé'];

describe('become: the wrapper, through a real sh', () => {
  let bin: string;
  beforeAll(() => {
    bin = mkdtempSync(join(tmpdir(), 'plumb-fake-sudo-'));
    // Record the options (one per line in $LOG), check the shape, then run the rest as the real sudo would.
    writeFileSync(
      join(bin, 'sudo'),
      '#!/bin/sh\nwhile [ $# -gt 0 ]; do case "$1" in --) shift; break;; -u) printf "u=%s\\n" "$2" >>"$LOG"; shift;; *) printf "%s\\n" "$1" >>"$LOG";; esac; shift; done\nexec "$@"\n',
      { mode: 0o755 },
    );
    writeFileSync(join(bin, 'doas'), '#!/bin/sh\n[ "$1" = -n ] && [ "$2" = -u ] || exit 99\nprintf "u=%s\\n" "$3" >>"$LOG"; shift 3\nexec "$@"\n', { mode: 0o755 });
  });
  afterAll(() => rmSync(bin, { recursive: true, force: true }));

  const through = async (line: string): Promise<{ out: Buffer; log: string }> => {
    const log = join(bin, `log-${Math.random().toString(36).slice(2)}`);
    writeFileSync(log, '');
    const { stdout } = await run('sh', ['-c', line], { env: { PATH: `${bin}:/usr/bin:/bin`, LOG: log }, encoding: 'buffer' });
    return { out: stdout, log: readFileSync(log, 'utf8') };
  };

  it.each(hostile)('sudo: %j arrives as exactly itself', async (value) => {
    const { out, log } = await through(becomeCommand({ method: 'sudo', user: 'root' }, `printf '%s\\0' ${shellQuote(value)} ${shellQuote(`${value}2`)}`));
    expect(out).toEqual(Buffer.concat([Buffer.from(value), Buffer.from([0]), Buffer.from(`${value}2`), Buffer.from([0])]));
    expect(log).toBe('-n\nu=root\n');
  });

  it.each(hostile)('doas: %j arrives as exactly itself', async (value) => {
    const { out } = await through(becomeCommand({ method: 'doas', user: 'root' }, `printf '%s' ${shellQuote(value)}`));
    expect(out.toString('utf8')).toBe(value);
  });

  it('a hostile command in the inner shell is data, and the become user is quoted too', async () => {
    const inner = `printf '%s|' ${["'$(id)'", '`x`', 'a\nb', '-n'].map(shellQuote).join(' ')}`;
    const { out, log } = await through(becomeCommand({ method: 'sudo', user: "we'ird" }, inner));
    expect(out.toString()).toBe("'$(id)'|`x`|a\nb|-n|");
    expect(log).toBe("-n\nu=we'ird\n");
  });

  it('with a password: sudo -k -S -p "" reads stdin, never -n; the command gets /dev/null as its stdin', async () => {
    const line = becomeCommand({ method: 'sudo', user: 'root', password: {} }, 'cat; echo end');
    expect(line.startsWith("sudo -k -S -p '' -u 'root' -- sh -c ")).toBe(true);
    const child = execFile('sh', ['-c', line], { env: { PATH: `${bin}:/usr/bin:/bin`, LOG: join(bin, 'pw-log') } });
    child.stdin!.end('hunter2-not-for-the-command\n');
    const out = await new Promise<string>((resolve) => {
      let text = '';
      child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
      child.on('close', () => resolve(text));
    });
    expect(out).toBe('end\n');
  });

  it('NUL cannot be quoted: shellQuote refuses it rather than cut the value', () => {
    expect(() => shellQuote('a\0b')).toThrow(/NUL/);
  });

  it('the probe: login ids and the become line; without it, a ProviderError saying what to change', () => {
    expect(probeCommand({ method: 'sudo', user: 'root' })).toContain("sudo -n -u 'root' -- sh -c ");
    expect(parseProbe('ssh web1 (10.0.0.1:22)', 'deploy', { method: 'sudo', user: 'root' }, 'motd\nplumb-login:1000:1000\nplumb-become:0\n', 0)).toEqual({ uid: 1000, gid: 1000 });
    const refused = (): unknown => parseProbe('ssh web1 (10.0.0.1:22)', 'deploy', { method: 'sudo', user: 'root' }, 'plumb-login:1000:1000\nsudo: a password is required\n', 1);
    expect(refused).toThrow(ProviderError);
    expect(refused).toThrow(/^ssh web1 \(10\.0\.0\.1:22\): become: sudo refused to run commands as root for login user deploy \(exit 1: sudo: a password is required\); allow it in sudoers .*"deploy ALL=\(root\) NOPASSWD: ALL".*visudo -cf.*become\.password/);
    expect(() => parseProbe('ssh w', 'deploy', { method: 'doas', user: 'root' }, '', 1)).toThrow(/permit nopass deploy as root/);
  });

  it('resolveBecome: user defaults to root; the password is a resolved Secret that prints redacted; doas takes no password', async () => {
    const secrets = new SecretResolver({ env: { PW: 'sudo-pass-123' } });
    expect(await resolveBecome('web1', { method: 'doas' }, secrets)).toEqual({ method: 'doas', user: 'root' });
    const b = await resolveBecome('web1', { method: 'sudo', password: 'env:PW' }, secrets);
    expect(JSON.stringify(b)).not.toContain('sudo-pass-123');
    expect(String(b?.password)).toBe('[REDACTED]');
    await expect(resolveBecome('web1', { method: 'doas', password: 'env:PW' }, secrets)).rejects.toThrow(SpecError);
  });
});

describe('become: schema', () => {
  const load = (file: string): object => JSON.parse(readFileSync(join(import.meta.dirname, '../../../schemas', file), 'utf8')) as object;
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, keywords: ['x-hint'] });
  const validate = ajv.compile(load('ssh.target.schema.json'));
  const target = { provider: 'ssh', address: '10.0.0.1', user: 'deploy', privateKey: 'file:/k', hostKey: `SHA256:${'A'.repeat(43)}` };

  it('method sudo or doas; user a plain name; the password a secret reference, with sudo only', () => {
    for (const become of [{ method: 'sudo' }, { method: 'doas', user: 'postgres' }, { method: 'sudo', user: 'root', password: 'env:SUDO_PW' }, { method: 'sudo', password: 'file:/etc/plumb/sudo' }]) {
      expect(validate({ ...target, become }), JSON.stringify(become)).toBe(true);
    }
    const bad = [{}, { method: 'su' }, { method: 'sudo', user: '-r' }, { method: 'sudo', user: 'a b' }, { method: 'sudo', user: "a'b" }, { method: 'sudo', user: 'ro\u0000ot' }, { method: 'sudo', user: '' }, { method: 'sudo', password: 'hunter2' }, { method: 'doas', password: 'env:PW' }, { method: 'sudo', extra: 1 }];
    for (const become of bad) expect(validate({ ...target, become }), JSON.stringify(become)).toBe(false);
  });
});

describe('NUL in a path, name or value is refused at load with file:line:col', () => {
  let repo: TempRepo;
  let objects: GitObjects;
  beforeAll(() => {
    repo = new TempRepo();
    objects = new GitObjects(repo.dir, { env: process.env });
  });
  afterAll(() => {
    objects.close();
    repo.cleanup();
  });

  it.each([
    ['ssh.File', 'path: "/etc/a\\0b", content: "x"', 5],
    ['ssh.Directory', 'path: /srv/x, owner: "ro\\0ot"', 5],
    ['ssh.Command', 'run: "echo \\0"', 5],
    ['ssh.Command', 'run: "true", env: { A: "x\\0y" }', 5],
    ['ssh.User', 'name: "de\\0ploy"', 5],
    ['ssh.Package', 'names: ["vi\\0m"]', 5],
    ['ssh.Line', 'path: /etc/x, line: "a\\0b"', 5],
  ])('%s { %s }', async (kind, body, line) => {
    const target = `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: web1 }\nspec: { provider: ssh, address: 127.0.0.1, user: deploy, privateKey: "file:/k", hostKey: "SHA256:${'A'.repeat(43)}", become: { method: sudo } }\n`;
    repo.write('t.yaml', target);
    repo.write('r.yaml', `apiVersion: plumb/v1\nkind: ${kind}\nmetadata: { name: r, target: web1 }\nspec:\n  { ${body} }\n`);
    const res = await loadFull(repo.commit(`${kind} ${body}`), { objects, registry: new SchemaRegistry(builtinProviders()), scope: '' });
    expect(res.diagnostics.length, JSON.stringify(res.diagnostics)).toBeGreaterThan(0);
    expect(res.diagnostics[0]).toMatchObject({ file: 'r.yaml', line });
    expect(res.diagnostics[0]!.col).toBeGreaterThan(0);
    expect(res.diagnostics.map((d) => d.message).join("; ")).toMatch(/\\u0000/);
  });
});
