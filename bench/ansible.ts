/**
 * bench/ansible: the same work done by an Ansible playbook and by a Plumb repo,
 * side by side, on real OpenSSH (issue 11). 20 sshd processes on loopback
 * (test/helpers/openssh.ts: one port, host key and client key each), each with
 * a fake systemctl first on its sessions' PATH (test/helpers/fake-systemctl.ts;
 * there is no systemd here). Per host:
 *
 *   - 10 templated files from the host's vars (Plumb: ssh.File `templateFile:`,
 *     Mustache; Ansible: ansible.builtin.template, Jinja2; same bytes, mode 0644)
 *   - a package that is installed, state present (ssh.Package; ansible.builtin.apt)
 *   - a service, enabled and running, restarted once when any of the 10 files
 *     changed (ssh.Service `restartOn`; an ansible.builtin.systemd handler
 *     notified by the template task)
 *
 *   npm run bench:ansible      (PLUMB_BENCH_HOSTS, PLUMB_BENCH_RUNS to vary; PLUMB_BENCH_PACKAGE; PLUMB_BENCH_FIRST=ansible)
 *
 * Each run, in alternating order, each tool does a cold first pass (the remote
 * files removed, the unit reset to running + enabled; Plumb with a fresh state
 * directory, Ansible with no control sockets and no remote ~/.ansible) and then
 * a no-op pass (Plumb `apply --once --all`, every resource read; Ansible the
 * same playbook again), every pass a child process timed from start to exit.
 * Checked after every pass: the exact bytes, mode and owner of every file (and
 * nothing else in the directory), one restart per host and no other mutating
 * systemctl call on a first pass; on a no-op pass zero mutating systemctl calls,
 * zero SFTP writes and every file's inode and times unchanged. Printed: medians
 * of PLUMB_BENCH_RUNS runs and the ratio Ansible/Plumb per pass against the
 * goal of 30x. Without ansible-playbook (or python3-apt) it prints a skip line
 * and exits 0.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { packageRoot } from '../src/util/package-root.js';
import { fakeSystemctl, MUTATING_VERBS, type FakeSystemctl } from '../test/helpers/fake-systemctl.js';
import { sshdAvailable, SSHD_MISSING, startOpenSsh, type OpenSshServer } from '../test/helpers/openssh.js';
import { commitAll, runCli } from './harness.js';

const HOSTS = Number(process.env.PLUMB_BENCH_HOSTS ?? 20);
const RUNS = Number(process.env.PLUMB_BENCH_RUNS ?? 3);
const PACKAGE = process.env.PLUMB_BENCH_PACKAGE ?? 'openssh-server';
/** Who goes first in run 1 (then alternating): plumb (default) or ansible. */
const FIRST = process.env.PLUMB_BENCH_FIRST === 'ansible' ? 1 : 0;
const FILES = 10;
const UNIT = 'benchapp.service';
const GOAL = 30;
const root = join(packageRoot(), '.bench', 'ansible');

interface Host {
  name: string;
  server: OpenSshServer;
  systemctl: FakeSystemctl;
  dir: string;
  vars: { app_name: string; listen_port: number; workers: number; upstreams: Array<{ host: string; port: number }> };
}

// ---- the two configurations --------------------------------------------------------------

/** File f's template, Mustache (Plumb) and Jinja2 (Ansible, one template, f from the loop item). */
const mustache = (f: number): string =>
  `# {{app_name}} f${f}: managed\nlisten = 127.0.0.1:{{listen_port}}\nworkers = {{workers}}\n{{#upstreams}}\nupstream {{host}}:{{port}}\n{{/upstreams}}\n`;
const JINJA = `# {{ app_name }} f{{ item }}: managed\nlisten = 127.0.0.1:{{ listen_port }}\nworkers = {{ workers }}\n{% for u in upstreams %}\nupstream {{ u.host }}:{{ u.port }}\n{% endfor %}\n`;
/** What both must produce, rendered here independently of either. */
const expected = (h: Host, f: number): string =>
  `# ${h.vars.app_name} f${f}: managed\nlisten = 127.0.0.1:${h.vars.listen_port}\nworkers = ${h.vars.workers}\n${h.vars.upstreams.map((u) => `upstream ${u.host}:${u.port}\n`).join('')}`;

