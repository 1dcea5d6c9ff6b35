/**
 * What a CLI start loads: `plumb apply` and `validate` of an SSH fleet must not
 * pay for the Redfish and NETCONF transports (undici, saxes) or the daemon's
 * metrics; they load when a BMC or switch is first talked to.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { packageRoot } from '../../src/util/package-root.js';

/** The CommonJS packages in a fresh process's module cache after importing `modules` (built files). */
function packagesAfterImport(...modules: string[]): string[] {
  const script = `
    import { createRequire } from 'node:module';
    for (const m of ${JSON.stringify(modules.map((m) => join(packageRoot(), m)))}) await import(m);
    const cache = Object.keys(createRequire(import.meta.url).cache);
    console.log(JSON.stringify([...new Set(cache.map((k) => (/node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(k) ?? [])[1]).filter(Boolean))]));`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as string[];
}

describe('start-up cost', () => {
  test('apply and validate load no BMC or switch transport, and no daemon-only package', () => {
    const loaded = packagesAfterImport('dist/src/cli/apply.js', 'dist/src/cli/validate.js', 'dist/src/daemon/providers.js');
    expect(loaded).toContain('ssh2'); // the SSH provider's transport is the one a host fleet uses
    for (const lazy of ['undici', 'saxes', 'prom-client', 'chokidar']) expect(loaded).not.toContain(lazy);
  });

  test('validate, plan and the parse workers load no transport at all: their kinds come from the schema-only entry points', () => {
    for (const modules of [['dist/src/cli/validate.js', 'dist/src/cli/plan.js'], ['dist/src/load/parse-file.js', 'dist/src/load/spec-hash.js', 'dist/src/load/schemas.js', 'dist/src/daemon/provider-schemas.js']]) {
      const loaded = packagesAfterImport(...modules);
      for (const transport of ['ssh2', 'undici', 'saxes']) expect(loaded).not.toContain(transport);
    }
  });

  test('a lazy transport loads when first used', () => {
    const script = `
      import { createRequire } from 'node:module';
      const { parseXml } = await import(${JSON.stringify(join(packageRoot(), 'dist/providers/netconf/client/xml.js'))});
      const has = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('/node_modules/saxes/'));
      const before = has();
      const root = parseXml('<a xmlns="urn:x"><b>t</b></a>');
      console.log(JSON.stringify({ before, after: has(), name: root.name, ns: root.ns }));`;
    expect(JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }))).toEqual({ before: false, after: true, name: 'a', ns: 'urn:x' });
  });
});
