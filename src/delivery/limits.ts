import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { ConfigService } from '../config/service.ts';
import type { KeyRing } from '../crypto/keyring.ts';
import type { Database } from '../store/schema.ts';
import type { Steps } from '../store/transaction.ts';
import type { Clock } from '../util/clock.ts';
import { checkEmail, checkPhone, maskDestination, phonePrefix } from '../util/phone.ts';
import { OverLimit, type CounterBucket, type SendCounterRepository } from './counter-repository.ts';
import type { DeliveryLog } from './log.ts';
import type { DeliveryAudit } from './outcomes.ts';
import { allowedCallingCodes, defaultCountry, parseLimit } from './settings.ts';
import type { OutgoingMessage } from './types.ts';

export { COUNT_ATTEMPTS } from './counter-repository.ts';

/** The answer of the send limits: the normalised destination, or why the message may not go. */
export type LimitVerdict = { ok: true; normalizedTo: string } | { ok: false; reason: string };

/** A bucket of one limit scope with its window, as {@link SendLimits.plan} builds it. */
export type LimitBucket = CounterBucket & { label: LimitScope; windowMs: number };

/**
 * What the send limits ask of a message before it is counted: the normalised destination and
 * the buckets to count it in, or why it may not go (that refusal is recorded already).
 */
export type LimitPlan = { ok: true; normalizedTo: string; buckets: LimitBucket[] } | { ok: false; reason: string };

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
    const plan = await this.plan(msg);
    if (!plan.ok) return plan;
    const res = await this.deps.counters.consume(plan.buckets);
    if (!res.ok) return this.overLimit(msg, plan, res.bucket);
    return { ok: true, normalizedTo: plan.normalizedTo };
  }

  /**
   * The checks of {@link check} before anything is counted: the destination (normalised) and the
   * buckets of the limits that are set. A refusal is recorded and returned.
   */
  async plan(msg: OutgoingMessage): Promise<LimitPlan> {
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
    const buckets: LimitBucket[] = [];
    for (const [scope, configKey] of LIMIT_SCOPES) {
      const bucket = keys[scope];
      const spec = parseLimit(config.string(configKey));
      if (!bucket || !spec) continue;
      const windowStart = Math.floor(now / spec.windowMs) * spec.windowMs;
      buckets.push({ scope, label: scope, bucket: bucket.slice(0, 255), windowStart, max: spec.max, expiresAt: windowStart + spec.windowMs, windowMs: spec.windowMs });
    }
    return { ok: true, normalizedTo, buckets };
  }

  /**
   * The count of a planned message as a step of the caller's atomic step (store/transaction.ts
   * atomicSteps, run with COUNT_ATTEMPTS): a bucket at its limit throws OverLimit and rolls the
   * whole step back; {@link overLimit} then records the refusal.
   */
  countSteps(k: Kysely<Database>, plan: Extract<LimitPlan, { ok: true }>): Steps<void> {
    return this.deps.counters.countSteps(k, plan.buckets);
  }

  /** A reached limit thrown by {@link countSteps}, recorded as a refusal; undefined for any other error. */
  async refusalOf(e: unknown, msg: OutgoingMessage, plan: Extract<LimitPlan, { ok: true }>): Promise<{ ok: false; reason: string } | undefined> {
    return e instanceof OverLimit ? this.overLimit(msg, plan, e.bucket) : undefined;
  }

  /** Records the refusal of a message whose count found `bucket` at its limit. */
  private overLimit(msg: OutgoingMessage, plan: Extract<LimitPlan, { ok: true }>, bucket: CounterBucket): Promise<{ ok: false; reason: string }> {
    const b = plan.buckets.find((x) => x.scope === bucket.scope)!;
    return this.refuse(msg, `limit:${b.label}`, `send limit per ${b.label} reached (${b.max} per ${b.windowMs / 1000} s)`);
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
