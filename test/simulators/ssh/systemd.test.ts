import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from 'ssh2';
import type { SimHost } from '../../../fixtures/simulators/ssh/index.js';
import { connect, exec, startTestSimulator, type TestSimulator } from './ssh-client.js';

const SHOW = 'systemctl show --property=Id,LoadState,ActiveState,SubState,UnitFileState';

describe('ssh simulator: systemctl', () => {
  let t: TestSimulator;
  let host: SimHost;
  let root: Client;
  let deploy: Client;

  beforeAll(async () => {
    t = await startTestSimulator({
      seed: {
        units: [
          { name: 'ssh.service' },
          { name: 'web', unitFileState: 'disabled' },
          { name: 'broken', unitFileState: 'disabled', failsToStart: true },
          { name: 'journal.service', unitFileState: 'static', canReload: false },
        ],
      },
    });
    host = t.sim.hosts[0] as SimHost;
    root = await connect(host, { privateKey: t.clientKey.private, username: 'root' });
    deploy = await connect(host, { privateKey: t.clientKey.private });
  });
  afterAll(async () => {
    root.end();
    deploy.end();
    await t.dispose();
  });

  it('show: Key=Value lines, one blank line between units; an unknown unit is not-found', async () => {
    const res = await exec(deploy, `${SHOW} ssh nosuch.service`);
    expect(res).toMatchObject({ code: 0, stderr: '' });
    expect(res.stdout).toBe(
      'Id=ssh.service\nLoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\n\nId=nosuch.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nUnitFileState=\n',
    );
    const repeated = await exec(deploy, 'systemctl show -p Id -p UnitFileState -pActiveState -- web');
    expect(repeated.stdout).toBe('Id=web.service\nActiveState=inactive\nUnitFileState=disabled\n');
    expect((await exec(deploy, 'systemctl show --property ActiveState --value ssh')).stdout).toBe('active\n');
  });

  it('is-active and is-enabled answer with their words and exit statuses', async () => {
    expect(await exec(deploy, 'systemctl is-active ssh')).toMatchObject({ stdout: 'active\n', code: 0 });
    expect(await exec(deploy, 'systemctl is-active web nosuch')).toMatchObject({ stdout: 'inactive\ninactive\n', code: 3 });
    expect(await exec(deploy, 'systemctl is-enabled journal')).toMatchObject({ stdout: 'static\n', code: 0 });
    expect(await exec(deploy, 'systemctl is-enabled web')).toMatchObject({ stdout: 'disabled\n', code: 1 });
    expect(await exec(deploy, 'systemctl is-enabled nosuch')).toMatchObject({ code: 1, stderr: 'Failed to get unit file state for nosuch.service: No such file or directory\n' });
  });

  it('enable, start, restart, reload, stop, disable change state and count per unit; each call counts as mutating', async () => {
    host.resetCounters();
    expect(await exec(root, 'systemctl enable web')).toMatchObject({ code: 0, stderr: expect.stringContaining('Created symlink /etc/systemd/system/multi-user.target.wants/web.service') });
    expect(await exec(root, 'systemctl start web.service && systemctl start web')).toMatchObject({ code: 0 });
    expect(await exec(root, 'systemctl restart -- web')).toMatchObject({ code: 0 });
    expect(await exec(root, 'systemctl reload web; systemctl try-restart web; systemctl daemon-reload')).toMatchObject({ code: 0 });
    const web = host.systemd.unit('web');
    expect(web).toMatchObject({ unitFileState: 'enabled', activeState: 'active' });
    expect(web.counters).toEqual({ starts: 1, stops: 0, restarts: 2, reloads: 1, enables: 1, disables: 0 });
    expect(host.systemd.daemonReloads).toBe(1);
    expect(await exec(root, 'systemctl disable --now web')).toMatchObject({ code: 0, stderr: expect.stringContaining('Removed') });
    expect(web).toMatchObject({ unitFileState: 'disabled', activeState: 'inactive' });
    expect(web.counters).toMatchObject({ stops: 1, disables: 1 });
    expect(host.counters.mutatingCommands).toBe(8);
    expect(host.counters.mutatingByCommand).toEqual({ systemctl: 8 });
    // Reads count nothing.
    await exec(root, `${SHOW} web; systemctl is-active web; systemctl is-enabled web; systemctl status web`);
    expect(host.counters.mutatingCommands).toBe(8);
  });

  it('enabling a static unit is fine and changes nothing; reload without ExecReload is refused', async () => {
    expect(await exec(root, 'systemctl enable journal')).toMatchObject({ code: 0, stderr: expect.stringContaining('no installation config') });
    expect(host.systemd.unit('journal').unitFileState).toBe('static');
    expect(await exec(root, 'systemctl reload journal')).toMatchObject({ code: 1, stderr: 'Failed to reload journal.service: Job type reload is not applicable for unit journal.service.\n' });
  });

  it('unknown units, failing units, non-root callers, unknown options and verbs fail as systemctl does', async () => {
    expect(await exec(root, 'systemctl start x')).toMatchObject({ code: 5, stderr: 'Failed to start x.service: Unit x.service not found.\n' });
    expect(await exec(root, 'systemctl restart x')).toMatchObject({ code: 5, stderr: 'Failed to restart x.service: Unit x.service not found.\n' });
    expect(await exec(root, 'systemctl enable x')).toMatchObject({ code: 1, stderr: 'Failed to enable unit: Unit file x.service does not exist.\n' });
    const failed = await exec(root, 'systemctl start broken');
    expect(failed).toMatchObject({ code: 1, stderr: expect.stringContaining('Job for broken.service failed because the control process exited with error code.') });
    expect((await exec(root, `${SHOW} broken`)).stdout).toContain('ActiveState=failed\nSubState=failed\n');
    expect(await exec(deploy, 'systemctl restart ssh')).toMatchObject({ code: 1, stderr: expect.stringContaining('Interactive authentication required.') });
    expect(host.systemd.unit('ssh').counters.restarts).toBe(0);
    expect(await exec(root, 'systemctl --bogus start ssh')).toMatchObject({ code: 1, stderr: "systemctl: unrecognized option '--bogus'\n" });
    expect(await exec(root, 'systemctl frob ssh')).toMatchObject({ code: 1, stderr: "Unknown command verb 'frob'.\n" });
  });
});
