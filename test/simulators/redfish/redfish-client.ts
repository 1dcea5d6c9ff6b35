/** Test helpers: a simulator with short timings, and a small undici client that speaks to one BMC. */
import { setTimeout as delay } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { RedfishSimulator, type RedfishSimulatorOptions, type SimBmc } from '../../../fixtures/simulators/redfish/index.js';

export const USER = 'admin';
export const PASSWORD = 'sim-password';

export type JsonObject = Record<string, unknown>;

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body; undefined when the body is empty. */
  body: JsonObject | undefined;
  text: string;
}

export interface Auth {
  token?: string;
  basic?: { user: string; password: string };
}

export class BmcClient {
  constructor(
    readonly bmc: SimBmc,
    readonly dispatcher: Agent,
    public auth: Auth = {},
  ) {}

  /** Log in with a session; keeps the token for later calls. */
  async login(user = USER, password = PASSWORD): Promise<Answer> {
    const answer = await this.post('/redfish/v1/SessionService/Sessions', { UserName: user, Password: password });
    const token = header(answer, 'x-auth-token');
    if (answer.status === 201 && token !== undefined) this.auth = { token };
    return answer;
  }

  get(path: string, headers: Record<string, string> = {}): Promise<Answer> {
    return this.call('GET', path, undefined, headers);
  }

  patch(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
    return this.call('PATCH', path, body, headers);
  }

  post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
    return this.call('POST', path, body, headers);
  }

  delete(path: string, headers: Record<string, string> = {}): Promise<Answer> {
    return this.call('DELETE', path, undefined, headers);
  }

  /** GET, then PATCH with the ETag just read as If-Match (when the BMC gives one). */
  async patchWithEtag(path: string, body: unknown): Promise<Answer> {
    const etag = header(await this.get(path), 'etag');
    return this.patch(path, body, etag === undefined ? {} : { 'If-Match': etag });
  }

  async call(method: 'GET' | 'PATCH' | 'POST' | 'DELETE' | 'PUT' | 'HEAD', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
    const all: Record<string, string> = { Accept: 'application/json', ...this.authHeaders(), ...headers };
    let payload: string | undefined;
    if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body);
      all['Content-Type'] = 'application/json';
    }
    const res = await request(`${this.bmc.url}${path}`, { method, headers: all, body: payload, dispatcher: this.dispatcher });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, body: text === '' ? undefined : (JSON.parse(text) as JsonObject), text };
  }

  private authHeaders(): Record<string, string> {
    if (this.auth.token !== undefined) return { 'X-Auth-Token': this.auth.token };
    if (this.auth.basic !== undefined) {
      return { Authorization: `Basic ${Buffer.from(`${this.auth.basic.user}:${this.auth.basic.password}`).toString('base64')}` };
    }
    return {};
  }
}

export interface TestSim {
  sim: RedfishSimulator;
  agent: Agent;
  /** A client for the BMC (default the first) without credentials. */
  client(bmc?: SimBmc | string): BmcClient;
  /** A client already logged in as the admin. */
  admin(bmc?: SimBmc | string): Promise<BmcClient>;
  dispose(): Promise<void>;
}

export async function startTestSim(options: Partial<RedfishSimulatorOptions> = {}): Promise<TestSim> {
  const sim = await RedfishSimulator.start({
    bmcs: 1,
    password: PASSWORD,
    resetDelayMs: 100,
    gracefulDelayMs: 150,
    taskDurationMs: 200,
    ...options,
  });
  const agent = new Agent({ connect: { ca: sim.caPem } });
  const pick = (bmc: SimBmc | string | undefined): SimBmc => {
    if (bmc === undefined) return sim.bmcs[0] as SimBmc;
    return typeof bmc === 'string' ? sim.bmc(bmc) : bmc;
  };
  return {
    sim,
    agent,
    client: (bmc) => new BmcClient(pick(bmc), agent),
    admin: async (bmc) => {
      const client = new BmcClient(pick(bmc), agent);
      const answer = await client.login();
      if (answer.status !== 201) throw new Error(`login failed: ${answer.status} ${answer.text}`);
      return client;
    },
    dispose: async () => {
      await agent.destroy();
      await sim.stop();
    },
  };
}

export function header(answer: Answer, name: string): string | undefined {
  const value = answer.headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** MessageIds of an error body's (or success body's) `@Message.ExtendedInfo`. */
export function messageIds(body: JsonObject | undefined): string[] {
  const holder = (body?.error as JsonObject | undefined) ?? body;
  const infos = (holder?.['@Message.ExtendedInfo'] as Array<{ MessageId: string }> | undefined) ?? [];
  return infos.map((i) => i.MessageId);
}

/** Poll until `check` is true; throws after `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 3000, stepMs = 5): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await delay(stepMs);
  }
}

export const paths = {
  sessions: '/redfish/v1/SessionService/Sessions',
  system: (id = '1') => `/redfish/v1/Systems/${id}`,
  reset: (id = '1') => `/redfish/v1/Systems/${id}/Actions/ComputerSystem.Reset`,
  bios: (id = '1') => `/redfish/v1/Systems/${id}/Bios`,
  biosSettings: (id = '1') => `/redfish/v1/Systems/${id}/Bios/Settings`,
  manager: (id = '1') => `/redfish/v1/Managers/${id}`,
  networkProtocol: (id = '1') => `/redfish/v1/Managers/${id}/NetworkProtocol`,
  virtualMedia: (mgr = '1', vm = 'CD') => `/redfish/v1/Managers/${mgr}/VirtualMedia/${vm}`,
  accounts: '/redfish/v1/AccountService/Accounts',
  simpleUpdate: '/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate',
  firmware: (id: string) => `/redfish/v1/UpdateService/FirmwareInventory/${id}`,
};
