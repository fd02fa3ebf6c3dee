import { randomInt } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { ConfigService } from '../../config/service.ts';
import type { KeyRing } from '../../crypto/keyring.ts';
import { COUNT_ATTEMPTS, type LimitPlan } from '../../delivery/limits.ts';
import type { DeliveryService } from '../../delivery/service.ts';
import type { OutgoingMessage } from '../../delivery/types.ts';
import type { Db } from '../../store/db.ts';
import type { Database } from '../../store/schema.ts';
import { atomicSteps, drive, type Steps } from '../../store/transaction.ts';
import { destinationChanged } from '../../tokens/destination.ts';
import type { TokenRepository } from '../../tokens/repository.ts';
import type { Token } from '../../tokens/types.ts';
import type { Clock } from '../../util/clock.ts';
import type { Metrics } from '../../util/metrics.ts';
import { maskDestination, maskForOwner } from '../../util/phone.ts';
import type { Challenge, ChallengeRepository } from '../challenges.ts';
import type { ChallengeInfo, CheckRequest } from '../outcome.ts';
import type { ChallengeHandler, ChallengeInput, DirectoryUser, PolicyPort, PolicySubject } from '../ports.ts';
import { MAX_VALIDITY_SECONDS, type Channel } from './channels.ts';
import { parseJsonObject } from '../../util/json.ts';

/**
 * Out-of-band challenges (SMS and e-mail tokens), shared by both channels and by
 * autoenrollment.
 *
 * The one-time code: `token.otplen` (≥ 6) decimal digits from the CSPRNG, new for
 * every challenge. Only a keyed hash (key ring slot 2) of
 * `serial ‖ transaction id ‖ subject ‖ code` is stored, so a code answers exactly
 * the challenge it was sent for, for the user it was sent to. A challenge is
 * closed by a conditional write on success (single use), closes itself after
 * `ChallengeMaxAttempts` wrong answers, and expires after `SMSProviderTimeout` /
 * `EmailChallengeValidityTime` (never more than 10 minutes). A new challenge
 * supersedes (closes) the older open ones of the same token and user; it never
 * touches the token's fail counter.
 *
 * Sending: the challenge row and the outbox row are written in one atomic step (store/
 * transaction.ts atomicSteps: one transaction, on SQLite inside the group commit); then
 * the dispatcher is given up to `DeliveryWaitMs` to get the provider's answer. A
 * final failure removes the challenge (no challenge remains), a slow provider
 * leaves it open (the outbox delivers it later).
 */

/**
 * The part of the delivery layer that out-of-band challenges use: send limits
 * before anything is written, the outbox row in the challenge's transaction,
 * dispatch with a bounded wait (config `DeliveryWaitMs`), outcomes that come
 * after that wait.
 */
export type DeliveryPort = Pick<DeliveryService, 'checkLimits' | 'planLimits' | 'limitSteps' | 'limitRefusal' | 'enqueue' | 'enqueueSteps' | 'dispatchAndWait' | 'onOutcome'>;

export type DeliveryVerdict = 'sent' | 'pending' | 'failed';

/** A fresh code of `length` digits from the CSPRNG (leading zeros allowed). */
export function newCode(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += String(randomInt(0, 10));
  return out;
}

/** `login@realm` as challenges record it; '' without a user. */
export const subjectKey = (user: DirectoryUser | null): string => (user ? `${user.login}@${user.realm}` : '');

/** A challenge ready to be written: the code is only in `message` (for the outbox) and in `codeHash`. */
export interface PreparedChallenge {
  channel: Channel;
  token: Token;
  transactionId: string;
  subject: string;
  codeHash: string;
  message: OutgoingMessage;
  providers: string[];
  prompt: string;
  createdAt: number;
  expiresAt: number;
  client: string;
}

export type PrepareResult = { ok: true; prepared: PreparedChallenge } | { ok: false; reason: string };

export interface OutOfBandDeps {
  db: Db;
  keyring: KeyRing;
  config: ConfigService;
  clock: Clock;
  logger: Logger;
  challenges: ChallengeRepository;
  /** The token rows (compare-and-set of `token_info` when a trigger sends). */
  tokens: TokenRepository;
  policies: PolicyPort;
  delivery: DeliveryPort;
  /**
   * Called after a challenge was removed because its code could not be delivered
   * (autoenrollment takes its unused token back). @default undefined
   */
  challengeDropped?: (serial: string) => Promise<void>;
  /** Challenges are counted here once their row committed. @default undefined */
  metrics?: Metrics;
}

