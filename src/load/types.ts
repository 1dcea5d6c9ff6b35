import type { Claim, Json, Resource } from '../provider.js';
import { ClaimIndex } from './claims.js';

/** Where something is in the config repo. Lines and columns are 1-based. */
export interface Position {
  file: string;
  line: number;
  col: number;
}

/**
 * A problem with the config, addressed to a place in it. Collected, never thrown:
 * any error-severity diagnostic rejects the whole commit.
 */
export interface Diagnostic extends Position {
  severity: 'error' | 'warning';
  /** kind/name of the resource, when known. */
  id?: string;
  message: string;
}

/** A resource as loaded from one commit: the provider-facing Resource plus where it came from. */
export interface LoadedResource<Spec = unknown> extends Resource<Spec> {
  file: string;
  line: number;
  col: number;
  /** Hash of everything that makes a difference on the target: spec, target, attachment blob ids ('' from a load with `hashSpecs: false`). */
  specHash: string;
  /** What it owns on its target (KindHandler.claims), checked for overlaps at load. */
  claims: Claim[];
}


/** Everything one commit declares, indexed for delta planning. */
export interface DesiredSet {
  commit: string;
  resources: Map<string, LoadedResource>;
  /** File path -> ids defined in it. */
  byFile: Map<string, string[]>;
  /** Repo path of an attachment -> ids that reference it. */
  byAttachment: Map<string, string[]>;
  /** Id -> ids that list it in dependsOn. */
  dependents: Map<string, Set<string>>;
  /** Target name -> ids converged on it. */
  byTarget: Map<string, Set<string>>;
  /** Per target, what each resource claims (one owner per object). */
  claims: ClaimIndex;
}

export const TARGET_KIND = 'Target';

export function targetId(name: string): string {
  return `${TARGET_KIND}/${name}`;
}

export function emptyDesiredSet(commit: string): DesiredSet {
  return { commit, resources: new Map(), byFile: new Map(), byAttachment: new Map(), dependents: new Map(), byTarget: new Map(), claims: new ClaimIndex() };
}

/** The JSON form of a diagnostic, for SQLite and `--json`. */
export function diagnosticToJson(d: Diagnostic): Json {
  return { severity: d.severity, file: d.file, line: d.line, col: d.col, ...(d.id ? { id: d.id } : {}), message: d.message };
}

export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.col}: ${d.severity === 'warning' ? 'warning: ' : ''}${d.message}${d.id ? ` [${d.id}]` : ''}`;
}
