import type { Services } from '../services.ts';
import type { CheckOutcome } from '../validation/service.ts';
import { syncConfiguredClients } from './clients.ts';
import { RadiusServer, type RadiusAuthRequest, type RadiusAuthResult } from './server.ts';

/** Maps a validation outcome to a RADIUS answer. */
export function toRadiusResult(out: CheckOutcome): RadiusAuthResult {
  if (out.ok) return { kind: 'accept' };
  const c = out.challenges[0];
  if (c) return { kind: 'challenge', transactionId: c.transactionId, message: c.message, expiresAt: c.expiresAt };
  return { kind: 'reject' };
}

/**
 * Starts the RADIUS listener when `radius.port` is set: the same validation service as
 * HTTP (policies, fail counters, limits, audit), config-file clients applied first.
 * Returns its stop function, or undefined when RADIUS is off.
 */
export async function startRadius(services: Services): Promise<(() => Promise<void>) | undefined> {
  const { settings, logger } = services;
  if (settings.radius.port === undefined) return undefined;
  await syncConfiguredClients(settings.radius.clients, { db: services.db, keyring: services.keyring, logger, clock: services.clock });
  const authenticate = async (r: RadiusAuthRequest): Promise<RadiusAuthResult> => {
    const out = await services.validation.check({
      user: r.user, realm: r.realm || undefined, pass: r.password, transactionId: r.transactionId, client: r.client, entry: 'radius',
    });
    await services.audit.write({
      action: 'radius/access-request', success: out.ok, user: out.audit.user, realm: out.audit.realm, serial: out.audit.serial,
      tokenType: out.audit.tokenType, actionDetail: out.audit.actionDetail, info: out.audit.info ?? `nas ${r.clientName}`, client: r.client,
    }).catch((e: unknown) => logger.error({ err: (e as Error).message }, 'audit row not written'));
    return toRadiusResult(out);
  };
  const server = new RadiusServer({ db: services.db, keyring: services.keyring, logger, clock: services.clock, authenticate, watcher: services.watcher });
  const { port } = await server.listen({ host: settings.radius.host, port: settings.radius.port });
  logger.info({ host: settings.radius.host, port }, 'RADIUS listening');
  return () => server.close();
}
