/**
 * The `OTPD_*` environment variables of the process settings (src/config/settings.ts): which
 * settings key each one sets, and a line of help for `otpd --help`. Kept apart from the
 * settings schema so `--help` lists them without loading the schema library.
 */
export const SETTINGS_ENV: readonly { name: string; key: string; help: string }[] = [
  { name: 'OTPD_CONFIG', key: '', help: 'JSON settings file (default ./otpd.json when present)' },
  { name: 'OTPD_HOST', key: 'host', help: 'HTTP listen address (default 127.0.0.1)' },
  { name: 'OTPD_PORT', key: 'port', help: 'HTTP port (default 5001)' },
  { name: 'OTPD_DATA_DIR', key: 'dataDir', help: 'SQLite file and key file (default ./data)' },
  { name: 'OTPD_DATABASE_URL', key: 'databaseUrl', help: 'sqlite:PATH, postgres://…, mysql://…' },
  { name: 'OTPD_KEY_FILE', key: 'keyFile', help: 'key file (default DATA_DIR/otpd.key)' },
  { name: 'OTPD_ADMIN_USER', key: 'adminUser', help: 'create this admin at start (with OTPD_ADMIN_PASSWORD)' },
  { name: 'OTPD_ADMIN_PASSWORD', key: 'adminPassword', help: "that admin's password" },
  { name: 'OTPD_LOG_LEVEL', key: 'logLevel', help: 'fatal, error, warn, info (default), debug, trace, silent' },
  { name: 'OTPD_LOG_FORMAT', key: 'logFormat', help: 'json, pretty, auto (default: pretty on a terminal)' },
  { name: 'OTPD_LOG_FILE', key: 'logFile', help: 'serve logs to this file (mode 0640), reopened on SIGHUP' },
  { name: 'OTPD_TLS_CERT', key: 'tlsCert', help: 'PEM certificate file: serve HTTPS (with OTPD_TLS_KEY)' },
  { name: 'OTPD_TLS_KEY', key: 'tlsKey', help: 'PEM private key file of that certificate' },
  { name: 'OTPD_NODE_NAME', key: 'nodeName', help: 'node name in audit rows (default host name)' },
  { name: 'OTPD_TRUSTED_PROXIES', key: 'trustedProxies', help: 'proxy IPs whose X-Forwarded-For is honoured' },
  { name: 'OTPD_SESSION_SECONDS', key: 'sessionSeconds', help: 'admin session lifetime (default 1800)' },
  { name: 'OTPD_APPLY_FILE', key: 'applyFile', help: 'declarative configuration file applied before serve listens' },
  { name: 'OTPD_APPLY_PRUNE', key: 'applyPrune', help: 'with it: also remove what the file does not name' },
  { name: 'OTPD_DEMO', key: 'demo', help: 'false (0): never start the demo mode (default true)' },
  { name: 'OTPD_SHUTDOWN_SECONDS', key: 'shutdownSeconds', help: 'on SIGTERM: longest wait for work in flight (default 10)' },
  { name: 'OTPD_MAX_IN_FLIGHT', key: 'maxInFlight', help: 'HTTP requests served at once; more wait (default 64)' },
  { name: 'OTPD_MAX_QUEUE_MS', key: 'maxQueueMs', help: 'how long a request waits for a slot before 503 + Retry-After (default 1000)' },
  { name: 'OTPD_DB_QUERY_TIMEOUT_MS', key: 'dbQueryTimeoutMs', help: 'PostgreSQL/MariaDB: a query unanswered this long is an outage, its connection closed (default 3000, 0 = none)' },
  { name: 'OTPD_RADIUS_MAX_IN_FLIGHT', key: 'radius.maxInFlight', help: 'Access-Requests handled at once; more are dropped' },
  { name: 'OTPD_RADIUS_PORT', key: 'radius.port', help: 'RADIUS UDP port (unset: RADIUS off)' },
  { name: 'OTPD_RADIUS_HOST', key: 'radius.host', help: 'RADIUS listen address (default 127.0.0.1)' },
];

/** The block `otpd --help` ends with. */
export function environmentHelp(): string {
  const width = Math.max(...SETTINGS_ENV.map((e) => e.name.length));
  return `\nEnvironment (settings; details in docs/configuration.md):\n${SETTINGS_ENV.map((e) => `  ${e.name.padEnd(width)}  ${e.help}`).join('\n')}\n`;
}
