import type { KindHandler, Provider, Session } from '../provider.js';

/** Kind -> handler and provider name -> provider. Empty or duplicate names are programming errors. */
export class ProviderRegistry {
  readonly #providers = new Map<string, Provider>();
  readonly #kinds = new Map<string, { provider: Provider; handler: KindHandler<unknown, unknown, Session> }>();

  constructor(providers: Provider[]) {
    for (const provider of providers) {
      if (!provider.name) throw new Error('a provider has an empty name');
      if (this.#providers.has(provider.name)) throw new Error(`provider "${provider.name}" is registered twice`);
      this.#providers.set(provider.name, provider);
      for (const handler of provider.kinds) {
        if (!handler.kind) throw new Error(`provider "${provider.name}" has a kind with an empty name`);
        if (this.#kinds.has(handler.kind)) throw new Error(`kind "${handler.kind}" is registered twice`);
        this.#kinds.set(handler.kind, { provider, handler: handler as KindHandler<unknown, unknown, Session> });
      }
    }
  }

  provider(name: string): Provider | undefined {
    return this.#providers.get(name);
  }

  kind(kind: string): { provider: Provider; handler: KindHandler<unknown, unknown, Session> } | undefined {
    return this.#kinds.get(kind);
  }
}
