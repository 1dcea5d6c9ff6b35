import { createLogger } from '../daemon/log.js';
import { Daemon } from '../daemon/daemon.js';
import { Engine } from '../daemon/engine.js';
import { builtinProviders } from '../daemon/providers.js';
import { resolveContext, type CommonFlags } from './context.js';

/** `plumb daemon`: poll, converge the delta, sweep for drift periodically; SIGTERM drains and exits. */
export async function daemonCommand(flags: CommonFlags, env: NodeJS.ProcessEnv): Promise<number> {
  const ctx = resolveContext(flags, env, { state: true });
  const log = createLogger({ level: ctx.config.logLevel });
  const engine = await Engine.open({ config: ctx.config, providers: builtinProviders(), log, env });
  const daemon = new Daemon(engine, ctx.config, log);
  const stop = (): void => void daemon.stop();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  log.info({ repo: engine.mirror.url, branch: engine.mirror.branch, path: engine.mirror.scope, stateDir: ctx.config.stateDir }, 'daemon started');
  try {
    await daemon.run();
  } finally {
    await engine.close();
    log.info({}, 'daemon stopped');
  }
  return 0;
}
