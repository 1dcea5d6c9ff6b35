import { mkdirSync } from 'node:fs';
import { dirname, isAbsolute } from 'node:path';
import { loadConfigFile } from '../daemon/config.js';
import { ControlServer } from '../daemon/control.js';
import { createLogger } from '../daemon/log.js';
import { Daemon } from '../daemon/daemon.js';
import { Engine } from '../daemon/engine.js';
import { builtinProviders } from '../daemon/providers.js';
import { SystemdNotifier } from '../daemon/systemd.js';
import { ConfigError, describeError } from '../errors.js';
import { RefWatcher } from '../source/watch.js';
import { HttpServer } from '../daemon/http.js';
import { Metrics } from '../daemon/metrics.js';
import { Notifier } from '../daemon/notify.js';
import { SecretResolver } from '../secrets/resolve.js';
import { resolveContext, type CommonFlags } from './context.js';

/**
 * `plumb daemon`: poll, converge the delta, sweep for drift periodically; serve
 * the control socket; SIGHUP reloads the config, SIGTERM drains and exits.
 */
export async function daemonCommand(flags: CommonFlags, env: NodeJS.ProcessEnv): Promise<number> {
  const ctx = resolveContext(flags, env, { state: true });
  const log = createLogger({ level: ctx.config.logLevel });
  const engine = await Engine.open({ config: ctx.config, providers: builtinProviders(), log, env });
  const daemon = new Daemon(engine, ctx.config, log);
  const reload = (): string[] => {
    if (!ctx.configPath) throw new ConfigError('the daemon was started without a config file (--repo): there is nothing to re-read; restart it to change settings');
    const next = loadConfigFile(ctx.configPath);
    if (flags.state) next.stateDir = ctx.config.stateDir;
    const changed = daemon.reconfigure(next);
    log.level = next.logLevel;
    return changed;
  };
  mkdirSync(dirname(ctx.config.control.socket), { recursive: true });
  const control = new ControlServer({ socketPath: ctx.config.control.socket, ...(ctx.config.control.group ? { group: ctx.config.control.group } : {}), daemon, store: engine.store, log, reload, resolve: (input) => engine.resolve(input) });
  await control.listen();
  // A repo on this host that people push to: a push triggers a fetch at once (polling stays as the safety net).
  const watcher = isAbsolute(engine.mirror.url) ? new RefWatcher(engine.mirror.url, engine.mirror.branch, () => daemon.poke(), log) : undefined;
  await watcher?.start();
  // Webhooks, /metrics, /healthz, /readyz; commit statuses after each commit converges or fails.
  const secrets = new SecretResolver({ env });
  const metrics = new Metrics({ store: engine.store });
  const notifier = new Notifier({ sinks: ctx.config.notify, secrets, log });
  const http = ctx.config.http
    ? new HttpServer({
        ...ctx.config.http,
        log,
        metrics,
        ...(ctx.config.webhook ? { webhook: { ...ctx.config.webhook, secrets, trigger: () => daemon.poke() } } : {}),
      })
    : undefined;
  daemon.onEvent = (event) => metrics.onEvent(event);
  daemon.onPass = (report, kind) => {
    metrics.onPass(report, kind);
    http?.onPass(report);
    notifier.onPass(report);
  };
  await http?.listen();
  const systemd = new SystemdNotifier(env, log);
  systemd.ready(`watching ${engine.mirror.branch} of ${engine.mirror.url}`);
  const stop = (): void => {
    systemd.stopping();
    void daemon.stop();
  };
  const onHup = (): void => {
    try {
      log.info({ changed: reload() }, 'configuration reloaded (SIGHUP)');
    } catch (err) {
      log.error({ error: describeError(err).message }, 'reload refused; the running configuration stays');
    }
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', onHup);
  log.info({ repo: engine.mirror.url, branch: engine.mirror.branch, path: engine.mirror.scope, stateDir: ctx.config.stateDir, socket: ctx.config.control.socket }, 'daemon started');
  try {
    await daemon.run();
  } finally {
    process.off('SIGHUP', onHup);
    await watcher?.close();
    await http?.close();
    await notifier.close();
    await control.close();
    await engine.close();
    log.info({}, 'daemon stopped');
  }
  return 0;
}