function writePlumbRepo(repo: string, hosts: Host[]): void {
  mkdirSync(join(repo, 'hosts'), { recursive: true });
  mkdirSync(join(repo, 'templates'), { recursive: true });
  for (let f = 0; f < FILES; f++) writeFileSync(join(repo, 'templates', `f${f}.conf`), mustache(f));
  for (const h of hosts) {
    const s = h.server;
    const files = Array.from({ length: FILES }, (_, f) => `ssh.File/${h.name}-f${f}`);
    const docs = [
      `apiVersion: plumb/v1\nkind: Target\nmetadata: { name: ${h.name} }\nspec:\n  provider: ssh\n  address: ${s.address}\n  port: ${s.port}\n  user: ${s.user}\n  privateKey: ${s.clientKeyRef}\n  hostKey: "${s.hostKeyFingerprint}"\n  vars: ${JSON.stringify(h.vars)}\n`,
      ...Array.from(
        { length: FILES },
        (_, f) => `apiVersion: plumb/v1\nkind: ssh.File\nmetadata: { name: ${h.name}-f${f}, target: ${h.name} }\nspec:\n  path: ${join(h.dir, `f${f}.conf`)}\n  templateFile: /templates/f${f}.conf\n  mode: "0644"\n`,
      ),
      `apiVersion: plumb/v1\nkind: ssh.Package\nmetadata: { name: ${h.name}-pkg, target: ${h.name} }\nspec: { name: ${PACKAGE}, state: present }\n`,
      `apiVersion: plumb/v1\nkind: ssh.Service\nmetadata: { name: ${h.name}-app, target: ${h.name} }\nspec:\n  name: ${UNIT}\n  enabled: true\n  state: running\n  restartOn: [${files.join(', ')}]\n`,
    ];
    writeFileSync(join(repo, 'hosts', `${h.name}.yaml`), docs.join('---\n'));
  }
  commitAll(repo);
}

const PLAYBOOK = `- name: bench
  hosts: fleet
  gather_facts: false
  tasks:
    - name: config files
      ansible.builtin.template:
        src: templates/app.conf.j2
        dest: "{{ app_dir }}/f{{ item }}.conf"
        mode: "0644"
      loop: "{{ range(${FILES}) | list }}"
      notify: restart app
    - name: package
      ansible.builtin.apt:
        name: ${PACKAGE}
        state: present
    - name: service
      ansible.builtin.systemd:
        name: ${UNIT}
        state: started
        enabled: true
  handlers:
    - name: restart app
      ansible.builtin.systemd:
        name: ${UNIT}
        state: restarted
`;

