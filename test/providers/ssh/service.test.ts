/** ssh.Service without a host: unit names, `systemctl show` parsing, the diff (notified or not) and the verbs it runs. */
import { describe, expect, it } from 'vitest';
import { parseShow, serviceKind, serviceVerbs, unitName, type ServiceActual, type ServiceSpec } from '../../../providers/ssh/kinds/service.js';
import { makeResource } from '../../helpers/resources.js';

const actual = (active: string, unitFile = 'enabled', load = 'loaded'): ServiceActual => ({ unit: 'nginx.service', load, active, sub: active === 'active' ? 'running' : 'dead', unitFile });
const resource = (spec: Partial<ServiceSpec>, notified?: string[]) => ({
  ...makeResource<ServiceSpec>('ssh.Service', 'nginx', { name: 'nginx', ...spec }),
  ...(notified ? { notified } : {}),
});
const diff = (spec: Partial<ServiceSpec>, a: ServiceActual | undefined, notified?: string[]) => serviceKind.diff(resource(spec, notified), a);

describe('unit names', () => {
  it.each([
    ['nginx', 'nginx.service'],
    ['nginx.service', 'nginx.service'],
    ['getty@tty1', 'getty@tty1.service'],
    ['fstrim.timer', 'fstrim.timer'],
    ['docker.socket', 'docker.socket'],
    ['my.app', 'my.app.service'],
  ])('%s is %s', (name, unit) => expect(unitName(name)).toBe(unit));

  it('one unit has one owner whichever way it is spelled', () => {
    expect(serviceKind.claims!({ name: 'nginx' }, 'a')).toEqual(serviceKind.claims!({ name: 'nginx.service' }, 'b'));
  });
});

describe('systemctl show', () => {
  it('reads Key=Value lines, values with = in them whole', () => {
    expect(parseShow('Id=nginx.service\nLoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\nX=a=b\n')).toEqual({
      Id: 'nginx.service',
      LoadState: 'loaded',
      ActiveState: 'active',
      SubState: 'running',
      UnitFileState: 'enabled',
      X: 'a=b',
    });
  });
});

describe('diff', () => {
  it('converged: running and enabled as asked, nothing notified', () => {
    expect(diff({ enabled: true, state: 'running' }, actual('active'))).toEqual([]);
    expect(diff({ enabled: false, state: 'stopped' }, actual('inactive', 'disabled'))).toEqual([]);
    expect(diff({ enabled: false, state: 'stopped' }, actual('failed', 'disabled'))).toEqual([]);
  });

  it('a static unit counts as enabled (nothing to enable), and cannot be disabled by Plumb: left as it is', () => {
    expect(diff({ enabled: true }, actual('active', 'static'))).toEqual([]);
    expect(diff({ enabled: false }, actual('active', 'static'))).toEqual([]);
  });

  it('enable and start, in that order of verbs', () => {
    const changes = diff({ enabled: true, state: 'running' }, actual('inactive', 'disabled'));
    expect(changes.map((c) => c.path)).toEqual(['/enabled', '/state']);
    expect(serviceVerbs(changes)).toEqual(['enable', 'start']);
  });

  it('disable and stop', () => {
    expect(serviceVerbs(diff({ enabled: false, state: 'stopped' }, actual('active', 'enabled')))).toEqual(['disable', 'stop']);
  });

  it('notified while running: one restart, naming what changed', () => {
    const changes = diff({ state: 'running' }, actual('active'), ['ssh.File/nginx-conf', 'ssh.Package/nginx']);
    expect(changes).toEqual([{ path: '/restart', before: null, after: 'restart', note: 'restart: ssh.File/nginx-conf, ssh.Package/nginx changed' }]);
    expect(serviceVerbs(changes)).toEqual(['restart']);
  });

  it('onChange: reload runs reload-or-restart', () => {
    expect(serviceVerbs(diff({ state: 'running', onChange: 'reload' }, actual('active'), ['ssh.File/x']))).toEqual(['reload-or-restart']);
  });

  it('notified while stopped: a start covers it (no restart after it); a unit meant to be stopped is not restarted', () => {
    expect(serviceVerbs(diff({ state: 'running' }, actual('inactive'), ['ssh.File/x']))).toEqual(['start']);
    expect(diff({ state: 'stopped' }, actual('inactive'), ['ssh.File/x'])).toEqual([]);
    // state unmanaged: restarted only if it runs
    expect(diff({}, actual('inactive'), ['ssh.File/x'])).toEqual([]);
    expect(serviceVerbs(diff({}, actual('active'), ['ssh.File/x']))).toEqual(['restart']);
  });

  it('a unit not installed yet is planned as enable and start (its package may come first)', () => {
    const changes = diff({ enabled: true, state: 'running' }, undefined);
    expect(changes.map((c) => c.note)).toEqual(['enable nginx.service (not installed yet)', 'start nginx.service (not installed yet)']);
  });

  it('what Plumb no longer manages is left as it is, and said so', () => {
    const r = { ...resource({}), lastApplied: { name: 'nginx.service', enabled: true, state: 'running' as const } };
    expect(serviceKind.released!(r)).toEqual([
      { path: '/enabled', note: 'no longer managed; stays enabled' },
      { path: '/state', note: 'no longer managed; stays running' },
    ]);
  });

  it('subscribes to restartOn, each at its place', () => {
    expect(serviceKind.subscribes!({ name: 'x', restartOn: ['ssh.File/a', 'ssh.Package/b'] })).toEqual([
      { id: 'ssh.File/a', pointer: '/restartOn/0' },
      { id: 'ssh.Package/b', pointer: '/restartOn/1' },
    ]);
  });
});
