import type { Services } from '../services.ts';
import { cachedReadiness } from '../store/readiness.ts';
import { answer } from '../validation/answer.ts';
import type { CheckOutcome } from '../validation/outcome.ts';
import type { AnswerHold } from '../validation/service.ts';
import { syncConfiguredClients } from './clients.ts';
import { RadiusServer, type RadiusAuthRequest, type RadiusAuthResult } from './server.ts';

/**
 * Reply attributes for an Accept, from config `RadiusReplyAttributes`: a JSON object of
 * RADIUS attribute name → template with `${field}` taken from the user's store attributes,
 * e.g. `{"Class": "staff", "Filter-Id": "vpn-${department}"}`. An attribute whose template
 * names a missing field is left out.
 */
export function replyAttributes(template: string | undefined, info: Record<string, string | undefined> | undefined): Record<string, string> | undefined {
  if (!template) return undefined;
  let map: unknown;
  try {
    map = JSON.parse(template);
  } catch {
    return undefined;
  }
  if (!map || typeof map !== 'object' || Array.isArray(map)) return undefined;
  const out: Record<string, string> = {};
  for (const [attr, value] of Object.entries(map as Record<string, unknown>)) {
    if (typeof value !== 'string') continue;
    let missing = false;
    const rendered = value.replace(/\$\{([A-Za-z0-9_]+)\}/g, (_, field: string) => {
      const v = info?.[field];
      if (v === undefined || v === '') missing = true;
      return v ?? '';
    });
    if (!missing) out[attr] = rendered;
  }
  return Object.keys(out).length ? out : undefined;
}

/**
 * Maps a validation outcome to a RADIUS answer: Access-Accept (with reply attributes),
 * Access-Challenge for the first challenge, Access-Reject; a user store outage gets no
 * answer at all (the NAS retries or fails over, never an Accept).
 */
export function toRadiusResult(out: CheckOutcome, attributesTemplate?: string): RadiusAuthResult {
  const a = answer(out);
  if (a.kind === 'unavailable') throw new Error('user store unavailable');
  if (a.kind === 'accept') return { kind: 'accept', attributes: replyAttributes(attributesTemplate, out.user?.info) };
  if (a.kind === 'challenge') {
    const c = a.challenges[0];
    return { kind: 'challenge', transactionId: c.transactionId, message: c.message, expiresAt: c.expiresAt };
  }
  return { kind: 'reject' };
}

/** How startServer runs the listener in demo mode (docs/demo.md). */
export interface StartRadiusOptions {
  /** The port when `radius.port` is unset (demo mode: 1812). @default undefined (RADIUS off) */
  defaultPort?: number;
  /**
   * A port that cannot be bound (in use, not permitted) is logged as a warning and otpd runs
   * without RADIUS instead of refusing to start; only for the demo's default port. @default false
   */
  optional?: boolean;
}

/**
 * Starts the RADIUS listener when `radius.port` is set (or a default port is given): the same
 * validation service as HTTP (policies, fail counters, limits, audit), config-file clients
 * applied first. Returns its stop function, or undefined when RADIUS is off.
 */
export async function startRadius(services: Services, opts: StartRadiusOptions = {}): Promise<(() => Promise<void>) | undefined> {
  const { settings, logger } = services;
  const port = settings.radius.port ?? opts.defaultPort;
  if (port === undefined) return undefined;
  await syncConfiguredClients(settings.radius.clients, { db: services.db, keyring: services.keyring, logger, clock: services.clock });
  // one unit of work per request: answered only when its writes, the audit row included, are
  // durable, and a failure no sooner than its floor (held here, so its audit row commits with
  // the failure's writes)
  const authenticate = async (r: RadiusAuthRequest): Promise<RadiusAuthResult> => {
    const holds: Promise<void>[] = [];
    try {
      return await authenticateWork(r, (until) => void holds.push(until));
    } finally {
      await Promise.all(holds);
    }
  };
  const authenticateWork = (r: RadiusAuthRequest, hold: AnswerHold): Promise<RadiusAuthResult> => services.db.unitOfWork(async () => {
    // An empty answer to a challenge asks for the code again (within the blocking rules).
    const out = r.transactionId !== undefined && r.password === ''
      ? await services.validation.resend({ user: r.user, realm: r.realm || undefined, transactionId: r.transactionId, client: r.client })
      : await services.validation.check({ user: r.user, realm: r.realm || undefined, pass: r.password, transactionId: r.transactionId, client: r.client, entry: 'radius' }, hold);
    await services.audit.write({
      action: 'radius/access-request', success: out.ok, user: out.audit.user, realm: out.audit.realm, serial: out.audit.serial,
      tokenType: out.audit.tokenType, actionDetail: out.audit.actionDetail, info: out.audit.info ?? `nas ${r.clientName}`, reason: out.reason, client: r.client,
    }).catch((e: unknown) => logger.error({ err: e }, 'audit row not written'));
    return toRadiusResult(out, services.config.string('RadiusReplyAttributes') || undefined);
  });
  const ready = cachedReadiness(services.db);
  const server = new RadiusServer({
    db: services.db, keyring: services.keyring, logger, clock: services.clock, authenticate, watcher: services.watcher, maxInFlight: settings.radius.maxInFlight,
    maxQueueMs: settings.maxQueueMs, receiveBufferBytes: settings.radius.maxInFlight * 1024,
    ready: async () => (await ready()) === 'ready',
  });
  try {
    await server.listen({ host: settings.radius.host, port });
  } catch (e) {
    await server.close();
    if (!opts.optional) throw e;
    logger.warn({ host: settings.radius.host, port, err: e }, `RADIUS not started: ${settings.radius.host}:${port} cannot be bound (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); set OTPD_RADIUS_PORT to a free port`);
    return undefined;
  }
  services.radiusStats = () => server.stats();
  return async () => {
    services.radiusStats = undefined;
    await server.close();
  };
}
