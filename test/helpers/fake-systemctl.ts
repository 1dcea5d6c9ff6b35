/**
 * A fake systemctl for hosts without systemd (this container), first on the
 * sessions' PATH like fake-apt. It keeps per-unit state files (active,
 * enabled), logs every call, and implements exactly what Plumb's ssh.Service
 * (`show --property=...`, `enable|disable|start|stop|restart|reload-or-restart
 * -- UNIT`) and Ansible's systemd module (`show UNIT`, `is-enabled UNIT -l`,
 * `is-active`, start/stop/restart/reload, daemon-reload) call. Anything else
 * exits 2 with "fake systemctl: unsupported", so a caller that needs more fails
 * loudly instead of being answered kindly.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SystemctlCall {
  verb: string;
  unit: string;
  /** The arguments as given. */
  args: string;
}

export interface FakeSystemctl {
  dir: string;
  /** Put this first on PATH (sshd SetEnv) so `systemctl` is the fake. */
  path: string;
  /** Installs (or resets) a unit: its unit file exists, with this state. */
  unit(name: string, state: { active: boolean; enabled: boolean }): void;
  state(name: string): { active: boolean; enabled: boolean } | undefined;
  /** Every call so far, in order. */
  calls(): SystemctlCall[];
  cleanup(): void;
}

/** Verbs that change a unit or the manager; everything else only reads. */
export const MUTATING_VERBS = new Set(['start', 'stop', 'restart', 'reload', 'reload-or-restart', 'try-restart', 'enable', 'disable', 'mask', 'unmask', 'daemon-reload', 'daemon-reexec']);

export function fakeSystemctl(): FakeSystemctl {
  const dir = mkdtempSync(join(tmpdir(), 'plumb-fake-systemctl-'));
  mkdirSync(join(dir, 'bin'));
  mkdirSync(join(dir, 'units'));
  const log = join(dir, 'systemctl.log');
  writeFileSync(log, '');
  const units = join(dir, 'units');
  // State per unit: units/U (the "unit file"), units/U.active, units/U.enabled ("yes" or absent).
  writeFileSync(
    join(dir, 'bin/systemctl'),
    `#!/bin/sh
u=${units}
verb=; unit=; props=
for a in "$@"; do
  case "$a" in
    --) ;;
    --property=*) props=\${a#--property=} ;;
    -l|--full|--no-pager|--system) ;;
    -*) echo "fake systemctl: unsupported option $a" >&2; exit 2 ;;
    *) if [ -z "$verb" ]; then verb=$a; elif [ -z "$unit" ]; then unit=$a; else echo "fake systemctl: unsupported: more than one unit" >&2; exit 2; fi ;;
  esac
done
case "$unit" in ''|*.*) ;; *) unit=$unit.service ;; esac
printf '%s\\t%s\\t%s\\n' "$verb" "$unit" "$*" >> ${log}
loaded() { [ -f "$u/$unit" ]; }
need() { loaded || { echo "Failed to $verb $unit: Unit $unit not found." >&2; exit 5; }; }
active() { if [ -f "$u/$unit.active" ]; then echo active; else echo inactive; fi; }
sub() { if [ -f "$u/$unit.active" ]; then echo running; else echo dead; fi; }
enabled() { if ! loaded; then echo; elif [ -f "$u/$unit.enabled" ]; then echo enabled; else echo disabled; fi; }
prop() {
  case "$1" in
    Id) echo "Id=$unit" ;;
    Names) echo "Names=$unit" ;;
    LoadState) if loaded; then echo LoadState=loaded; else echo LoadState=not-found; fi ;;
    ActiveState) echo "ActiveState=$(active)" ;;
    SubState) echo "SubState=$(sub)" ;;
    UnitFileState) echo "UnitFileState=$(enabled)" ;;
    *) echo "fake systemctl: unsupported property $1" >&2; exit 2 ;;
  esac
}
case "$verb" in
  show)
    [ -n "$unit" ] || { echo "fake systemctl: unsupported: show without a unit" >&2; exit 2; }
    if [ -n "$props" ]; then
      for p in $(echo "$props" | tr ',' ' '); do prop "$p" || exit 2; done
    else
      echo Type=simple; echo Restart=no; echo NotifyAccess=none; echo RestartUSec=100ms
      echo "MainPID=0"; echo "ExecMainStatus=0"
      echo "ExecStart={ path=/usr/sbin/$unit ; argv[]=/usr/sbin/$unit ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }"
      prop Id; prop Names
      echo "Description=$unit (fake)"
      prop LoadState; prop ActiveState; prop SubState; prop UnitFileState
      if loaded; then echo "FragmentPath=$u/$unit"; echo UnitFilePreset=enabled; fi
      echo CanStart=yes; echo CanStop=yes; echo CanReload=no
    fi ;;
  is-enabled) need; s=$(enabled); echo "$s"; [ "$s" = enabled ] ;;
  is-active) s=$(active); echo "$s"; [ "$s" = active ] ;;
  start|restart|reload-or-restart) need; : > "$u/$unit.active" ;;
  stop) need; rm -f "$u/$unit.active" ;;
  reload) need; [ -f "$u/$unit.active" ] || { echo "Job for $unit failed: not active" >&2; exit 1; } ;;
  enable) need; : > "$u/$unit.enabled" ;;
  disable) need; rm -f "$u/$unit.enabled" ;;
  daemon-reload) ;;
  *) echo "fake systemctl: unsupported verb $verb" >&2; exit 2 ;;
esac
`,
    { mode: 0o755 },
  );
  return {
    dir,
    path: `${dir}/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    unit(name, state) {
      writeFileSync(join(units, name), '[Service]\n');
      for (const [flag, on] of [['active', state.active], ['enabled', state.enabled]] as const) {
        const file = join(units, `${name}.${flag}`);
        if (on) writeFileSync(file, '');
        else rmSync(file, { force: true });
      }
    },
    state(name) {
      if (!existsSync(join(units, name))) return undefined;
      return { active: existsSync(join(units, `${name}.active`)), enabled: existsSync(join(units, `${name}.enabled`)) };
    },
    calls: () =>
      readFileSync(log, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [verb = '', unit = '', args = ''] = line.split('\t');
          return { verb, unit, args };
        }),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
