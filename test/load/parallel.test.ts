/**
 * A full load parsed in worker threads gives the very same desired set and
 * diagnostics as one parsed in-thread, whatever the number of workers: on a repo
 * of many files with errors of every stage, and on every case of the bad-input
 * corpus (positions of YAML, schema, claim and cross-file errors alike).
 *
 * Workers run the built code (dist/), so this needs `npm run build` (pretest).
 */
import { existsSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { builtinProviders } from '../../src/daemon/providers.js';
import { loadFull, type FullLoad, type LoadOptions } from '../../src/load/loader.js';
import { SchemaRegistry } from '../../src/load/schemas.js';
import { GitObjects } from '../../src/source/git.js';
import { packageRoot } from '../../src/util/package-root.js';
import { TempRepo } from '../helpers/git-repo.js';

const registry = new SchemaRegistry(builtinProviders());
const providers = { url: pathToFileURL(join(packageRoot(), 'dist/src/daemon/providers.js')).href, name: 'builtinProviders' };
const CORPUS = join(packageRoot(), 'fixtures/repos/bad');

/** Everything a load returns, as plain data (attachments without their read functions). */
function plain(load: FullLoad): unknown {
  return {
    diagnostics: load.diagnostics,
    filesRead: load.filesRead,
    resources: [...load.set.resources.values()].map((r) => ({ ...r, attachments: Object.fromEntries(Object.entries(r.attachments).map(([k, a]) => [k, { path: a.path, oid: a.oid, size: a.size }])) })),
    byFile: [...load.set.byFile],
    byAttachment: [...load.set.byAttachment],
    dependents: [...load.set.dependents].map(([k, v]) => [k, [...v]]),
    byTarget: [...load.set.byTarget].map(([k, v]) => [k, [...v]]),
    claims: load.set.claims.describe(),
  };
}

const host = (h: number, files: number, extra = ''): string => {
  const name = `h${h}`;
  const docs = [`apiVersion: plumb/v1\nkind: Target\nmetadata: { name: ${name} }\nspec:\n  provider: ssh\n  address: 10.0.0.${h}\n  user: deploy\n  privateKey: env:KEY\n  hostKey: "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"\n`];
  for (let i = 0; i < files; i++) docs.push(`apiVersion: plumb/v1\nkind: ssh.File\nmetadata:\n  name: ${name}-f${i}\n  target: ${name}\nspec:\n  path: /etc/f${i}.conf\n  content: "${name} ${i}\\n"\n  mode: "0644"\n`);
  return docs.join('---\n') + extra;
};

describe('full load in worker threads', () => {
  let repo: TempRepo;
  let objects: GitObjects;
  /** `mainParses: false`: every file through a worker (by default the main thread parses what no worker has taken yet, most of a small repo). */
  const load = (commit: string, workers?: number, mainParses = true): Promise<FullLoad> => {
    const options: LoadOptions = { objects, registry, scope: '', ...(workers ? { parallel: { providers, workers, minBytes: 0, mainParses } } : {}) };
    return loadFull(commit, options);
  };

  beforeAll(() => {
    repo = new TempRepo();
    objects = new GitObjects(repo.dir, { env: process.env });
  });
  afterAll(() => {
    objects.close();
    repo.cleanup();
  });

  test('a repo of 40 files, valid and broken, loads the same in-thread and with 1 and 3 workers', async () => {
    for (let h = 0; h < 40; h++) repo.write(`hosts/h${h}.yaml`, host(h, 20));
    repo.write('files/motd', 'hello\n');
    repo.write('hosts/h3.yaml', host(3, 20, '---\napiVersion: plumb/v1\nkind: ssh.File\nmetadata: { name: motd, target: h3 }\nspec: { path: /etc/motd, source: ../files/motd }\n' +
      // Metadata away from every default (workers post only what differs from them).
      '---\napiVersion: plumb/v1\nkind: ssh.File\nmetadata: { name: kept, target: h3, deletionPolicy: Retain, drift: report, ignore: [/mode], previousNames: [old-kept], dependsOn: [ssh.File/motd] }\nspec: { path: /etc/kept, content: x }\n'));
    const valid = repo.commit('valid');
    const inThread = plain(await load(valid));
    expect((inThread as { diagnostics: unknown[] }).diagnostics).toEqual([]);
    expect(plain(await load(valid, 1))).toEqual(inThread);
    expect(plain(await load(valid, 1, false))).toEqual(inThread);
    expect(plain(await load(valid, 3))).toEqual(inThread);
    expect(plain(await load(valid, 3, false))).toEqual(inThread);

    // Errors of every stage: YAML, schema, duplicates across files, claims, attachments, cross-file references.
    repo.write('hosts/h5.yaml', host(5, 3, '---\nkind: [unclosed\n'));
    repo.write('hosts/h7.yaml', host(7, 20).replace('mode: "0644"', 'mode: 644'));
    repo.write('hosts/h9.yaml', host(9, 2, `---\n${host(8, 1).split('---\n')[1]}`));
    repo.write('hosts/h11.yaml', host(11, 2, '---\napiVersion: plumb/v1\nkind: ssh.File\nmetadata: { name: clash, target: h11 }\nspec: { path: /etc/f0.conf, content: x }\n'));
    repo.write('hosts/h13.yaml', host(13, 2, '---\napiVersion: plumb/v1\nkind: ssh.File\nmetadata: { name: gone, target: h13, dependsOn: [ssh.File/nothing] }\nspec: { path: /etc/gone, source: ../files/none }\n'));
    repo.write('hosts/h15.yaml', host(15, 2, '---\napiVersion: plumb/v1\nkind: ssh.File\nmetadata: { name: lost, target: h99 }\nspec: { path: /etc/lost, content: x }\n'));
    const broken = repo.commit('broken');
    const reference = await load(broken);
    expect(reference.diagnostics.length).toBeGreaterThan(4);
    const expected = plain(reference);
    expect(plain(await load(broken, 1))).toEqual(expected);
    expect(plain(await load(broken, 1, false))).toEqual(expected);
    expect(plain(await load(broken, 3))).toEqual(expected);
    expect(plain(await load(broken, 3, false))).toEqual(expected);
  });

  // One case per kind of position (starting workers takes a while, so not all 48): YAML errors, a bad UTF-8 file,
  // alias bomb, prototype key, envelope, schema, secrets, duplicates across files, cycles, attachments.
  const sample = /^(01|02|05|06|07|08|11|14|20|24|27|29|31|36)-/;
  const cases = readdirSync(join(CORPUS, 'cases')).filter((name) => sample.test(name) && statSync(join(CORPUS, 'cases', name)).isDirectory() && !existsSync(join(CORPUS, 'cases', name, 'setup.json'))).sort();
  test.each(cases)('corpus case %s: the same diagnostics with 2 workers', async (name) => {
    const dir = join(CORPUS, 'cases', name);
    repo.git('rm', '-q', '-r', '--ignore-unmatch', '.');
    repo.git('clean', '-q', '-f', '-d', '-x');
    copyInto(repo, join(CORPUS, 'base'));
    copyInto(repo, dir, new Set(['expect.json', 'remove.txt', 'setup.json']));
    const remove = existsSync(join(dir, 'remove.txt')) ? readFileSync(join(dir, 'remove.txt'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '') : [];
    for (const file of remove) unlinkSync(join(repo.dir, file));
    const commit = repo.commit(name);
    const inThread = await load(commit);
    expect(inThread.diagnostics.length, 'the case is an error case').toBeGreaterThan(0);
    expect(plain(await load(commit, 2, false))).toEqual(plain(inThread));
  });
});

/** Copies a folder's files into the repo's working tree (`skip`: top-level names left out). */
function copyInto(repo: TempRepo, from: string, skip = new Set<string>(), sub = ''): void {
  for (const entry of readdirSync(join(from, sub), { withFileTypes: true })) {
    const path = sub === '' ? entry.name : `${sub}/${entry.name}`;
    if (entry.isDirectory()) copyInto(repo, from, skip, path);
    else if (!(sub === '' && skip.has(entry.name))) repo.write(path, readFileSync(join(from, path)));
  }
}
