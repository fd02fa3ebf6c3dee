import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { SETTINGS_ENV } from './environment.ts';

const RadiusClientSetting = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    address: Type.String({ minLength: 1 }),
    secret: Type.String({ minLength: 1 }),
    realm: Type.Optional(Type.String()),
    require_message_authenticator: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

/** The process settings: config file (JSON) overlaid by `OTPD_*` environment variables. */
export const SettingsSchema = Type.Object(
  {
    /** @default 127.0.0.1 */
    host: Type.String({ minLength: 1, default: '127.0.0.1' }),
    /** @default 5001 */
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 5001 }),
    /** SQLite file and key file live here. @default ./data */
    dataDir: Type.String({ minLength: 1, default: './data' }),
    /** `sqlite:…`, `postgres://…`, `mysql://…`. @default sqlite:<dataDir>/otpd.sqlite */
    databaseUrl: Type.Optional(Type.String({ pattern: '^(sqlite:|postgres(ql)?://|mysql://|mariadb://)' })),
    /** @default <dataDir>/otpd.key */
    keyFile: Type.Optional(Type.String({ minLength: 1 })),
    adminUser: Type.Optional(Type.String({ minLength: 1, pattern: '^[A-Za-z0-9_.@-]+$' })),
    adminPassword: Type.Optional(Type.String({ minLength: 8 })),
    /** @default info */
    logLevel: Type.Union(
      [Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'), Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')],
      { default: 'info' },
    ),
    /** `json`, `pretty` (human-readable), or `auto`: pretty when the log goes to a terminal. @default auto */
    logFormat: Type.Union([Type.Literal('json'), Type.Literal('pretty'), Type.Literal('auto')], { default: 'auto' }),
    /**
     * `serve` appends its log to this file (created mode 0640) instead of stdout, and reopens it
     * on SIGHUP (logrotate). CLI commands keep logging to stderr. @default none (stdout)
     */
    logFile: Type.Optional(Type.String({ minLength: 1 })),
    /**
     * PEM certificate (chain) and private key files: with both, HTTP is served over TLS (HTTPS)
     * on `port`; re-read on SIGHUP. One without the other is refused. @default none (plain HTTP)
     */
    tlsCert: Type.Optional(Type.String({ minLength: 1 })),
    tlsKey: Type.Optional(Type.String({ minLength: 1 })),
    /** Name of this node in audit rows. @default hostname */
    nodeName: Type.Optional(Type.String({ minLength: 1 })),
    /** Proxies whose X-Forwarded-For is honoured (comma list of IPs). @default none */
    trustedProxies: Type.Optional(Type.String()),
    /**
     * On SIGTERM/SIGINT `serve` stops accepting and lets requests and deliveries in flight
     * finish for at most this long, then exits (1 when the time ran out). @default 10
     */
    shutdownSeconds: Type.Integer({ minimum: 1, maximum: 3600, default: 10 }),
    /**
     * Demo mode on a first start with nothing configured (docs/demo.md); false never starts it
     * and removes what an earlier demo created. @default true
     */
    demo: Type.Boolean({ default: true }),
    /**
     * HTTP requests served at once; more wait in a queue (oldest first) up to `maxQueueMs`, and
     * one that waited that long, or would at the rate slots free up, is answered 503 with
     * `Retry-After` (ERR2009) instead of joining a queue that only grows. /healthz is never
     * held. @default 64
     */
    maxInFlight: Type.Integer({ minimum: 1, maximum: 100_000, default: 64 }),
    /** Longest an HTTP request waits for a free slot before it is shed (ms). @default 1000 */
    maxQueueMs: Type.Integer({ minimum: 0, maximum: 60_000, default: 1000 }),
    /**
     * PostgreSQL and MariaDB: a query without an answer after this long fails as an outage
     * (ERR2008) and its connection is closed (a vanished database host, a commit waiting for an
     * unreachable synchronous standby); migrations run without it. 0 = no limit (ms). @default 3000
     */
    dbQueryTimeoutMs: Type.Integer({ minimum: 0, maximum: 600_000, default: 3000 }),
    /** Seconds an admin session lasts. @default 1800 */
    sessionSeconds: Type.Integer({ minimum: 60, maximum: 86400, default: 1800 }),
    /**
     * A declarative configuration file (docs/config-as-code.md) that `serve` applies before it
     * listens; an invalid file stops the start with the reason. @default none
     */
    applyFile: Type.Optional(Type.String({ minLength: 1 })),
    /** Also remove what the file's sections do not name (`otpd config apply --prune`). @default false */
    applyPrune: Type.Boolean({ default: false }),
    radius: Type.Object(
      {
        /** UDP port; unset = RADIUS off. */
        port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
        /** @default 127.0.0.1 */
        host: Type.String({ minLength: 1, default: '127.0.0.1' }),
        clients: Type.Array(RadiusClientSetting, { default: [] }),
        /**
         * Access-Requests handled at once; a packet beyond it is dropped unanswered (counted as
         * `overload`), so the NAS retries or fails over instead of waiting in a growing queue. @default 64
         */
        maxInFlight: Type.Integer({ minimum: 1, maximum: 100_000, default: 64 }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

export type Settings = Static<typeof SettingsSchema> & {
  databaseUrl: string;
  keyFile: string;
  configFile?: string;
  /** The database URL was set (file or OTPD_DATABASE_URL), not derived from the data directory: no demo mode. @default false */
  databaseUrlConfigured?: boolean;
};

const ENV: Record<string, string> = Object.fromEntries(SETTINGS_ENV.filter((e) => e.key !== '').map((e) => [e.name, e.key]));

/** Where the error names the key: `OTPD_PORT (port): must be <= 65535`. */
export class SettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingsError';
  }
}

/**
 * Loads settings from `OTPD_CONFIG` (or `./otpd.json` when present) and the
 * environment, validates them with the schema and fails with the key's name.
 */
export function loadSettings(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Settings {
  const configFile = env.OTPD_CONFIG ?? (existsSync(join(cwd, 'otpd.json')) ? join(cwd, 'otpd.json') : undefined);
  let raw: Record<string, unknown> = {};
  if (configFile) {
    let text: string;
    try {
      text = readFileSync(resolve(cwd, configFile), 'utf8');
    } catch (e) {
      throw new SettingsError(`config file ${configFile}: ${(e as Error).message}`);
    }
    try {
      raw = JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      throw new SettingsError(`config file ${configFile}: invalid JSON: ${(e as Error).message}`);
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SettingsError(`config file ${configFile}: must hold a JSON object`);
  }
  const origin = new Map<string, string>();
  for (const [name, path] of Object.entries(ENV)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    const parts = path.split('.');
    let target = raw as Record<string, unknown>;
    for (const p of parts.slice(0, -1)) {
      if (typeof target[p] !== 'object' || target[p] === null) target[p] = {};
      target = target[p] as Record<string, unknown>;
    }
    target[parts[parts.length - 1]] = value;
    origin.set('/' + parts.join('/'), name);
  }
  const withDefaults = Value.Default(SettingsSchema, Value.Convert(SettingsSchema, raw)) as Record<string, unknown>;
  const errors = [...Value.Errors(SettingsSchema, withDefaults)].filter((e) => e.keyword !== 'boolean');
  if (errors.length > 0) {
    const lines = errors.map((e) => {
      const path = e.instancePath || '/';
      const key = path.slice(1).replaceAll('/', '.') || '(root)';
      const envName = origin.get(path);
      const extra = e.keyword === 'additionalProperties' ? `: unknown key(s) ${JSON.stringify((e.params as { additionalProperties?: string[] }).additionalProperties)}` : '';
      return `${envName ? `${envName} (${key})` : key}: ${e.message}${extra}`;
    });
    throw new SettingsError(`invalid settings:\n  ${lines.join('\n  ')}`);
  }
  const s = withDefaults as Settings;
  s.dataDir = resolve(cwd, s.dataDir);
  s.databaseUrlConfigured = s.databaseUrl !== undefined;
  s.databaseUrl ??= `sqlite:${join(s.dataDir, 'otpd.sqlite')}`;
  s.keyFile = resolve(cwd, s.keyFile ?? join(s.dataDir, 'otpd.key'));
  if (s.logFile !== undefined) s.logFile = resolve(cwd, s.logFile);
  if ((s.tlsCert === undefined) !== (s.tlsKey === undefined)) {
    throw new SettingsError(`invalid settings:\n  OTPD_TLS_CERT (tlsCert) and OTPD_TLS_KEY (tlsKey) must be set together: ${s.tlsCert === undefined ? 'a key without a certificate' : 'a certificate without its key'} would serve plain HTTP`);
  }
  if (s.tlsCert !== undefined) s.tlsCert = resolve(cwd, s.tlsCert);
  if (s.tlsKey !== undefined) s.tlsKey = resolve(cwd, s.tlsKey);
  s.configFile = configFile;
  if (s.applyFile !== undefined) s.applyFile = resolve(cwd, s.applyFile);
  if ((s.adminUser === undefined) !== (s.adminPassword === undefined)) {
    throw new SettingsError('invalid settings:\n  OTPD_ADMIN_USER and OTPD_ADMIN_PASSWORD must be set together');
  }
  return s;
}
