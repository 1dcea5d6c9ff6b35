/**
 * ssh.Line: one line of a file someone else owns (sshd_config, sysctl.conf).
 * The resource owns the lines it selects (equal to `line`, or matching `match`)
 * and nothing else of the file: every other byte is written back as it was.
 */
import { throwIfAborted } from '../../../src/provider.js';
import { SpecError } from '../../../src/errors.js';
import type { Claim, Json, KindHandler, OpContext, Resource } from '../../../src/provider.js';
import type { FileType } from '../remote.js';
import { lstat, readRemoteFile, removeJournaledTemp, writeFileAtomic, tempJournal } from '../remote.js';
import { normalPath } from '../paths.js';
import type { SshSession } from '../session.js';

export interface LineSpec {
  path: string;
  /** The whole line, without its newline. */
  line: string;
  /** A regular expression (JavaScript syntax, no flags): lines it matches are replaced by `line` (present) or removed (absent). */
  match?: string;
  state?: 'present' | 'absent';
}

export interface SelectedLine {
  /** 1-based line number. */
  n: number;
  text: string;
}

export interface LineActual {
  type: FileType;
  /** The lines this resource owns in the file, in file order: equal to `line`, matching `match`, or the line the last applied spec set. */
  selected: SelectedLine[];
}

/** Config files are small; a larger one is refused rather than rewritten from memory. */
const MAX_EDIT_BYTES = 4 * 1024 * 1024;

/** Compiles `match`; a pattern JavaScript cannot compile is a spec error at load. */
export function compileMatch(match: string): RegExp {
  try {
    return new RegExp(match);
  } catch (err) {
    throw new SpecError(`match ${JSON.stringify(match)} is not a valid regular expression (${(err as Error).message})`, { pointer: '/match' });
  }
}

/** Which lines the resource owns: its line, what `match` matches, and the line Plumb set before and the spec no longer has (three-way). */
export function lineSelector(spec: LineSpec, lastApplied?: LineSpec): (text: string) => boolean {
  const re = spec.match !== undefined ? compileMatch(spec.match) : undefined;
  const previous = lastApplied && (lastApplied.state ?? 'present') === 'present' && lastApplied.path === spec.path && lastApplied.line !== spec.line ? lastApplied.line : undefined;
  return (text) => text === spec.line || text === previous || (re !== undefined && re.test(text));
}

/** A file's text as lines (no terminators) and whether it ends with a newline. */
export function splitLines(text: string): { lines: string[]; trailingNewline: boolean } {
  if (text === '') return { lines: [], trailingNewline: false };
  const lines = text.split('\n');
  const trailingNewline = lines[lines.length - 1] === '';
  if (trailingNewline) lines.pop();
  return { lines, trailingNewline };
}

export function selectLines(text: string, spec: LineSpec, lastApplied?: LineSpec): SelectedLine[] {
  const selects = lineSelector(spec, lastApplied);
  const out: SelectedLine[] = [];
  splitLines(text).lines.forEach((t, i) => {
    if (selects(t)) out.push({ n: i + 1, text: t });
  });
  return out;
}

/**
 * Pure: the file's new text. Present: the first selected line becomes `line`, the
 * other selected lines go (one line wins, whether the reader takes the first or
 * the last); none selected: `line` is appended. Absent: every selected line goes.
 * Lines not selected, and a missing final newline, stay exactly as they were.
 */
export function editLines(text: string, spec: LineSpec, lastApplied?: LineSpec, state: 'present' | 'absent' = spec.state ?? 'present'): string {
  const selects = lineSelector(spec, lastApplied);
  const { lines, trailingNewline } = splitLines(text);
  const out: string[] = [];
  let placed = false;
  let droppedLast = false;
  lines.forEach((t, i) => {
    const keep = !selects(t);
    if (keep) out.push(t);
    else if (state === 'present' && !placed) {
      out.push(spec.line);
      placed = true;
    } else if (i === lines.length - 1) droppedLast = true;
  });
  if (state === 'present' && !placed) {
    out.push(spec.line);
    return out.join('\n') + '\n';
  }
  if (out.length === 0) return '';
  // A file without a final newline keeps that, unless its last line was removed: the line before it keeps its own newline.
  return out.join('\n') + (trailingNewline || droppedLast ? '\n' : '');
}

function decodeText(r: Resource<LineSpec>, bytes: Buffer): string {
  const text = bytes.toString('utf8');
  // Re-encoding must give the same bytes, or writing the edit back would change lines Plumb does not own.
  if (!Buffer.from(text, 'utf8').equals(bytes)) throw new SpecError(`${r.id}: ${r.spec.path} is not UTF-8 text; ssh.Line edits text files only`);
  if (text.includes('\0')) throw new SpecError(`${r.id}: ${r.spec.path} holds NUL bytes; ssh.Line edits text files only`);
  return text;
}

function refuseType(r: Resource<LineSpec>, type: FileType): SpecError {
  return new SpecError(`${r.id}: ${r.spec.path} is a ${type}, not a regular file; ssh.Line edits regular files only and never follows a symlink. Name the file itself`);
}

function missingFile(r: Resource<LineSpec>, target: string): SpecError {
  return new SpecError(
    `${r.id}: ${r.spec.path} does not exist on ${target}; ssh.Line edits a line of an existing file. Create the file first (the package that owns it, or an ssh.File if Plumb should own all of it) and list that in dependsOn`,
  );
}

