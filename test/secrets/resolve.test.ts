import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { expect, test } from 'vitest';
import { SecretError } from '../../src/errors.js';
import { humanLog } from '../../src/cli/human-log.js';
import { redactText } from '../../src/secrets/redact.js';
import { SecretResolver } from '../../src/secrets/resolve.js';
import { tempDir } from '../helpers/git-repo.js';

test('a resolved secret prints, serialises and inspects as redacted', async () => {
  const secrets = new SecretResolver({ env: { DB_PASSWORD: 'hunter2-but-longer' } });
  const secret = await secrets.resolve('env:DB_PASSWORD');
  expect(String(secret)).toBe('[REDACTED]');
  expect(JSON.stringify({ secret })).toBe('{"secret":"[REDACTED]"}');
  expect(inspect(secret)).toBe('Secret(env:DB_PASSWORD)');
  expect(secret.revealString()).toBe('hunter2-but-longer');
  expect(redactText('login failed for hunter2-but-longer at host')).toBe('login failed for [REDACTED] at host');
});

test('file: drops exactly one trailing newline; missing files and variables name the reference, not a value', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'a'), 'pw-one\n');
  writeFileSync(join(dir, 'b'), 'pw-two\r\n');
  writeFileSync(join(dir, 'c'), 'pw-three\n\n');
  const secrets = new SecretResolver({ env: {} });
  expect((await secrets.resolve(`file:${join(dir, 'a')}`)).revealString()).toBe('pw-one');
  expect((await secrets.resolve(`file:${join(dir, 'b')}`)).revealString()).toBe('pw-two');
  expect((await secrets.resolve(`file:${join(dir, 'c')}`)).revealString()).toBe('pw-three\n');
  await expect(secrets.resolve(`file:${join(dir, 'missing')}`)).rejects.toThrow(new SecretError(`secret reference file:${join(dir, 'missing')}: cannot read the file (ENOENT)`));
  await expect(secrets.resolve('env:NOPE')).rejects.toThrow(/environment variable NOPE is not set/);
  await expect(secrets.resolve('inline-password')).rejects.toBeInstanceOf(SecretError);
  await expect(secrets.resolve('file:relative/path')).rejects.toBeInstanceOf(SecretError);
});

test('log lines are scrubbed of resolved values even when code logs them by mistake', async () => {
  const secrets = new SecretResolver({ env: { TOKEN: 'tok-5f1c2b9a7e' } });
  const value = (await secrets.resolve('env:TOKEN')).revealString();
  const lines: string[] = [];
  const log = humanLog('debug', (l) => lines.push(l));
  log.warn({ detail: `request with ${value} failed`, nested: { again: value } }, `oops ${value}`);
  expect(lines.join('')).not.toContain(value);
  expect(lines.join('')).toContain('[REDACTED]');
});
