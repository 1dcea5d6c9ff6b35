import { execFile } from 'node:child_process';
import type { Log } from '../provider.js';

/**
 * sd_notify for Type=notify units. Node can't write to the notify socket (a unix
 * datagram socket), so each message goes through `systemd-notify`, which the
 * unit allows with NotifyAccess=all. Off unless systemd set NOTIFY_SOCKET.
 */
export class SystemdNotifier {
  readonly #enabled: boolean;
  readonly #watchdogMs: number | undefined;
  readonly #log: Log;
  readonly #env: NodeJS.ProcessEnv;
  #watchdog: NodeJS.Timeout | undefined;

  constructor(env: NodeJS.ProcessEnv, log: Log) {
    this.#env = env;
    this.#log = log;
    this.#enabled = Boolean(env.NOTIFY_SOCKET);
    const usec = Number(env.WATCHDOG_USEC);
    const forUs = !env.WATCHDOG_PID || Number(env.WATCHDOG_PID) === process.pid;
    this.#watchdogMs = this.#enabled && forUs && usec > 0 ? usec / 1000 : undefined;
  }

  /** READY=1 once the daemon serves (state open, socket listening), then the watchdog keeps pinging. */
  ready(status: string): void {
    this.#send(['READY=1', `STATUS=${status}`]);
    if (this.#watchdogMs) {
      // Pinged from the event loop: if the loop is wedged, the pings stop and systemd restarts us.
      this.#watchdog = setInterval(() => this.#send(['WATCHDOG=1']), this.#watchdogMs / 3);
      this.#watchdog.unref();
    }
  }

  stopping(): void {
    if (this.#watchdog) clearInterval(this.#watchdog);
    this.#send(['STOPPING=1', 'STATUS=draining in-flight operations']);
  }

  #send(fields: string[]): void {
    if (!this.#enabled) return;
    execFile('systemd-notify', [`--pid=${process.pid}`, ...fields], { env: this.#env, timeout: 5_000 }, (err) => {
      if (err) this.#log.warn({ error: err.message, fields: fields.map((f) => f.split('=')[0]) }, 'systemd-notify failed');
    });
  }
}
