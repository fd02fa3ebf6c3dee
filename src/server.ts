import type { FastifyInstance } from 'fastify';
import { buildApp } from './api/app.ts';
import { ADMIN_POLICY_WARNING } from './api/admin.ts';
import type { Settings } from './config/settings.ts';
import { createServices, type Services } from './services.ts';
import { startRadius } from './radius/wire.ts';
import { validateStoredConfig } from './config/validate-stored.ts';
import { validateStoredPolicies } from './policy/service.ts';
import { applyAtStart } from './declared/apply.ts';
import { DEMO, demoHostProblem } from './demo/mode.ts';
import { installDemo, removeDemo } from './demo/setup.ts';
import { reopenLogFile } from './util/logger.ts';
import { readFileSync } from 'node:fs';
import { createSecureContext, type Server as TlsServer } from 'node:tls';

export interface Running {
  services: Services;
  app: FastifyInstance;
  url: string;
  /** What SIGHUP does: reopens the log file (logrotate) and re-reads the TLS certificate and key. */
  reload(): void;
  /**
   * Graceful stop: the HTTP and RADIUS listeners stop accepting, HTTP requests in flight get
   * their answers (including those waiting for a provider's acceptance), the dispatcher
   * finishes the sends in flight, then the database closes. Bounding it is the caller's
   * (`serve`: OTPD_SHUTDOWN_SECONDS).
   */
  stop(): Promise<void>;
}

/**
 * Starts otpd: key file and database (created and migrated on first start),
 * the declarative config file of OTPD_APPLY_FILE (before listening), the admin from OTPD_ADMIN_USER/OTPD_ADMIN_PASSWORD, the HTTP API, and the
 * optional RADIUS listener.
 */
export async function startServer(settings: Settings): Promise<Running> {
  const services = await createServices({ settings, demo: true });
  const demo = services.demoDecision;
  let https: TlsFiles | undefined;
  try {
    https = settings.tlsCert && settings.tlsKey ? readTlsFiles(settings.tlsCert, settings.tlsKey) : undefined;
    validateStoredConfig(services.config);
    validateStoredPolicies(services.policies);
    const problem = demo?.on ? demoHostProblem(settings) : undefined;
    if (problem) throw new Error(problem);
    if (settings.applyFile) await applyAtStart(settings.applyFile, services, { prune: settings.applyPrune, logger: services.logger });
  } catch (e) {
    await services.close();
    throw e;
  }
  const log = services.logger;
  if (services.keyCreated) log.info({ keyFile: settings.keyFile }, 'generated a new key file (mode 0600); back it up: without it token seeds cannot be decrypted');
  log.info({ database: services.db.safeUrl }, 'database ready');
  if (demo?.on) {
    const created = await installDemo(services);
    if (created.length > 0) log.info({ created }, 'demo mode: demo objects created');
  } else if (demo?.installed) {
    const { removed, kept } = await removeDemo(services, demo);
    log.warn({ removed, kept }, `demo mode is off (${demo.reason}): removed what the demo had created${kept.length ? '; kept what an administrator changed' : ''} (docs/demo.md)`);
  } else if (demo && settings.demo) {
    log.debug({ reason: demo.reason }, 'demo mode off');
  }
  // several nodes may start at once with the same OTPD_ADMIN_USER: the first insert wins, the others keep it
  if (settings.adminUser && settings.adminPassword && (await services.admins.addIfMissing(settings.adminUser, settings.adminPassword))) {
    log.info({ admin: settings.adminUser }, 'created admin from OTPD_ADMIN_USER');
  }
  if ((await services.admins.count()) === 0) {
    log.warn('no administrator exists yet: create one with `npx otpd admin add NAME` (or set OTPD_ADMIN_USER and OTPD_ADMIN_PASSWORD)');
  }
  if (!services.policies.anyPolicy('admin')) log.warn(ADMIN_POLICY_WARNING);
  const app = await buildApp(services, { https });
  const address = await app.listen({ host: settings.host, port: settings.port });
  log.info({ address }, 'otpd listening');
  const hookStops: (() => Promise<void>)[] = [];
  for (const start of startHooks) hookStops.push(await start(services));
  // demo mode: RADIUS on loopback even when OTPD_RADIUS_PORT is unset (1812, or nothing if it is taken)
  const stopRadius = await startRadius(services, demo?.on && settings.radius.port === undefined ? { defaultPort: DEMO.radiusPort, optional: true } : {});
  if (demo?.on) logDemoBanner(services, address, stopRadius ? settings.radius.port ?? DEMO.radiusPort : undefined);
  return {
    services,
    app,
    url: address,
    reload: () => {
      const reopened = reopenLogFile(log);
      log.info({ logFile: reopened ? settings.logFile : undefined }, reopened ? 'SIGHUP: log file reopened' : 'SIGHUP: no log file to reopen');
      if (!https || !settings.tlsCert || !settings.tlsKey) return;
      try {
        const next = readTlsFiles(settings.tlsCert, settings.tlsKey);
        (app.server as unknown as TlsServer).setSecureContext(next);
        https = next;
        log.info({ cert: settings.tlsCert }, 'SIGHUP: TLS certificate and key reloaded (new connections use them)');
      } catch (e) {
        log.error(`SIGHUP: TLS certificate not reloaded, the previous one stays in use: ${(e as Error).message}`);
      }
    },
    stop: async () => {
      // New work stops first (RADIUS packets, HTTP connections; Fastify answers 503 on a
      // kept-alive connection meanwhile), then what is in flight finishes: HTTP requests
      // before the dispatcher, since a request may be waiting for a dispatch.
      await stopRadius?.();
      // A kept-alive connection whose request finishes during the close becomes idle only then:
      // close those as they appear, or the listener waits for the clients to hang up.
      const sweep = setInterval(() => app.server.closeIdleConnections(), 50);
      try {
        await app.close();
      } finally {
        clearInterval(sweep);
      }
      for (const s of hookStops.reverse()) await s();
      await services.close();
    },
  };
}

