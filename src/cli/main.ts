#!/usr/bin/env node
import { Command, Option } from 'commander';
import { PlumbError } from '../errors.js';
import { redactText } from '../secrets/redact.js';
import type { CommonFlags } from './context.js';
import { guardOutputStreams, stdout } from './output.js';

const env = process.env;

guardOutputStreams();

/** Every verb takes the same way of finding its configuration. */
function common(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'daemon config file (default: $PLUMB_CONFIG or /etc/plumb/plumb.yaml)')
    .option('--repo <dir>', 'a local git repo to use instead of a config file')
    .option('--state <dir>', 'state directory (with --repo; overrides the config file)')
    .addOption(new Option('--branch <name>', 'branch to follow with --repo (default: its current branch)'))
    .addOption(new Option('--path <folder>', 'subfolder of the repo holding the documents, with --repo'))
    .option('--json', 'machine-readable output');
}

/**
 * Runs a command and exits with its code; errors become one line, never a stack
 * trace. Each command's module is imported when it runs: `plumb status` need not
 * load the daemon's HTTP server, metrics and providers.
 */
function action<A extends unknown[]>(run: (...args: A) => Promise<number> | number) {
  return async (...args: A): Promise<void> => {
    try {
      const code = await run(...args);
      // A failed write to stdout (reported by the stream, maybe already) keeps its exit code 1.
      process.exitCode = Math.max(code, Number(process.exitCode ?? 0));
    } catch (err) {
      process.exitCode = 1;
      if (err instanceof PlumbError) {
        process.stderr.write(`plumb: ${redactText(err.message)} [${err.code}]\n`);
      } else {
        process.stderr.write(`plumb: internal error: ${redactText((err as Error)?.message ?? String(err))}\n`);
        if (env.PLUMB_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
        else process.stderr.write('plumb: this is a bug; rerun with PLUMB_DEBUG=1 for details and report it\n');
      }
    }
  };
}

const program = new Command()
  .name('plumb')
  .description('GitOps convergence for hosts (SSH), bare metal (Redfish) and network devices (NETCONF)')
  .version('0.1.0')
  .showHelpAfterError()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

common(program.command('validate'))
  .description('check every document of a commit (or the working tree) offline, for CI and pre-commit hooks; exit 0 valid, 1 invalid')
  .option('--rev <rev>', 'commit to check (default: HEAD with --repo, else the configured branch)')
  .option('--worktree', 'check the files of the working tree, uncommitted and untracked ones too (for editor and pre-commit hooks)')
  .action(action(async (flags: CommonFlags & { rev?: string; worktree?: boolean }) => (await import('./validate.js')).validateCommand(flags, stdout(), env)));

common(program.command('plan'))
  .description('show the ops a commit causes; exit 0 no changes, 2 changes, 1 error')
  .option('--from <rev>', 'base commit (default: the last accepted commit in --state, else nothing)')
  .option('--to <rev>', 'commit to plan (default: HEAD with --repo, else the configured branch)')
  .option('--live', 'also read the targets (a dry run: no writes)')
  .option('--all', 'consider every resource, not only what changed (with --live: a drift check)')
  .option('--worktree', 'plan the working tree, uncommitted files too, against HEAD (or --from)')
  .action(action(async (flags) => (await import('./plan.js')).planCommand(flags, stdout(), env)));

common(program.command('apply'))
  .description('one convergence pass toward the newest valid commit, then exit')
  .option('--once', 'run one pass and exit (required)')
  .option('--all', 'read every resource (drift sweep), not only what changed')
  .option('-v, --verbose', 'log debug detail on stderr')
  .action(action(async (flags) => (await import('./apply.js')).applyCommand(flags, stdout(), env)));

common(program.command('daemon'))
  .description('the long-running loop: poll, converge each commit, sweep for drift')
  .action(action(async (flags: CommonFlags) => (await import('./daemon.js')).daemonCommand(flags, env)));

common(program.command('status'))
  .description('source, counts and resources needing attention; read-only, answers while the daemon runs')
  .argument('[filter]', 'a target name, or Kind/name')
  .option('--all', 'list every resource, converged ones too')
  .action(action(async (filter: string | undefined, flags) => (await import('./status.js')).statusCommand(filter, flags, stdout(), env)));

common(program.command('history'))
  .description('the audit log: every change, drift, deletion and rejected commit')
  .argument('[resource]', 'Kind/name')
  .option('--limit <n>', 'how many events (default 50)')
  .action(action(async (id: string | undefined, flags) => (await import('./history.js')).historyCommand(id, flags, stdout(), env)));

common(program.command('tombstones'))
  .description('deletions waiting for removal to be confirmed')
  .option('--all', 'include settled ones (done, retained, cancelled)')
  .action(action(async (flags) => (await import('./tombstones.js')).tombstonesCommand(flags, stdout(), env)));

common(program.command('sync'))
  .description('fetch and converge the newest commit now (through the running daemon); selections are re-read too; --all re-reads everything')
  .argument('[selectors...]', 'target names or Kind/name to re-read as well')
  .option('--all', 're-read every resource (a drift sweep), not only what the commit changed')
  .option('--wait', 'wait for the pass and show its progress; exit 1 if anything failed')
  .action(action(async (selectors: string[], flags) => (await import('./control.js')).syncCommand(selectors, flags, stdout(), env)));

common(program.command('pause'))
  .description('stop Plumb from changing or remediating a target or resource (break-glass, e.g. during an incident)')
  .argument('<selector>', 'a target name, or Kind/name')
  .option('--reason <text>', 'why (shown in plumb status and the audit log; required)')
  .option('--for <duration>', 'resume automatically after this long, e.g. 2h')
  .action(action(async (selector: string, flags) => (await import('./control.js')).pauseCommand(selector, flags, stdout(), env)));

common(program.command('resume'))
  .description('undo plumb pause; the selection is synced right away')
  .argument('<selector>', 'a target name, or Kind/name')
  .action(action(async (selector: string, flags) => (await import('./control.js')).resumeCommand(selector, flags, stdout(), env)));

common(program.command('resolve'))
  .description('settle a write whose outcome is unknown (a command cut off mid-run), on your word; audited')
  .argument('<resource>', 'Kind/name')
  .option('--ran', 'it did run to completion: record it as done (it is not run again for this spec)')
  .option('--not-run', 'it did not run (or you undid it): the next pass may run it again')
  .option('--reason <text>', 'what you checked (shown in plumb history; required)')
  .action(action(async (id: string, flags) => (await import('./control.js')).resolveCommand(id, flags, stdout(), env)));

common(program.command('reload'))
  .description('re-read the config file in the running daemon (same as SIGHUP)')
  .action(action(async (flags: CommonFlags) => (await import('./control.js')).reloadCommand(flags, stdout(), env)));

common(program.command('backup'))
  .description('an online, consistent copy of the state database (the daemon keeps running)')
  .argument('<file>', 'where to write the copy (must not exist)')
  .action(action(async (file: string, flags: CommonFlags) => (await import('./backup.js')).backupCommand(file, flags, stdout(), env)));

program
  .command('explain')
  .description('the fields of a kind, from its schema; without KIND, the list of kinds')
  .argument('[kind]', 'e.g. ssh.File')
  .option('--all', 'the whole kind reference as Markdown (docs/reference/kinds.md)')
  .action(action(async (kind: string | undefined, flags: { all?: boolean }) => (await import('./explain.js')).explainCommand(kind, flags, stdout())));

await program.parseAsync(process.argv);
