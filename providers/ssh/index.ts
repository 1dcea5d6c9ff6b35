/** The ssh provider: Linux hosts and VMs over one persistent SSH connection per target. */
import type { Provider } from '../../src/provider.js';
import { sshSchema } from './schema.js';
import { SshSession } from './session.js';

export { SshSession } from './session.js';
export type { SshTargetSpec } from './session.js';
export type { FileSpec, FileActual } from './kinds/file.js';
export type { DirectorySpec, DirectoryActual } from './kinds/directory.js';
export type { CommandSpec, CommandActual } from './kinds/command.js';
export type { LineSpec, LineActual } from './kinds/line.js';
export type { PackageSpec, PackageActual } from './kinds/package.js';
export type { UserSpec, UserActual } from './kinds/user.js';
export type { GroupSpec, GroupActual } from './kinds/group.js';
export type { ServiceSpec, ServiceActual } from './kinds/service.js';

export const sshProvider: Provider<SshSession> = {
  ...sshSchema,
  // One connection multiplexes: SFTP requests pipeline on one channel, and the session
  // holds exec channels to EXEC_CHANNELS, under OpenSSH's default MaxSessions of 10.
  perTarget: 8,
  open: (target, ctx) => SshSession.open(target, ctx),
};
