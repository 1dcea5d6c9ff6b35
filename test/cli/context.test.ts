import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { currentBranch } from '../../src/cli/context.js';
import { ConfigError } from '../../src/errors.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';

/** `--repo DIR` defaults to DIR's current branch, read without spawning git, the same as git says. */
const repos: TempRepo[] = [];
afterEach(() => repos.splice(0).forEach((r) => r.cleanup()));

const newRepo = (): TempRepo => {
  const r = new TempRepo();
  repos.push(r);
  r.write('a.yaml', 'x: 1\n').commit('one');
  return r;
};

test('a work tree, a branch with a slash, a linked worktree, a bare clone and a subdirectory: the branch git names', () => {
  const r = newRepo();
  expect(currentBranch(r.dir)).toBe('main');
  r.git('checkout', '-q', '-b', 'team/ops');
  expect(currentBranch(r.dir)).toBe(r.git('symbolic-ref', '--short', 'HEAD'));
  expect(currentBranch(r.dir)).toBe('team/ops');

  const wt = join(tempDir('plumb-wt-'), 'wt');
  r.git('worktree', 'add', '-q', '-b', 'feature', wt);
  expect(currentBranch(wt)).toBe('feature');

  const bare = join(tempDir('plumb-bare-'), 'repo.git');
  execFileSync('git', ['clone', '-q', '--bare', r.dir, bare]);
  expect(currentBranch(bare)).toBe(execFileSync('git', ['symbolic-ref', '--short', 'HEAD'], { cwd: bare, encoding: 'utf8' }).trim());

  mkdirSync(join(r.dir, 'sub'));
  expect(currentBranch(join(r.dir, 'sub'))).toBe('team/ops');
  rmSync(wt, { recursive: true, force: true });
});

test('a detached HEAD is a clear error asking for --branch', () => {
  const r = newRepo();
  r.git('checkout', '-q', '--detach');
  expect(() => currentBranch(r.dir)).toThrow(ConfigError);
  expect(() => currentBranch(r.dir)).toThrow(/detached HEAD\?\); pass --branch NAME/);
});
