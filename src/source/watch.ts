import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Log } from '../provider.js';

/**
 * Watches a local repo that people `git push` to (the remote is a path on this
 * host) for its branch moving: the branch's ref file and packed-refs. A change
 * only *triggers* a pass, which fetches and reads Git itself; nothing here is
 * taken as state. Polling stays on as the safety net.
 */
export class RefWatcher {
  readonly #files: string[];
  readonly #onChange: () => void;
  readonly #log: Log;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(repoDir: string, branch: string, onChange: () => void, log: Log) {
    // A bare repo keeps refs at its top; a working clone under .git/.
    const gitDir = existsSync(join(repoDir, 'refs')) && existsSync(join(repoDir, 'HEAD')) ? repoDir : join(repoDir, '.git');
    this.#files = [join(gitDir, 'refs', 'heads', ...branch.split('/')), join(gitDir, 'packed-refs')];
    this.#onChange = onChange;
    this.#log = log;
  }

  async start(): Promise<void> {
    // git updates a ref by writing <ref>.lock and renaming it over <ref>: both show up as events on these paths.
    this.#watcher = watch(this.#files, { ignoreInitial: true, persistent: true, atomic: false });
    this.#watcher.on('all', (event, path) => {
      this.#log.debug({ event, path }, 'ref changed');
      // One trigger per burst (a push may touch several refs and packed-refs at once).
      if (this.#timer) return;
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#onChange();
      }, 20);
    });
    this.#watcher.on('error', (err) => this.#log.warn({ error: (err as Error).message }, 'ref watch error; polling continues'));
    await new Promise<void>((resolve) => this.#watcher!.once('ready', () => resolve()));
  }

  async close(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    await this.#watcher?.close();
  }
}
