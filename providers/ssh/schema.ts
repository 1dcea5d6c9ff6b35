/** The ssh provider's Target schema and kinds, without its transport (no ssh2): what parsing and `plumb validate` load. */
import type { ProviderSchema } from '../../src/provider.js';
import { commandKind } from './kinds/command.js';
import { directoryKind } from './kinds/directory.js';
import { fileKind } from './kinds/file.js';
import { groupKind } from './kinds/group.js';
import { lineKind } from './kinds/line.js';
import { packageKind } from './kinds/package.js';
import { serviceKind } from './kinds/service.js';
import { userKind } from './kinds/user.js';
import type { SshSession } from './session.js';

/** sshProvider is built on it: one list of kinds. */
export const sshSchema: ProviderSchema<SshSession> = {
  name: 'ssh',
  targetSchema: 'ssh.target.schema.json',
  kinds: [fileKind, directoryKind, commandKind, lineKind, packageKind, userKind, groupKind, serviceKind],
};