/**
 * Creates, sends and checks out-of-band challenges. One instance serves both
 * channels; `handler(channel)` gives the ValidationService's ChallengeHandler.
 */
export class OutOfBand {
  constructor(private readonly deps: OutOfBandDeps) {}

  handler(channel: Channel): ChallengeHandler {
    return {
      create: (input) => this.create(channel, input),
      matches: (token, challenge, otp) => this.matches(token, challenge, otp),
      succeeded: (input) => this.succeeded(channel, input),
      triggerWithoutPin: (_token, subject) => channel.type === 'sms' && this.deps.policies.has('authentication', 'trigger_sms', subject),
    };
  }

  private hashInput(serial: string, transactionId: string, subject: string, code: string): string {
    return `${serial}\0${transactionId}\0${subject}\0${code}`;
  }

  /** Constant time; a code answers only the challenge (and user) it was made for. */
  matches(token: Token, challenge: Challenge, otp: string): boolean {
    if (challenge.otpHash === '' || !/^\d+$/.test(otp)) return false;
    return this.deps.keyring.verifyHash('oob', this.hashInput(token.serial, challenge.transactionId, challenge.subject, otp), challenge.otpHash);
  }

  validitySeconds(channel: Channel): number {
    const v = this.deps.config.number(channel.validityKey);
    return Math.min(Math.max(v, 1), MAX_VALIDITY_SECONDS);
  }

  blockingSeconds(channel: Channel): number {
    return this.deps.config.number(channel.blockingKey);
  }

  prompt(channel: Channel): string {
    return this.deps.config.string(channel.promptKey) || channel.sentMessage;
  }

  /** Builds the challenge and its message (nothing written yet). */
  prepare(channel: Channel, token: Token, user: DirectoryUser | null, subject: PolicySubject, request: CheckRequest, now: number): PrepareResult {
    const { policies } = this.deps;
    const to = channel.destination(token, user, policies, subject);
    if (!to) return { ok: false, reason: channel.type === 'sms' ? 'no phone number defined for this token' : 'No e-mail address was defined for this token.' };
    const transactionId = this.deps.challenges.newTransactionId(this.deps.config.number('TransactionIdLength'));
    const code = newCode(token.otplen);
    const subjectId = subjectKey(user);
    const providers = String(policies.value('authentication', channel.providerAction, subject) ?? '').split(/[\s,]+/).filter(Boolean);
    return {
      ok: true,
      prepared: {
        channel, token, transactionId, subject: subjectId,
        codeHash: this.deps.keyring.hash('oob', this.hashInput(token.serial, transactionId, subjectId, code)),
        message: channel.compose({ token, code, transactionId, request, user, policies, subject, to }),
        providers, prompt: this.prompt(channel), createdAt: now, expiresAt: now + this.validitySeconds(channel) * 1000, client: request.client,
      },
    };
  }

  /**
   * Send limits and destination checks, asked before anything is written (they
   * count this message). A refusal carries no detail for the caller. On success
   * the message goes to the normalised destination (E.164 for SMS).
   */
  async checkLimits(p: PreparedChallenge): Promise<{ ok: true } | { ok: false; reason: string }> {
    const verdict = await this.deps.delivery.checkLimits(p.message);
    if (!verdict.ok) return verdict;
    p.message = { ...p.message, to: verdict.normalizedTo };
    return { ok: true };
  }

  /** Inside the caller's transaction: supersede older challenges, enqueue the message, insert the challenge. */
  async persist(trx: Transaction<Database>, p: PreparedChallenge): Promise<{ id: number }> {
    return drive(trx, this.persistSteps(trx, p));
  }

  /** {@link persist} as a step of the caller's atomic step (store/transaction.ts atomicSteps). */
  private *persistSteps(k: Kysely<Database>, p: PreparedChallenge): Steps<{ id: number }> {
    const { delivery, challenges } = this.deps;
    this.watchOutcomes(delivery);
    yield* challenges.supersedeSteps(k, p.token.id, p.subject);
    const outbox = yield* delivery.enqueueSteps(k, p.message, { providers: p.providers, idempotencyKey: `challenge:${p.transactionId}`, expiresAt: p.expiresAt });
    yield* challenges.insertSteps(k, {
      transactionId: p.transactionId, tokenId: p.token.id, serial: p.token.serial, subject: p.subject, otpHash: p.codeHash, counter: -1,
      message: p.prompt, client: p.client, createdAt: p.createdAt, expiresAt: p.expiresAt, data: { channel: p.channel.type, outbox: outbox.id },
    });
    return outbox;
  }

