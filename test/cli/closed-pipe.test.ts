import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { LoadedResource } from '../../src/load/types.js';
import { openWritable } from '../../src/state/db.js';
import { Store } from '../../src/state/store.js';
import { packageRoot } from '../../src/util/package-root.js';
import { tempDir, TempRepo } from '../helpers/git-repo.js';
import { makeResource } from '../helpers/resources.js';

const cli = join(packageRoot(), 'dist/src/cli/main.js');
// Far more than a pipe holds (64 KiB on Linux): the CLI is still writing when the reader goes away.
const ROWS = 6000;

/**
 * Runs the CLI with stdout on a pipe that this side closes as soon as the first
 * line has arrived, like `plumb ... | head -1`; resolves when the CLI has exited.
 */
function plumbIntoClosedPipe(...args: string[]): Promise<{ code: number | null; signal: string | null; firstLine: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, PLUMB_CONFIG: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let head = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      head += chunk.toString('utf8');
      if (head.includes('\n')) child.stdout.destroy();
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('close', (code, signal) => resolve({ code, signal, firstLine: head.split('\n')[0] ?? '', stderr }));
  });
}

function resource(i: number): LoadedResource {
  return { ...makeResource('ssh.File', `file-${String(i).padStart(5, '0')}`, { path: `/etc/plumb-${i}`, content: 'x' }, { target: 'web1' }), file: 'files.yaml', line: i + 1, col: 1, specHash: `hash-${i}`, claims: [] };
}

/** A state directory with thousands of resources and audit-log events, written through the store as the engine would. */
function seedState(stateDir: string): void {
  const store = new Store(openWritable(stateDir));
  try {
    const commit = 'c'.repeat(40);
    store.accept({ commit, upserts: Array.from({ length: ROWS }, (_, i) => resource(i)), pending: [], renames: [], deletions: [], resurrected: [] }, new Map());
    store.db.transaction(() => {
      for (let i = 0; i < ROWS; i++) store.rejectCommit(i.toString(16).padStart(40, '0'), [{ severity: 'error', file: 'files.yaml', line: i + 1, col: 3, message: 'a problem that makes this row long enough to matter' }]);
    })();
  } finally {
    store.close();
  }
}

describe('a closed stdout (plumb ... | head -1)', () => {
  let repo: TempRepo;
  let state: string;

  beforeAll(() => {
    repo = new TempRepo();
    state = tempDir('plumb-pipe-state-');
    seedState(state);
  });
  afterAll(() => repo.cleanup());

  test.each([
    ['history', ['history', '--limit', String(ROWS)]],
    ['history --json', ['history', '--limit', String(ROWS), '--json']],
    ['status --all', ['status', '--all']],
    ['status --all --json', ['status', '--all', '--json']],
  ])('%s ends quietly: no EPIPE, no stack trace, the usual exit code', async (_name, args) => {
    const res = await plumbIntoClosedPipe(...args, '--repo', repo.dir, '--state', state);
    expect(res.firstLine).not.toBe('');
    expect(res.stderr).toBe('');
    expect(res.signal).toBeNull();
    expect(res.code).toBe(0);
  });
});
