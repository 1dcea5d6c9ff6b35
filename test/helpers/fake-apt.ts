/**
 * A fake apt-get for ssh.Package tests against real OpenSSH: first on the
 * sessions' PATH, it logs every call, answers a dry run (-s) with Inst/Remv
 * lines (a package depending on a removed one is removed too), and installs
 * local .debs (built with dpkg-deb) with this machine's real dpkg, so installs
 * never touch the network. Needs root.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface FakeApt {
  dir: string;
  /** Put this first on PATH (sshd SetEnv) so `apt-get` is the fake. */
  path: string;
  /** Every apt-get call so far: its arguments and DEBIAN_FRONTEND. */
  calls(): string[];
  /** Builds a local package `name` 1.0 (architecture all). */
  build(name: string, depends?: string): Promise<void>;
  installed(name: string): Promise<boolean>;
  /** Purges the packages it built, removes its files. */
  cleanup(): Promise<void>;
}

export function canFakeApt(): boolean {
  return process.getuid?.() === 0 && existsSync('/usr/bin/dpkg-deb') && existsSync('/usr/bin/dpkg-query');
}

export function fakeApt(prefix: string): FakeApt {
  const dir = mkdtempSync(join(tmpdir(), 'plumb-fake-apt-'));
  mkdirSync(join(dir, 'bin'));
  mkdirSync(join(dir, 'debs'));
  const log = join(dir, 'apt-get.log');
  const built: string[] = [];
  writeFileSync(
    join(dir, 'bin/apt-get'),
    `#!/bin/sh
printf '%s DEBIAN_FRONTEND=%s\\n' "$*" "$DEBIAN_FRONTEND" >> ${log}
sim=; for a in "$@"; do [ "$a" = -s ] && sim=1; done
seen=; for a in "$@"; do [ "$seen" ] || { [ "$a" = install ] && seen=1; continue; }
  case "$a" in
    *-) n=\${a%-}; if [ "$sim" ]; then echo "Remv $n [1.0]"; dpkg-query -W -f='\${Package} \${Depends}\\n' '${prefix}*' 2>/dev/null | while read p d; do [ "$d" = "$n" ] && echo "Remv $p [1.0]"; done; else dpkg -r "$n" || exit 100; fi ;;
    *) n=\${a%%=*}; [ -f ${dir}/debs/$n.deb ] || { echo "E: Unable to locate package $n"; exit 100; }; if [ "$sim" ]; then echo "Inst $n (1.0 local)"; else dpkg -i ${dir}/debs/$n.deb || exit 100; fi ;;
  esac
done
exit 0
`,
    { mode: 0o755 },
  );
  const installed = async (name: string): Promise<boolean> => {
    try {
      const { stdout } = await run('dpkg-query', ['-W', '-f=${db:Status-Abbrev}', name]);
      return stdout.startsWith('ii');
    } catch {
      return false;
    }
  };
  return {
    dir,
    path: `${dir}/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    calls: () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []),
    async build(name, depends) {
      if (!name.startsWith(prefix)) throw new Error(`fake packages are named ${prefix}*`);
      const root = join(dir, `build-${name}`);
      mkdirSync(join(root, 'DEBIAN'), { recursive: true });
      writeFileSync(join(root, 'DEBIAN/control'), `Package: ${name}\nVersion: 1.0\nArchitecture: all\nMaintainer: plumb tests <t@example.invalid>\n${depends ? `Depends: ${depends}\n` : ''}Description: plumb test package\n`);
      await run('dpkg-deb', ['--build', '--root-owner-group', root, join(dir, 'debs', `${name}.deb`)]);
      built.push(name);
    },
    installed,
    async cleanup() {
      for (const name of [...built].reverse()) if (await installed(name)) await run('dpkg', ['-P', name]).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