  private watched = new WeakSet<object>();

  /**
   * A message that fails only after the trigger's wait bound (slow provider,
   * retries exhausted) takes its challenge with it: no challenge stays open
   * for a code that never arrived.
   */
  private watchOutcomes(delivery: DeliveryPort): void {
    if (this.watched.has(delivery) || !('onOutcome' in delivery)) return;
    this.watched.add(delivery);
    delivery.onOutcome((o) => {
      if ((o.status !== 'failed' && o.status !== 'expired') || !o.serial) return;
      void this.dropChallengeOf(o.serial, o.id).catch((e: unknown) => this.deps.logger.error({ err: e }, 'dropping the challenge of a failed message failed'));
    });
  }

  private async dropChallengeOf(serial: string, outboxId: number): Promise<void> {
    for (const c of await this.deps.challenges.openOfSerial(serial)) {
      if (c.data.outbox === outboxId) {
        await this.deps.challenges.deleteById(c.id);
        this.deps.logger.info({ serial }, 'challenge removed: its one-time code could not be delivered');
        await this.deps.challengeDropped?.(serial);
      }
    }
  }

  /**
   * After the commit: hand the message to the dispatcher and wait up to the bound. Both
   * paths that persist a challenge (a trigger, autoenrollment) come here once it committed,
   * so the challenge is counted here.
   */
  async deliver(p: PreparedChallenge, outbox: { id: number }): Promise<DeliveryVerdict> {
    const { delivery } = this.deps;
    this.deps.metrics?.challengeCreated(p.token.type);
    let verdict: DeliveryVerdict;
    try {
      const res = await delivery.dispatchAndWait(outbox.id);
      verdict = res.status === 'failed' ? 'failed' : res.status === 'pending' ? 'pending' : 'sent';
    } catch (e) {
      this.deps.logger.warn({ err: e, serial: p.token.serial }, 'dispatch failed');
      verdict = 'failed';
    }
    this.deps.logger.info({ serial: p.token.serial, channel: p.channel.type, to: maskDestination(p.channel.type, p.message.to), transactionId: p.transactionId, verdict }, 'one-time code dispatched');
    return verdict;
  }

  /** `delivery`: the verdict of {@link deliver} when this request sent the code. */
  info(p: PreparedChallenge, message = p.prompt, extra?: string, delivery?: 'sent' | 'pending'): ChallengeInfo {
    return {
      transactionId: p.transactionId, message, state: p.transactionId, serial: p.token.serial, tokenType: p.token.type,
      description: p.token.description, expiresAt: p.expiresAt, ...(extra ? { info: extra } : {}),
      destination: maskForOwner(p.channel.type, p.message.to), ...(delivery ? { delivery } : {}),
    };
  }

  /** The answer for a trigger inside the blocking window: the open challenge again, nothing sent. */
  resent(channel: Channel, token: Token, c: Challenge, destination?: string): ChallengeInfo {
    return {
      transactionId: c.transactionId, message: channel.resentMessage, state: c.transactionId, info: 'challenge already submitted',
      serial: token.serial, tokenType: token.type, description: token.description, expiresAt: c.expiresAt,
      ...(destination ? { destination: maskForOwner(channel.type, destination) } : {}),
    };
  }

  /** The newest open challenge of the token for this user created inside the blocking window, if any. */
  async recentOpen(channel: Channel, tokenId: number, subject: string, now: number): Promise<Challenge | undefined> {
    const tid = await this.recentOpenId(channel, tokenId, subject, now);
    return tid === undefined ? undefined : (await this.deps.challenges.open(tokenId, now, tid))[0];
  }

  /** Transaction id of that challenge. */
  private recentOpenId(channel: Channel, tokenId: number, subject: string, now: number): Promise<string | undefined> {
    return this.deps.challenges.newestOpenSince(tokenId, subject, now, this.blockingSince(channel, now));
  }

  private blockingSince(channel: Channel, now: number): number {
    return now - this.blockingSeconds(channel) * 1000;
  }