function writeAnsibleDir(dir: string, hosts: Host[]): void {
  mkdirSync(join(dir, 'templates'), { recursive: true });
  writeFileSync(join(dir, 'templates', 'app.conf.j2'), JINJA);
  writeFileSync(join(dir, 'site.yml'), PLAYBOOK);
  writeFileSync(join(dir, 'ansible.cfg'), '# settings come from ANSIBLE_* in the bench child process\n');
  const inventory = ['fleet:', '  hosts:'];
  for (const h of hosts) {
    const s = h.server;
    inventory.push(
      `    ${h.name}:`,
      `      ansible_host: ${s.address}`,
      `      ansible_port: ${s.port}`,
      `      ansible_user: ${s.user}`,
      `      ansible_ssh_private_key_file: ${s.clientKeyPath}`,
      '      ansible_python_interpreter: /usr/bin/python3',
      `      app_dir: ${h.dir}`,
      ...Object.entries(h.vars).map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`),
    );
  }
  writeFileSync(join(dir, 'inventory.yml'), `${inventory.join('\n')}\n`);
  // Host keys are checked against this file: [127.0.0.1]:port lines, as ssh-keyscan would write them.
  writeFileSync(join(dir, 'known_hosts'), hosts.map((h) => `[${h.server.address}]:${h.server.port} ${h.server.hostPublicKeyLine.split(' ').slice(0, 2).join(' ')}\n`).join(''));
}

// ---- running -------------------------------------------------------------------------------

interface Timed {
  code: number;
  ms: number;
  out: string;
  cpuS: number | undefined;
  /** CPU of the sessions on the hosts (sshd and everything under it). */
  remoteCpuS?: number;
}

function runTimed(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<Timed> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn('/usr/bin/time', ['-f', 'PLUMB_BENCH_CPU %U %S', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env, cwd });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.on('close', (code) => {
      const cpu = /PLUMB_BENCH_CPU ([\d.]+) ([\d.]+)/.exec(out);
      resolve({ code: code ?? -1, ms: performance.now() - started, out, cpuS: cpu ? Number(cpu[1]) + Number(cpu[2]) : undefined });
    });
  });
}

function ansibleEnv(dir: string, controlDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ANSIBLE_')) env[k] = v;
  return {
    ...env,
    ANSIBLE_CONFIG: join(dir, 'ansible.cfg'),
    ANSIBLE_HOME: join(dir, 'home'),
    ANSIBLE_LOCAL_TEMP: join(dir, 'tmp'),
    ANSIBLE_PIPELINING: 'True',
    ANSIBLE_HOST_KEY_CHECKING: 'True',
    // Ansible's default ssh_args (-C, ControlMaster, ControlPersist=60s) plus the generated known_hosts, checked strictly.
    ANSIBLE_SSH_ARGS: `-C -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=${join(dir, 'known_hosts')} -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes`,
    ANSIBLE_SSH_CONTROL_PATH_DIR: controlDir,
    ANSIBLE_RETRY_FILES_ENABLED: 'False',
    ANSIBLE_NOCOLOR: '1',
  };
}

/** Ansible leaves its ControlPersist masters running after it exits: end them, so every pass connects afresh, as Plumb's does. */
function closeMasters(controlDir: string): void {
  let sockets: string[] = [];
  try {
    sockets = readdirSync(controlDir);
  } catch {
    return;
  }
  for (const sock of sockets) spawnSync('ssh', ['-o', `ControlPath=${join(controlDir, sock)}`, '-O', 'exit', 'bench-host'], { stdio: 'ignore' });
}

/** PLAY RECAP lines: host -> { changed, failed, unreachable }. */
function recap(out: string): Map<string, { changed: number; failed: number; unreachable: number }> {
  const rows = new Map<string, { changed: number; failed: number; unreachable: number }>();
  for (const m of out.matchAll(/^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/gm)) {
    rows.set(m[1]!, { changed: Number(m[2]), unreachable: Number(m[3]), failed: Number(m[4]) });
  }
  return rows;
}

// ---- checking ------------------------------------------------------------------------------

interface FileState {
  sha256: string;
  mode: number;
  uid: number;
  gid: number;
  /** inode, mtime and ctime: a no-op pass must not touch any of them. */
  touch: string;
}

function snapshot(hosts: Host[]): Map<string, FileState> {
  const out = new Map<string, FileState>();
  for (const h of hosts) {
    const entries = readdirSync(h.dir).sort();
    const want = Array.from({ length: FILES }, (_, f) => `f${f}.conf`).sort();
    if (entries.join(' ') !== want.join(' ')) throw new Error(`${h.name}: ${h.dir} holds [${entries.join(', ')}], expected exactly the ${FILES} files`);
    for (let f = 0; f < FILES; f++) {
      const path = join(h.dir, `f${f}.conf`);
      const st = lstatSync(path, { bigint: true });
      const bytes = readFileSync(path);
      if (!st.isFile()) throw new Error(`${path} is not a regular file`);
      if (bytes.toString('utf8') !== expected(h, f)) throw new Error(`${path}: unexpected content ${JSON.stringify(bytes.toString('utf8'))}, expected ${JSON.stringify(expected(h, f))}`);
      const mode = Number(st.mode & 0o7777n);
      if (mode !== 0o644) throw new Error(`${path}: mode ${mode.toString(8)}, expected 644`);
      out.set(path, { sha256: createHash('sha256').update(bytes).digest('hex'), mode, uid: Number(st.uid), gid: Number(st.gid), touch: `${st.ino} ${st.mtimeNs} ${st.ctimeNs}` });
    }
  }
  return out;
}

const mutating = (h: Host, from: number): string[] => h.systemctl.calls().slice(from).filter((c) => MUTATING_VERBS.has(c.verb)).map((c) => `${c.verb} ${c.unit}`);
const sftpWrites = (hosts: Host[]): number => hosts.reduce((n, h) => n + h.server.sftpWrites(), 0);

const TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
/** CPU seconds of the sshd listener's reaped descendants (cutime + cstime): the sessions, and what ran in them. */
function remoteCpu(hosts: Host[]): number {
  let ticks = 0;
  for (const h of hosts) {
    const stat = readFileSync(`/proc/${h.server.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(f[13]) + Number(f[14]);
  }
  return ticks / TICKS;
}

/** Waits until every host's sshd has reaped its sessions, so remoteCpu counts the whole pass. */
async function sessionsEnded(hosts: Host[]): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (const h of hosts) {
    const children = `/proc/${h.server.pid}/task/${h.server.pid}/children`;
    while (readFileSync(children, 'utf8').trim() !== '' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const sec = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const cpu = (t: Timed): string => `${t.cpuS === undefined ? '' : `, CPU ${t.cpuS.toFixed(2)} s`}${t.remoteCpuS === undefined ? '' : ` + hosts ${t.remoteCpuS.toFixed(2)} s`}`;

function skip(why: string): boolean {
  console.log(`skip: bench:ansible needs ${why}`);
  return true;
}

function missing(): boolean {
  if (spawnSync('ansible-playbook', ['--version'], { stdio: 'ignore' }).status !== 0) return skip('ansible-playbook, not installed (apt-get install --no-install-recommends ansible-core python3-apt)');
  if (spawnSync('/usr/bin/python3', ['-c', 'import apt'], { stdio: 'ignore' }).status !== 0) return skip('python3-apt for ansible.builtin.apt, not installed (apt-get install python3-apt)');
  if (spawnSync('dpkg-query', ['-W', PACKAGE], { stdio: 'ignore' }).status !== 0) return skip(`${PACKAGE} installed on this machine (PLUMB_BENCH_PACKAGE names another)`);
  return false;
}

async function main(): Promise<void> {
  if (missing()) return;
  if (!sshdAvailable()) throw new Error(SSHD_MISSING);
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const hosts: Host[] = await Promise.all(
    Array.from({ length: HOSTS }, async (_, i) => {
      const systemctl = fakeSystemctl();
      const server = await startOpenSsh({ cleanHome: true, env: { PATH: systemctl.path } });
      const name = `h${String(i).padStart(2, '0')}`;
      const vars = { app_name: `app-${name}`, listen_port: 8000 + i, workers: 2 + (i % 4), upstreams: [{ host: `10.0.${i}.1`, port: 9000 }, { host: `10.0.${i}.2`, port: 9001 }] };
      return { name, server, systemctl, dir: join(server.remoteRoot, 'app'), vars };
    }),
  );
  const stopAll = (): Promise<void> =>
    Promise.all(
      hosts.map(async (h) => {
        await h.server.stop();
        h.systemctl.cleanup();
      }),
    ).then(() => undefined);
  // A `timeout 900` that fires mid-run still stops the sshds and removes their temp dirs.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`bench interrupted (${sig}): stopping the sshds`);
      void stopAll().finally(() => process.exit(1));
    });
  }
  try {
    const repo = join(root, 'repo');
    const ansibleDir = join(root, 'ansible');
    writePlumbRepo(repo, hosts);
    writeAnsibleDir(ansibleDir, hosts);
    const version = execFileSync('ansible-playbook', ['--version'], { encoding: 'utf8' }).split('\n')[0];

    /** Cold: the files gone (the directory stays, empty), the unit running and enabled, no remote ~/.ansible. */
    const reset = (): void => {
      for (const h of hosts) {
        rmSync(h.dir, { recursive: true, force: true });
        mkdirSync(h.dir, { recursive: true });
        rmSync(join(h.server.dir, 'home', '.ansible'), { recursive: true, force: true });
        h.systemctl.unit(UNIT, { active: true, enabled: true });
      }
    };

    let passes = 0;
    type Tool = 'plumb' | 'ansible';
    const pass = async (tool: Tool, kind: 'cold' | 'noop', run: number): Promise<Timed> => {
      await sessionsEnded(hosts);
      const before = remoteCpu(hosts);
      const t = await runPass(tool, kind, run);
      await sessionsEnded(hosts);
      return { ...t, remoteCpuS: remoteCpu(hosts) - before };
    };
    const runPass = async (tool: Tool, kind: 'cold' | 'noop', run: number): Promise<Timed> => {
      passes++;
      if (tool === 'plumb') {
        const state = join(root, `state-${run}`);
        if (kind === 'cold') rmSync(state, { recursive: true, force: true });
        return runCli(['apply', '--once', ...(kind === 'noop' ? ['--all'] : []), '--repo', repo, '--state', state]);
      }
      const controlDir = join(root, `cp-${passes}`);
      mkdirSync(controlDir);
      try {
        return await runTimed('ansible-playbook', ['-i', 'inventory.yml', '-f', String(HOSTS), 'site.yml'], ansibleEnv(ansibleDir, controlDir), ansibleDir);
      } finally {
        closeMasters(controlDir);
      }
    };

    /** One tool's cold pass then its no-op pass, both checked; returns the times and the files it produced. */
    const round = async (tool: Tool, run: number): Promise<{ cold: Timed; noop: Timed; files: Map<string, FileState> }> => {
      reset();
      let marks = hosts.map((h) => h.systemctl.calls().length);
      const cold = await pass(tool, 'cold', run);
      if (cold.code !== 0) throw new Error(`${tool} first pass failed (exit ${cold.code}):\n${cold.out.slice(-4000)}`);
      const files = snapshot(hosts);
      hosts.forEach((h, i) => {
        const m = mutating(h, marks[i]!);
        if (m.join(',') !== `restart ${UNIT}`) throw new Error(`${tool} first pass, ${h.name}: mutating systemctl calls [${m.join(', ')}], expected exactly one restart`);
        const st = h.systemctl.state(UNIT);
        if (!st?.active || !st.enabled) throw new Error(`${tool} first pass, ${h.name}: ${UNIT} left ${JSON.stringify(st)}`);
      });
      if (tool === 'ansible') {
        const rows = recap(cold.out);
        for (const h of hosts) if (!((rows.get(h.name)?.changed ?? 0) > 0)) throw new Error(`ansible first pass: ${h.name} reported no change:\n${cold.out.slice(-3000)}`);
      }

      marks = hosts.map((h) => h.systemctl.calls().length);
      const writesBefore = sftpWrites(hosts);
      const noop = await pass(tool, 'noop', run);
      if (noop.code !== 0) throw new Error(`${tool} no-op pass failed (exit ${noop.code}):\n${noop.out.slice(-4000)}`);
      const writes = sftpWrites(hosts) - writesBefore;
      if (writes !== 0) throw new Error(`${tool} no-op pass: ${writes} SFTP writes (goal 0)`);
      const after = snapshot(hosts);
      for (const [path, st] of files) if (after.get(path)?.touch !== st.touch) throw new Error(`${tool} no-op pass touched ${path} (inode/mtime/ctime ${st.touch} -> ${after.get(path)?.touch})`);
      hosts.forEach((h, i) => {
        const m = mutating(h, marks[i]!);
        if (m.length > 0) throw new Error(`${tool} no-op pass, ${h.name}: mutating systemctl calls [${m.join(', ')}] (goal none)`);
      });
      if (tool === 'ansible') {
        const rows = recap(noop.out);
        for (const h of hosts) if (rows.get(h.name)?.changed !== 0) throw new Error(`ansible no-op pass: ${h.name} reported changed=${rows.get(h.name)?.changed}:\n${noop.out.slice(-3000)}`);
      }
      return { cold, noop, files };
    };

    const load = (): string => execFileSync('uptime', { encoding: 'utf8' }).trim();
    console.log(`${HOSTS} OpenSSH hosts x (${FILES} templated files + package ${PACKAGE} present + ${UNIT} restarted on change); ${RUNS} runs, alternating order`);
    console.log(`Plumb: \`plumb apply --once\` (fresh state), no-op \`apply --once --all\`; Ansible: ${version}, \`ansible-playbook -f ${HOSTS}\`, pipelining, gather_facts false, host keys checked`);
    console.log(`load at start: ${load()}`);
    const t = { plumbCold: [] as number[], plumbNoop: [] as number[], ansibleCold: [] as number[], ansibleNoop: [] as number[] };
    /** Local + host CPU seconds per pass: the figure the machine's load does not move much. */
    const c = { plumbCold: [] as number[], plumbNoop: [] as number[], ansibleCold: [] as number[], ansibleNoop: [] as number[] };
    const total = (x: Timed): number => (x.cpuS ?? 0) + (x.remoteCpuS ?? 0);
    for (let run = 1; run <= RUNS; run++) {
      const order: Tool[] = (run + FIRST) % 2 === 1 ? ['plumb', 'ansible'] : ['ansible', 'plumb'];
      const loadBefore = loadavg()[0]!.toFixed(1);
      const got: Partial<Record<Tool, Awaited<ReturnType<typeof round>>>> = {};
      for (const tool of order) got[tool] = await round(tool, run);
      const p = got.plumb!;
      const a = got.ansible!;
      // Same bytes (checked against the independent render above), same mode and owner from both tools.
      for (const [path, st] of p.files) {
        const other = a.files.get(path);
        if (!other || other.sha256 !== st.sha256 || other.mode !== st.mode || other.uid !== st.uid || other.gid !== st.gid) throw new Error(`${path}: Plumb and Ansible produced different files`);
      }
      t.plumbCold.push(p.cold.ms);
      t.plumbNoop.push(p.noop.ms);
      t.ansibleCold.push(a.cold.ms);
      t.ansibleNoop.push(a.noop.ms);
      c.plumbCold.push(total(p.cold));
      c.plumbNoop.push(total(p.noop));
      c.ansibleCold.push(total(a.cold));
      c.ansibleNoop.push(total(a.noop));
      console.log(
        `run ${run} (${order.join(' first, then ')}; load ${loadBefore} -> ${loadavg()[0]!.toFixed(1)}): first pass plumb ${sec(p.cold.ms)}${cpu(p.cold)}, ansible ${sec(a.cold.ms)}${cpu(a.cold)} (x${(a.cold.ms / p.cold.ms).toFixed(1)}); ` +
          `no-op plumb ${sec(p.noop.ms)}${cpu(p.noop)}, ansible ${sec(a.noop.ms)}${cpu(a.noop)} (x${(a.noop.ms / p.noop.ms).toFixed(1)})`,
      );
    }
    console.log(`checked: identical bytes, mode 0644 and owner from both tools; first pass 1 restart per host; no-op pass 0 mutating systemctl calls, 0 SFTP writes, no file touched`);
    let met = true;
    for (const [label, pm, am] of [
      ['first pass', median(t.plumbCold), median(t.ansibleCold)],
      ['no-op pass', median(t.plumbNoop), median(t.ansibleNoop)],
    ] as const) {
      const ratio = am / pm;
      met &&= ratio >= GOAL;
      console.log(`${label} (median of ${RUNS}): ansible ${sec(am)}, plumb ${sec(pm)}, ratio ansible/plumb ${ratio.toFixed(1)} vs goal >= ${GOAL} -> ${ratio >= GOAL ? 'met' : 'NOT met'}`);
    }
    for (const [label, pc, ac] of [
      ['first pass', median(c.plumbCold), median(c.ansibleCold)],
      ['no-op pass', median(c.plumbNoop), median(c.ansibleNoop)],
    ] as const) {
      console.log(`${label} CPU, tool + hosts (median): ansible ${ac.toFixed(2)} s, plumb ${pc.toFixed(2)} s, ratio ${(ac / pc).toFixed(1)}`);
    }
    console.log(`load at end: ${load()}`);
    if (!met) process.exitCode = 1;
  } finally {
    await stopAll();
  }
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${(err as Error).message}`);
  process.exitCode = 1;
});
