import { describe, expect, test } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { checkBranch, checkRemote, checkScopePath } from '../../src/source/remote.js';

describe('checkRemote', () => {
  test.each([
    ['ext::sh -c touch% /tmp/pwned', /remote helper/],
    ['EXT::sh -c id', /remote helper/],
    ['fd::17', /remote helper/],
    ['file::/srv/repo.git', /remote helper/],
    ['transport+x::anything', /remote helper/],
    ['--upload-pack=touch /tmp/pwned', /command-line option/],
    ['-oProxyCommand=touch /tmp/pwned', /command-line option/],
    ['  -u evil', /command-line option/],
    ['ssh://-oProxyCommand=touch%20/tmp/pwned/repo', /host/],
    ['ssh://git@-oProxyCommand=x/repo', /host/],
    ['git@-oProxyCommand:repo', /host/],
    ['ftp://example.com/repo.git', /scheme "ftp:\/\/" is not allowed/],
    ['javascript://x', /not allowed/],
    ['relative/path', /neither a URL/],
    ['../up.git', /neither a URL/],
    ['example.com:org/repo.git', /neither a URL/],
    ['', /empty/],
    ['   ', /empty/],
    ['/srv/repo.git\n--upload-pack=x', /control characters/],
    ['https://example.com/repo.git\0', /control characters/],
  ])('refuses %j', (url, message) => {
    expect(() => checkRemote(url)).toThrow(ConfigError);
    expect(() => checkRemote(url)).toThrow(message);
  });

  test.each([
    'https://github.com/acme/config.git',
    'HTTPS://github.com/acme/config.git',
    'http://127.0.0.1:8080/config.git',
    'ssh://git@github.com/acme/config.git',
    'ssh://git@[::1]:2222/config.git',
    'git://git.example.com/config.git',
    'file:///srv/git/config.git',
    'git@github.com:acme/config.git',
    'deploy.bot@git.example.com:acme/config.git',
    '/srv/git/config.git',
    '/srv/git/with::colons',
  ])('accepts %j', (url) => {
    expect(checkRemote(url)).toBe(url);
  });

  test('a password in a refused URL stays out of the message', () => {
    expect(() => checkRemote('ssh://bot:s3cret-pw@-oProxyCommand=x/repo')).toThrow(/"ssh:\/\/\*\*\*@-oProxyCommand=x\/repo"/);
    expect(() => checkRemote('ssh://bot:s3cret-pw@-oProxyCommand=x/repo')).not.toThrow(/s3cret/);
  });

  test.each(['https://user:t0ken-abc@git.example.com/ops/config.git', 'http://bot:pw@host/r.git', 'ssh://git:pw@host/r.git'])(
    'refuses a password or token in %j (secrets are references, never config values)',
    (url) => {
      expect(() => checkRemote(url)).toThrow(/carries a password or token; give the plumb user a git credential helper/);
      expect(() => checkRemote(url)).not.toThrow(/t0ken|:pw@/);
    },
  );

  test('trims surrounding space', () => {
    expect(checkRemote('  https://example.com/r.git \n')).toBe('https://example.com/r.git');
  });
});

describe('checkBranch', () => {
  test.each(['main', 'release/2024.1', 'feature/x-y_z', 'v1.2', 'a/b/c', 'ü-branch'])('accepts %j', (branch) => {
    expect(checkBranch(branch)).toBe(branch);
  });

  test.each(['', ' ', '-main', '--upload-pack=x', '/main', 'main/', 'main.', 'main.lock', 'a..b', 'a@{1}', 'a//b', 'with space', 'tab\there', 'a~1', 'a^', 'a:b', 'a?', 'a*', 'a[b', 'a\\b', 'nl\nx', 'del\x7f'])(
    'refuses %j',
    (branch) => {
      expect(() => checkBranch(branch)).toThrow(ConfigError);
    },
  );
});

describe('checkScopePath', () => {
  test.each([
    ['', ''],
    ['.', ''],
    ['./', ''],
    ['envs/prod', 'envs/prod'],
    ['./envs/prod/', 'envs/prod'],
    ['envs//prod', 'envs/prod'],
    ['envs/./prod', 'envs/prod'],
    ['envs/x/../prod', 'envs/prod'],
    ['  envs/prod  ', 'envs/prod'],
    ['.config', '.config'],
  ])('%j -> %j', (input, expected) => {
    expect(checkScopePath(input)).toBe(expected);
  });

  test.each(['/etc', '..', '../x', 'envs/../../x', '-x', '--', 'a\nb', 'a\0b'])('refuses %j', (path) => {
    expect(() => checkScopePath(path)).toThrow(ConfigError);
  });
});