  /**
   * ChallengeHandler.create for an existing token. Concurrent triggers are
   * serialised by a compare-and-set on the token row (its `token_info` gets the
   * time of the last send), so inside the blocking window exactly one request
   * sends and the others get the open challenge back.
   */
  async create(channel: Channel, input: ChallengeInput): Promise<{ ok: true; challenge: ChallengeInfo } | { ok: false; reason: string }> {
    const { token, user, subject, request, now } = input;
    const subjectId = subjectKey(user);
    const open = await this.recentOpen(channel, token.id, subjectId, now);
    // where the open challenge's code went: the page says so again (masked)
    const to = () => channel.destination(token, user, this.deps.policies, subject);
    if (open) return { ok: true, challenge: this.resent(channel, token, open, to()) };
    const prep = this.prepare(channel, token, user, subject, request, now);
    if (!prep.ok) return prep;
    const p = prep.prepared;
    const { delivery } = this.deps;
    const refused = (reason: string) => {
      this.deps.logger.info({ serial: token.serial, reason }, 'one-time code not sent: send limit');
      return { ok: false as const, reason: 'send limit reached' };
    };
    const plan = await delivery.planLimits(p.message);
    if (!plan.ok) return refused(plan.reason);
    p.message = { ...p.message, to: plan.normalizedTo };
    // One atomic step: the send counted in every limit, the compare-and-set, the challenge and its
    // outbox row (a limit reached rolls it all back). READ COMMITTED: on MariaDB the supersede and
    // the insert of parallel triggers of neighbouring tokens deadlocked on the gap locks of
    // REPEATABLE READ (test/faults/cluster.test.ts). On SQLite the step runs inside the group
    // commit, with no explicit transaction of its own.
    let tx: { kind: 'sent'; outbox: { id: number } } | { kind: 'busy' };
    try {
      tx = await atomicSteps(this.deps.db, (k) => this.countedSendSteps(k, channel, p, subjectId, now, plan), { readCommitted: true, attempts: COUNT_ATTEMPTS });
    } catch (e) {
      const refusal = await delivery.limitRefusal(e, p.message, plan);
      if (refusal) return refused(refusal.reason);
      throw e;
    }
    if (tx.kind === 'busy') {
      const other = await this.recentOpen(channel, token.id, subjectId, now);
      return other ? { ok: true, challenge: this.resent(channel, token, other, to()) } : { ok: false, reason: 'challenge could not be created (concurrent request)' };
    }
    const verdict = await this.deliver(p, tx.outbox);
    if (verdict === 'failed') {
      await this.deps.challenges.deleteByTransaction(p.transactionId);
      return { ok: false, reason: `the one-time code could not be sent (${channel.type})` };
    }
    return { ok: true, challenge: this.info(p, p.prompt, undefined, verdict) };
  }

  /** {@link sendSteps} after the send is counted in every limit (which throws when one is reached). */
  private *countedSendSteps(k: Kysely<Database>, channel: Channel, p: PreparedChallenge, subjectId: string, now: number, plan: Extract<LimitPlan, { ok: true }>): Steps<{ kind: 'sent'; outbox: { id: number } } | { kind: 'busy' }> {
    yield* this.deps.delivery.limitSteps(k, plan);
    return yield* this.sendSteps(k, channel, p, subjectId, now);
  }

  /**
   * The send of {@link create}, all or nothing: the compare-and-set on the token row that lets
   * one trigger of the blocking window through, then the challenge and its outbox row.
   */
  private *sendSteps(k: Kysely<Database>, channel: Channel, p: PreparedChallenge, subjectId: string, now: number): Steps<{ kind: 'sent'; outbox: { id: number } } | { kind: 'busy' }> {
    const { tokens, challenges } = this.deps;
    const { token } = p;
    const raw = yield* tokens.rawInfoSteps(k, token.id);
    if (raw === undefined) return { kind: 'busy' };
    // The destination changed since the message was prepared: its code would go to the old one.
    const stored = parseJsonObject<string>(raw);
    if (destinationChanged(token.info, stored)) return { kind: 'busy' };
    if ((yield* challenges.newestOpenSinceSteps(k, token.id, subjectId, now, this.blockingSince(channel, now))) !== undefined) return { kind: 'busy' };
    const info = { ...stored, last_challenge: new Date(now).toISOString(), last_challenge_tid: p.transactionId };
    if (!(yield* tokens.replaceInfoSteps(k, token.id, raw, info))) return { kind: 'busy' };
    return { kind: 'sent', outbox: yield* this.persistSteps(k, p) };
  }

  /** `autosms`: after a successful SMS answer, send the next code at once. */
  async succeeded(channel: Channel, input: ChallengeInput): Promise<void> {
    if (channel.type !== 'sms' || !this.deps.policies.has('authentication', 'autosms', input.subject)) return;
    const res = await this.create(channel, { ...input, request: { ...input.request, message: undefined } });
    if (!res.ok) this.deps.logger.info({ serial: input.token.serial, reason: res.reason }, 'autosms: next code not sent');
  }
}