/** Reads, edits and atomically replaces the file, keeping its mode and owner; nothing is written when the edit changes nothing. */
function rewrite(s: SshSession, r: Resource<LineSpec>, state: 'present' | 'absent', ctx: OpContext): Promise<void> {
  // Lines of one file are different claims, so their ops may run at once on the session: one read-edit-write at a time per file.
  return s.exclusive(`file ${r.spec.path}`, () => rewriteNow(s, r, state, ctx));
}

async function rewriteNow(s: SshSession, r: Resource<LineSpec>, state: 'present' | 'absent', ctx: OpContext): Promise<void> {
  const { spec } = r;
  const signal = ctx.signal;
  const st = await lstat(s, spec.path, signal);
  if (!st) {
    if (state === 'absent') return;
    throw missingFile(r, s.targetName);
  }
  if (st.type !== 'file') throw refuseType(r, st.type);
  const text = decodeText(r, await readRemoteFile(s, spec.path, st.size, MAX_EDIT_BYTES, signal));
  const next = editLines(text, spec, r.lastApplied, state);
  if (next === text) return;
  const journal = tempJournal(ctx);
  await writeFileAtomic(s, spec.path, Buffer.from(next, 'utf8'), { mode: st.mode, uid: st.uid, gid: st.gid }, signal, journal);
}

export const lineKind: KindHandler<LineSpec, LineActual, SshSession> = {
  kind: 'ssh.Line',
  schema: 'ssh.line.schema.json',

  normalize(spec) {
    if (spec.match !== undefined) compileMatch(spec.match);
    return { ...spec, path: normalPath(spec.path) };
  },

  // Below the path: an ssh.File there owns the whole file (a `whole` claim), so the two overlap; other Lines of the file do not.
  claims(spec): Claim[] {
    if (spec.match !== undefined) {
      return [{ key: ['path', spec.path, 'match', spec.match], label: `lines matching /${spec.match}/ in ${spec.path}`, pointer: '/match' }];
    }
    return [{ key: ['path', spec.path, 'line', spec.line], label: `line ${JSON.stringify(spec.line)} in ${spec.path}`, pointer: '/line' }];
  },

  // Absent (undefined) when the file holds none of the resource's lines, so a removal settles once they are gone.
  async read(s, r, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: read`);
    const st = await lstat(s, r.spec.path, ctx.signal);
    if (!st) return undefined;
    if (st.type !== 'file') return { type: st.type, selected: [] };
    const text = decodeText(r, await readRemoteFile(s, r.spec.path, st.size, MAX_EDIT_BYTES, ctx.signal));
    const selected = selectLines(text, r.spec, r.lastApplied);
    return selected.length > 0 ? { type: 'file', selected } : undefined;
  },

  diff(r, actual) {
    const { spec } = r;
    if (actual && actual.type !== 'file') {
      return [{ path: '/type', before: actual.type, after: 'file', note: `${spec.path} is a ${actual.type}; ssh.Line edits regular files only` }];
    }
    const selected = actual?.selected ?? [];
    if ((spec.state ?? 'present') === 'absent') {
      if (selected.length === 0) return [];
      return [{ path: '/state', before: selected.map((l) => l.text), after: 'absent', note: `remove ${lineNumbers(selected)} from ${spec.path}` }];
    }
    if (selected.length === 0) return [{ path: '/line', before: null, after: spec.line, note: `append to ${spec.path}` }];
    if (selected.length === 1 && selected[0]!.text === spec.line) return [];
    const first = selected[0]!;
    const rest = selected.slice(1);
    const notes = [first.text === spec.line ? undefined : `replace line ${first.n}`, rest.length > 0 ? `remove ${lineNumbers(rest)}` : undefined].filter((x) => x !== undefined);
    return [{ path: '/line', before: selected.map((l) => l.text), after: spec.line, note: `${notes.join(', ')} of ${spec.path}` }];
  },

  async apply(s, r, changes, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: apply`);
    if (changes.length === 0) return;
    await rewrite(s, r, r.spec.state ?? 'present', ctx);
  },

  /** Removes the lines the resource owns (its line, and what `match` matches); the rest of the file stays. The line it replaced is not restored: Plumb never kept it. */
  async remove(s, r, ctx) {
    throwIfAborted(ctx.signal, `${r.id}: remove`);
    if ((r.spec.state ?? 'present') === 'absent') return; // it never added anything
    await rewrite(s, r, 'absent', ctx);
  },

  /** A temporary file journaled before a rewrite that never finished. */
  cleanup(s, r, progress, ctx) {
    return removeJournaledTemp(s, r.id, progress, ctx.signal);
  },

  released(r) {
    const last = r.lastApplied;
    if (!last || (last.state ?? 'present') !== 'present' || last.path === r.spec.path) return [];
    return [{ path: '/path', note: `the line ${JSON.stringify(last.line)} Plumb set in ${last.path} stays there (a Line edits one file); remove it with a state: absent ssh.Line` }];
  },

  summarize(actual): Json {
    if (!actual) return { present: false };
    return { type: actual.type, lines: actual.selected.map((l) => l.n) };
  },
};

function lineNumbers(lines: SelectedLine[]): string {
  return lines.length === 1 ? `line ${lines[0]!.n}` : `lines ${lines.map((l) => l.n).join(', ')}`;
}
