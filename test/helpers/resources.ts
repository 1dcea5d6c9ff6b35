import type { Attachment, Resource, ResourceMeta } from '../../src/provider.js';

/** A Resource as the loader would hand it to a provider, with metadata defaults applied. */
export function makeResource<Spec>(
  kind: string,
  name: string,
  spec: Spec,
  options: { target?: string; meta?: Partial<ResourceMeta>; attachments?: Record<string, Attachment>; memo?: Resource['memo'] } = {},
): Resource<Spec> {
  return {
    id: `${kind}/${name}`,
    kind,
    name,
    spec,
    attachments: options.attachments ?? {},
    ...(options.memo !== undefined ? { memo: options.memo } : {}),
    meta: {
      name,
      target: options.target ?? 'test-target',
      dependsOn: [],
      deletionPolicy: 'Delete',
      previousNames: [],
      ignore: [],
      drift: 'remediate',
      ...options.meta,
    },
  };
}
