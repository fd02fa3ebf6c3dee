import type { Logger } from 'pino';
import type { ConfigService } from '../config/service.ts';
import type { KeyRing } from '../crypto/keyring.ts';
import type { Clock } from '../util/clock.ts';
import { checkEmail, checkPhone, maskDestination, phonePrefix } from '../util/phone.ts';
import type { CounterBucket, SendCounterRepository } from './counter-repository.ts';
import type { DeliveryLog } from './log.ts';
import type { DeliveryAudit } from './outcomes.ts';
import { allowedCallingCodes, defaultCountry, parseLimit } from './settings.ts';
import type { OutgoingMessage } from './types.ts';

/** The answer of the send limits: the normalised destination, or why the message may not go. */
export type LimitVerdict = { ok: true; normalizedTo: string } | { ok: false; reason: string };

const LIMIT_SCOPES = [
  ['user', 'DeliveryLimitPerUser'],
  ['destination', 'DeliveryLimitPerDestination'],
  ['prefix', 'DeliveryLimitPerPrefix'],
  ['country', 'DeliveryLimitPerCountry'],
  ['client', 'DeliveryLimitPerClient'],
  ['global', 'DeliveryLimitGlobal'],
] as const;
type LimitScope = (typeof LIMIT_SCOPES)[number][0];

export interface SendLimitsDeps {
  counters: SendCounterRepository;
  /** Refusals are recorded in the delivery log. */
  log: DeliveryLog;
  /** Keys the destination and prefix buckets (no number in clear in the counters). */
  keyring: KeyRing;
  config: ConfigService;
  logger: Logger;
  clock: Clock;
  /** Refusals are audited when given. @default undefined */
  audit?: DeliveryAudit;
}

/**
 * Fraud/send limits and number normalisation, asked before anything is stored:
 * the number or address must be usable (allowed country, no premium or blocked
 * range), and one send is counted in every bucket that has a limit (user,
 * destination, prefix, country, client, global), all or nothing.
 */
export class SendLimits {
  private readonly refused: Record<string, number> = {};

  constructor(private readonly deps: SendLimitsDeps) {}

  /**
   * Never throws for over-limit: returns the reason (for logs and audit; the
   * caller shows the user the same answer as for any other failure).
   */
  async check(msg: OutgoingMessage): Promise<LimitVerdict> {
    const { config, keyring } = this.deps;
    const now = this.deps.clock.now();
    let normalizedTo: string;
    let callingCode: string | undefined;
    if (msg.channel === 'sms') {
      const pc = checkPhone(msg.to, {
        defaultCountry: defaultCountry(config, msg.realm),
        validation: config.value('DeliveryPhoneValidation'),
        blockedPrefixes: config.list('DeliveryBlockedPrefixes'),
      });
      if (!pc.ok) return this.refuse(msg, 'number', pc.reason);
      const allowed = allowedCallingCodes(config);
      if (allowed !== '*' && !allowed.has(pc.callingCode)) return this.refuse(msg, 'country', `country calling code +${pc.callingCode} is not allowed`);
      normalizedTo = pc.e164;
      callingCode = pc.callingCode;
    } else if (msg.channel === 'email') {
      const ec = checkEmail(msg.to);
      if (!ec.ok) return this.refuse(msg, 'address', ec.reason);
      normalizedTo = ec.address;
    } else {
      return { ok: false, reason: `unknown channel ${String((msg as { channel: unknown }).channel)}` };
    }

    const keys: Record<LimitScope, string | undefined> = {
      user: msg.user ? `${msg.channel}:${msg.user.toLowerCase()}@${(msg.realm ?? '').toLowerCase()}` : undefined,
      destination: `${msg.channel}:${keyring.hash('delivery-destination', normalizedTo.toLowerCase()).slice(0, 40)}`,
      prefix: msg.channel === 'sms' ? keyring.hash('delivery-prefix', phonePrefix(normalizedTo)).slice(0, 40) : undefined,
      country: msg.channel === 'sms' ? callingCode : undefined,
      client: msg.client ? `${msg.channel}:${msg.client}` : undefined,
      global: msg.channel,
    };
    const buckets: (CounterBucket & { label: LimitScope; windowMs: number })[] = [];
    for (const [scope, configKey] of LIMIT_SCOPES) {
      const bucket = keys[scope];
      const spec = parseLimit(config.string(configKey));
      if (!bucket || !spec) continue;
      const windowStart = Math.floor(now / spec.windowMs) * spec.windowMs;
      buckets.push({ scope, label: scope, bucket: bucket.slice(0, 255), windowStart, max: spec.max, expiresAt: windowStart + spec.windowMs, windowMs: spec.windowMs });
    }
    const res = await this.deps.counters.consume(buckets);
    if (!res.ok) {
      const b = buckets.find((x) => x.scope === res.bucket.scope)!;
      return this.refuse(msg, `limit:${b.label}`, `send limit per ${b.label} reached (${b.max} per ${b.windowMs / 1000} s)`);
    }
    return { ok: true, normalizedTo };
  }

  /** Refusals by kind (`number`, `country`, `address`, `limit:<scope>`), for /metrics. */
  refusals(): Record<string, number> {
    return { ...this.refused };
  }

  private async refuse(msg: OutgoingMessage, kind: string, reason: string): Promise<{ ok: false; reason: string }> {
    const { logger } = this.deps;
    this.refused[kind] = (this.refused[kind] ?? 0) + 1;
    const masked = maskDestination(msg.channel === 'email' ? 'email' : 'sms', msg.to);
    logger.warn({ channel: msg.channel, to: masked, user: msg.user, realm: msg.realm, client: msg.client, kind }, `message refused: ${reason}`);
    try {
      await this.deps.log.recordRefusal(msg, masked, reason);
      await this.deps.audit?.write({ action: 'delivery/refused', success: false, serial: msg.serial, user: msg.user, realm: msg.realm, client: msg.client, info: `${msg.channel} to ${masked}: ${reason}` });
    } catch (e) {
      logger.error({ err: e }, 'refusal not recorded');
    }
    return { ok: false, reason };
  }
}
