import type { Settings } from '../config/settings.ts';
import type { Db } from '../store/db.ts';
import { hostAddress, classifyAddress } from '../util/net.ts';

/**
 * Demo mode (docs/demo.md): what the demo consists of, and whether this start is one.
 *
 * The demo is on when all of these hold:
 * - `OTPD_DEMO` is not `0` (setting `demo`, default true);
 * - no database URL is configured (`OTPD_DATABASE_URL` / `databaseUrl`): only the embedded
 *   default SQLite under the data directory;
 * - no user store exists that the demo did not create ("a real user store": any resolver,
 *   of any type, made through the API, the UI or the CLI);
 * - and either the demo was set up by an earlier start (its objects are recorded in
 *   `demo_objects`), or this is a first start with nothing configured: no resolver, realm,
 *   policy, provider, token, RADIUS client or stored config key in the database, and no RADIUS
 *   client in the config file. (Administrators do not count: `otpd admin add` before the first
 *   start still gets the demo.)
 * When it is off and an earlier start had set it up, the demo's objects are removed at this
 * start (demo/setup.ts).
 */
export const DEMO = {
  realm: 'demo',
  resolver: 'demo-users',
  /** SQLite file of the demo users, in the data directory. */
  usersFile: 'demo-users.sqlite',
  usersTable: 'users',
  /** Every demo user's password. */
  password: 'demo',
  users: [
    { id: '1', login: 'alice', givenname: 'Alice', surname: 'Demo', email: 'alice@example.org', mobile: null },
    { id: '2', login: 'bob', givenname: 'Bob', surname: 'Demo', email: null, mobile: '+4915123456789' },
  ],
  policies: [
    { name: 'demo_autoenroll', scope: 'enrollment', action: 'autoenrollment=sms email', realm: 'demo', user: '*', client: '*' },
    { name: 'demo_otppin', scope: 'authentication', action: 'otppin=1', realm: 'demo', user: '*', client: '*' },
  ],
  providers: [
    { type: 'sms', name: 'demo-sms', className: 'otpd.demo.CaptureSMS' },
    { type: 'email', name: 'demo-mail', className: 'otpd.demo.CaptureEmail' },
  ],
  /** The demo's RADIUS client; its secret is published in the docs, so it never outlives the demo. */
  radiusClient: { name: 'demo', address: '127.0.0.1', secret: 'demo-radius-secret' },
  /** RADIUS port in demo mode when `OTPD_RADIUS_PORT` is not set. */
  radiusPort: 1812,
} as const;

/** Kinds of `demo_objects` rows. */
export type DemoObjectKind = 'resolver' | 'realm' | 'policy' | 'provider' | 'radius_client' | 'file';

export type DemoDecision =
  | { on: true; firstStart: boolean }
  /** `installed`: an earlier start set the demo up, so its objects are to be removed now. */
  | { on: false; reason: string; installed: boolean };

/** Host names that are loopback: `localhost` and loopback literals (127.0.0.0/8, ::1). */
export function isLoopbackHost(host: string): boolean {
  if (host.trim().toLowerCase() === 'localhost') return true;
  const ip = hostAddress(host.trim());
  return ip !== undefined && classifyAddress(ip).class === 'loopback';
}

/** Tables whose rows mean "something is configured" on a first start. */
const CONFIGURED_TABLES = ['resolvers', 'realms', 'policies', 'delivery_providers', 'tokens', 'radius_clients', 'config'] as const;

/** Whether this start runs the demo (see the rules above); reads the database, changes nothing. */
export async function decideDemo(settings: Settings, db: Db): Promise<DemoDecision> {
  const recorded = await db.kysely.selectFrom('demo_objects').select(['kind', 'name']).execute();
  const installed = recorded.length > 0;
  if (!settings.demo) return { on: false, reason: 'OTPD_DEMO=0', installed };
  if (settings.databaseUrlConfigured) return { on: false, reason: 'a database URL is configured (OTPD_DATABASE_URL)', installed };
  if (settings.applyFile) return { on: false, reason: 'a configuration file is applied at start (OTPD_APPLY_FILE)', installed };
  const demoResolvers = new Set(recorded.filter((r) => r.kind === 'resolver').map((r) => r.name));
  const stores = (await db.kysely.selectFrom('resolvers').select('name').orderBy('name').execute()).map((r) => r.name).filter((n) => !demoResolvers.has(n));
  if (stores.length > 0) return { on: false, reason: `a user store is configured (${stores.join(', ')})`, installed };
  if (installed) return { on: true, firstStart: false };
  if (settings.radius.clients.length > 0) return { on: false, reason: 'RADIUS clients are configured in the config file', installed };
  for (const table of CONFIGURED_TABLES) {
    const row = await db.kysely.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    if (Number(row.n) > 0) return { on: false, reason: `the database holds configuration already (${table})`, installed };
  }
  return { on: true, firstStart: true };
}

/**
 * Why the demo refuses these settings, or undefined: it listens on loopback only (HTTP and
 * RADIUS), since its users' password and its RADIUS secret are public.
 */
export function demoHostProblem(settings: Settings): string | undefined {
  const wrong = [
    !isLoopbackHost(settings.host) ? `OTPD_HOST=${settings.host}` : undefined,
    !isLoopbackHost(settings.radius.host) ? `OTPD_RADIUS_HOST=${settings.radius.host}` : undefined,
  ].filter(Boolean);
  if (wrong.length === 0) return undefined;
  return `demo mode listens on loopback only (its users' password and RADIUS secret are public), so ${wrong.join(' and ')} is refused: `
    + 'use 127.0.0.1, or set OTPD_DEMO=0, or configure a user store first (docs/demo.md)';
}
