/** ssh.Line without a host: selection, the edit (the rest of the file byte for byte), diff, claims. */
import { describe, expect, it } from 'vitest';
import { editLines, lineKind, selectLines, splitLines, type LineActual, type LineSpec } from '../../../providers/ssh/kinds/line.js';
import { SpecError } from '../../../src/errors.js';
import { makeResource } from '../../helpers/resources.js';

const SSHD = '# header\n#PermitRootLogin yes\nPort 22\nPermitRootLogin yes\n\tIndented  tab line\n';
const root: LineSpec = { path: '/etc/ssh/sshd_config', line: 'PermitRootLogin no', match: '^#?PermitRootLogin\\s' };

describe('ssh.Line edit', () => {
  it('present with match: the first selected line is replaced in place, later ones removed, the rest untouched', () => {
    expect(editLines(SSHD, root)).toBe('# header\nPermitRootLogin no\nPort 22\n\tIndented  tab line\n');
    // Idempotent: applying again changes nothing.
    expect(editLines(editLines(SSHD, root), root)).toBe(editLines(SSHD, root));
  });

  it('present, nothing selected: appended, adding the missing final newline of the last line only', () => {
    expect(editLines('a\nb\n', { path: '/f', line: 'c' })).toBe('a\nb\nc\n');
    expect(editLines('a\nb', { path: '/f', line: 'c' })).toBe('a\nb\nc\n');
    expect(editLines('', { path: '/f', line: 'c' })).toBe('c\n');
  });

  it('present and already there once: nothing changes, not even a missing final newline', () => {
    expect(editLines('a\nc', { path: '/f', line: 'c' })).toBe('a\nc');
    expect(editLines('c\r\nx\n', { path: '/f', line: 'c' })).toBe('c\r\nx\nc\n'); // a CRLF line is another line
  });

  it('absent: every selected line goes; blank lines, spacing and the final newline state stay', () => {
    expect(editLines(SSHD, { ...root, state: 'absent' })).toBe('# header\nPort 22\n\tIndented  tab line\n');
    expect(editLines('a\n\nb\na\n', { path: '/f', line: 'a', state: 'absent' })).toBe('\nb\n');
    expect(editLines('x\na', { path: '/f', line: 'a', state: 'absent' })).toBe('x\n');
    expect(editLines('x\ny', { path: '/f', line: 'a', state: 'absent' })).toBe('x\ny');
    expect(editLines('a\n', { path: '/f', line: 'a', state: 'absent' })).toBe('');
  });

  it('three-way: the line the last applied spec set is replaced by the new one, not left beside it', () => {
    const before: LineSpec = { path: '/etc/sysctl.conf', line: 'vm.swappiness = 10' };
    const now: LineSpec = { path: '/etc/sysctl.conf', line: 'vm.swappiness = 1' };
    expect(editLines('# mine\nvm.swappiness = 10\nnet.x = 1\n', now, before)).toBe('# mine\nvm.swappiness = 1\nnet.x = 1\n');
    // Without a last applied spec it is someone else's line: left alone, the new one appended.
    expect(editLines('# mine\nvm.swappiness = 10\n', now)).toBe('# mine\nvm.swappiness = 10\nvm.swappiness = 1\n');
    // Turned absent with another line: the line Plumb set goes as well as the named one.
    expect(editLines('a\nvm.swappiness = 10\nvm.swappiness = 1\n', { ...now, state: 'absent' }, before)).toBe('a\n');
    // A last applied spec of another file selects nothing here.
    expect(selectLines('vm.swappiness = 10\n', now, { ...before, path: '/etc/other' })).toEqual([]);
  });

  it('splits lines without inventing an empty last one', () => {
    expect(splitLines('a\nb\n')).toEqual({ lines: ['a', 'b'], trailingNewline: true });
    expect(splitLines('a\nb')).toEqual({ lines: ['a', 'b'], trailingNewline: false });
    expect(splitLines('')).toEqual({ lines: [], trailingNewline: false });
  });
});

describe('ssh.Line diff', () => {
  const r = makeResource<LineSpec>('ssh.Line', 'root', root);
  const actual = (text: string): LineActual | undefined => {
    const selected = selectLines(text, root);
    return selected.length > 0 ? { type: 'file', selected } : undefined;
  };

  it('converged: exactly one selected line and it is the line', () => {
    expect(lineKind.diff(r, actual('Port 22\nPermitRootLogin no\n'))).toEqual([]);
  });

  it('replace and remove, with line numbers; append when none; a directory is a /type change', () => {
    expect(lineKind.diff(r, actual(SSHD))).toEqual([
      { path: '/line', before: ['#PermitRootLogin yes', 'PermitRootLogin yes'], after: 'PermitRootLogin no', note: 'replace line 2, remove line 4 of /etc/ssh/sshd_config' },
    ]);
    expect(lineKind.diff(r, actual('Port 22\n'))).toEqual([{ path: '/line', before: null, after: 'PermitRootLogin no', note: 'append to /etc/ssh/sshd_config' }]);
    expect(lineKind.diff(r, { type: 'directory', selected: [] })[0]?.path).toBe('/type');
  });

  it('absent: converged when nothing is selected', () => {
    const gone = makeResource<LineSpec>('ssh.Line', 'root', { ...root, state: 'absent' });
    expect(lineKind.diff(gone, undefined)).toEqual([]);
    expect(lineKind.diff(gone, actual(SSHD))).toEqual([{ path: '/state', before: ['#PermitRootLogin yes', 'PermitRootLogin yes'], after: 'absent', note: 'remove lines 2, 4 from /etc/ssh/sshd_config' }]);
  });

  it('normalize: the path in normal form, a bad regular expression is a spec error at /match', () => {
    expect(lineKind.normalize!({ path: '/etc//ssh/./sshd_config', line: 'x' }).path).toBe('/etc/ssh/sshd_config');
    expect(() => lineKind.normalize!({ path: '/f', line: 'x', match: '(' })).toThrow(SpecError);
    try {
      lineKind.normalize!({ path: '/f', line: 'x', match: '[' });
    } catch (err) {
      expect((err as SpecError).pointer).toBe('/match');
    }
  });

  it('claims (path, match) or (path, line), below the path a whole ssh.File claims', () => {
    expect(lineKind.claims!(root, 'root')).toEqual([{ key: ['path', '/etc/ssh/sshd_config', 'match', '^#?PermitRootLogin\\s'], label: 'lines matching /^#?PermitRootLogin\\s/ in /etc/ssh/sshd_config', pointer: '/match' }]);
    expect(lineKind.claims!({ path: '/f', line: 'a b' }, 'x')[0]?.key).toEqual(['path', '/f', 'line', 'a b']);
  });

  it('released: a line Plumb set in another file (path changed) stays there, and says so', () => {
    const moved = makeResource<LineSpec>('ssh.Line', 'l', { path: '/etc/b', line: 'x' });
    expect(lineKind.released!({ ...moved, lastApplied: { path: '/etc/a', line: 'x' } })).toHaveLength(1);
    expect(lineKind.released!({ ...moved, lastApplied: { path: '/etc/b', line: 'y' } })).toEqual([]);
  });
});