/**
 * The start-up banner of demo mode, at warn level so it shows at any usual log level. It names
 * the users and where their codes are, never the demo password or RADIUS secret (those are in
 * docs/demo.md and the README).
 */
function logDemoBanner(services: Services, address: string, radiusPort: number | undefined): void {
  const radius = radiusPort === undefined ? 'RADIUS off' : `RADIUS on ${services.settings.radius.host}:${radiusPort} with the demo client for ${DEMO.radiusClient.address}`;
  services.logger.warn(
    { demo: true, messages: `${address}/demo/messages`, radiusPort: radiusPort ?? null },
    `DEMO MODE, not for production: realm ${DEMO.realm} with users alice (e-mail) and bob (SMS) and the demo password; `
    + `codes are not sent but kept at ${address}/demo/messages; ${radius}; loopback only. `
    + 'It ends when you configure a user store (then restart) or set OTPD_DEMO=0: see docs/demo.md',
  );
}

interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/**
 * Reads the PEM certificate and key and checks that they make a TLS context (parseable, key
 * matching the certificate), so a bad pair stops start-up, or a reload, with the file named.
 */
export function readTlsFiles(certPath: string, keyPath: string): TlsFiles {
  const read = (path: string, setting: string) => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new Error(`${setting} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  const files = { cert: read(certPath, 'TLS certificate (OTPD_TLS_CERT)'), key: read(keyPath, 'TLS key (OTPD_TLS_KEY)') };
  try {
    createSecureContext(files);
  } catch (e) {
    throw new Error(`TLS certificate ${certPath} and key ${keyPath} (OTPD_TLS_CERT, OTPD_TLS_KEY) do not make a TLS context: ${(e as Error).message}`);
  }
  return files;
}

/** Components started with the server (RADIUS listener, delivery dispatcher); each returns its stop. */
export const startHooks: ((services: Services) => Promise<() => Promise<void>>)[] = [];

startHooks.push(async (services) => {
  services.delivery.start();
  return () => services.delivery.stop();
});
