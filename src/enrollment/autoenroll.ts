import type { Logger } from 'pino';
import type { ConfigService } from '../config/service.ts';
import type { KeyRing } from '../crypto/keyring.ts';
import type { Db } from '../store/db.ts';
import { transaction } from '../store/transaction.ts';
import type { EnrollmentRepository } from './repository.ts';
import { requireTokenType } from '../tokens/registry.ts';
import type { NewToken, TokenRepository } from '../tokens/repository.ts';
import type { TokenService } from './tokens.ts';
import type { Token } from '../tokens/types.ts';
import type { Clock } from '../util/clock.ts';
import type { ChallengeRepository } from '../validation/challenges.ts';
import { CHANNELS } from '../validation/oob/channels.ts';
import { type OutOfBand, subjectKey } from '../validation/oob/flow.ts';
import type { CheckOutcome, CheckRequest } from '../validation/outcome.ts';
import type { DirectoryUser, NoTokenHook, PolicyPort, PolicySubject, UserPort } from '../validation/ports.ts';

/** The accepted values of `enrollment/autoenrollment` (spec 4.2/4.3); anything else counts as "not configured". */
export const AUTOENROLLMENT_VALUES = ['sms', 'email', 'sms email', 'email sms', '*'] as const;

export type EnrollType = 'sms' | 'email';

/**
 * Which token type a user gets (spec 4.3): the first type of the policy's
 * preference list for which the user store has an address; `*` = `sms email`.
 */
export function chooseType(preference: string[], info: { mobile?: string; email?: string }): { type: EnrollType; to: string } | { error: string } {
  const order = preference.flatMap((p) => (p === '*' ? ['sms', 'email'] : [p])) as EnrollType[];
  const mobile = info.mobile?.trim();
  const email = info.email?.trim();
  for (const t of order) {
    if (t === 'sms' && mobile) return { type: 'sms', to: mobile };
    if (t === 'email' && email) return { type: 'email', to: email };
  }
  if (order.length === 1 && order[0] === 'sms' && email) return { error: 'missing mobile number!' };
  if (order.length === 1 && order[0] === 'email' && mobile) return { error: 'missing email!' };
  return { error: 'missing sms or email!' };
}

/** The preference list of the policy, or undefined when autoenrollment is off (or misconfigured). */
export function policyPreference(value: unknown): string[] | undefined {
  if (value === undefined || value === false || value === null) return undefined;
  const list = (Array.isArray(value) ? value.map(String) : String(value).split(/\s+/)).map((s) => s.trim().toLowerCase()).filter(Boolean);
  return (AUTOENROLLMENT_VALUES as readonly string[]).includes(list.join(' ')) ? list : undefined;
}

export interface AutoEnrollDeps {
  db: Db;
  keyring: KeyRing;
  config: ConfigService;
  clock: Clock;
  logger: Logger;
  tokens: TokenService;
  oob: OutOfBand;
  challenges: ChallengeRepository;
  /** Claims and taking an unused token back. */
  enrollments: EnrollmentRepository;
  users: UserPort | undefined;
  policies: PolicyPort;
}

class LostClaim extends Error {}

/** A refusal after the password matched: no code went out (`notSent`), unless `notSent` is false (the password was wrong). */
const failed = (reason: string, user: DirectoryUser, extra: Partial<CheckOutcome['audit']> = {}, notSent = true): CheckOutcome => ({
  ok: false, reason: 'autoenrollFailed', challenges: [], error: reason, user, audit: { actionDetail: reason, user: user.login, realm: user.realm, ...extra },
  ...(notSent ? { notSent } : {}),
});

/**
 * Autoenrollment (spec 4), the ValidationService's no-token hook: a user who owns
 * no token and logs in with the user-store password gets an SMS or e-mail token
 * for the directory's `mobile` / `email`, and the first code is sent at once.
 *
 * Differences from LinOTP, on purpose: the password is checked before anything
 * else (whatever otppin says) and is never stored; the token's PIN is the
 * user-store password at every login (tokeninfo `pin_source: store`). The
 * destination comes only from the user store. Parallel first logins create one
 * token: the `enrollment_claims` primary key admits one enrollment per user, and
 * the others answer with that enrollment's open challenge.
 */
export class AutoEnrollment {
  constructor(private readonly deps: AutoEnrollDeps) {}

  readonly hook: NoTokenHook = (input) => this.run(input);

  /**
   * Runs after the checks, right before the claim is written. Only tests set
   * it, to line parallel enrollments up on the unique constraint.
   * @default undefined
   */
  beforeClaim: (() => Promise<void>) | undefined;

  private get repo(): TokenRepository {
    return this.deps.tokens.repository;
  }

  async run({ user, subject, request, pass }: { user: DirectoryUser; subject: PolicySubject; request: CheckRequest; pass: string }): Promise<CheckOutcome | null> {
    const { logger } = this.deps;
    const raw = this.deps.policies.value('enrollment', 'autoenrollment', subject, { ignoreTime: true });
    const preference = policyPreference(raw);
    if (!preference) {
      if (raw !== undefined && raw !== false) logger.warn({ value: String(raw) }, 'autoenrollment policy value not usable; autoenrollment skipped');
      return null;
    }
    const who = `${user.login}@${user.realm}`;
    const users = this.deps.users;
    // 1. The password first, whatever otppin says: nothing happens for a wrong one.
    if (!users || pass === '' || !(await users.checkPassword(user, pass))) {
      const reason = `User '${user.login}'@'${user.realm}' failed to authenticate against userstore`;
      logger.info({ user: who }, 'autoenrollment refused: wrong user-store password');
      return failed(reason, user, {}, false);
    }
    // 2. The type and destination, from the user store only.
    const choice = chooseType(preference, user.info);
    if ('error' in choice) {
      const reason = `auto_enrollment for user ${who} failed: ${choice.error}`;
      logger.info({ user: who, reason: choice.error }, 'autoenrollment refused');
      return failed(reason, user);
    }
    const channel = CHANNELS[choice.type];
    const type = requireTokenType(choice.type);
    const now = this.deps.clock.now();

    // A claim left by a token that was removed or given to someone else is released.
    const existing = await this.claimOf(user);
    if (existing) {
      const t = await this.repo.byId(existing.tokenId);
      if (t && t.userId === user.userId && t.resolver === user.resolver) return this.joinEnrollment(user, existing.tokenId, choice.type, now);
      await this.deps.enrollments.release(user, existing.tokenId);
    }

    let draft;
    try {
      const params = new Map([[choice.type === 'sms' ? 'phone' : 'email_address', choice.to]]);
      draft = type.init({ get: (k) => params.get(k), has: (k) => params.has(k) }, this.deps.tokens.defaults(), true);
    } catch (e) {
      const reason = `auto_enrollment for user ${who} failed: unusable ${choice.type === 'sms' ? 'mobile number' : 'e-mail address'} in the user store`;
      logger.info({ user: who, err: e }, 'autoenrollment refused');
      return failed(reason, user);
    }
    const serial = await this.deps.tokens.generateSerial(type.prefix);
    const config = this.deps.config;
    const newToken: NewToken = {
      serial, type: choice.type, description: `auto enrolled for ${who}`.slice(0, 80),
      keyEnc: this.deps.keyring.encrypt('seed', draft.secret), otplen: draft.otplen, hashlib: draft.hashlib,
      countWindow: config.number('DefaultCountWindow'),
      syncWindow: config.number('DefaultSyncWindow'),
      maxFail: config.number('DefaultMaxFailCount'),
      pinHash: '', pinSalt: '', userId: user.userId, resolver: user.resolver, resolverClass: user.resolverClass,
      info: { ...draft.info, pin_source: 'store' }, realms: [user.realm], createdAt: now,
    };
    const token: Token = {
      id: 0, serial, type: newToken.type, description: newToken.description, keyEnc: newToken.keyEnc, otplen: newToken.otplen,
      hashlib: draft.hashlib, counter: 0, countWindow: newToken.countWindow, syncWindow: newToken.syncWindow, maxFail: newToken.maxFail,
      failCount: 0, active: true, pinHash: '', pinSalt: '', userId: user.userId, resolver: user.resolver, resolverClass: user.resolverClass,
      info: newToken.info, realms: newToken.realms, createdAt: now, lastAuthSuccess: null, lastAuthMatch: null, countAuth: 0, countAuthSuccess: 0,
    };
    const prep = this.deps.oob.prepare(channel, token, user, subject, request, now);
    if (!prep.ok) return failed(`auto_enrollment for user ${who} failed: ${prep.reason}`, user);
    const p = prep.prepared;
    // 3. Send limits before anything is written.
    const limits = await this.deps.oob.checkLimits(p);
    if (!limits.ok) {
      logger.info({ user: who, reason: limits.reason }, 'autoenrollment refused: send limit');
      return failed(`auto_enrollment for user ${who} failed: send limit reached`, user);
    }
    // 4. Token, claim, challenge and outbox row in one transaction.
    await this.beforeClaim?.();
    let outbox: { id: number };
    try {
      // READ COMMITTED and a rerun after a deadlock, as a trigger's transaction (validation/oob/flow.ts)
      outbox = await transaction(this.deps.db, async (trx) => {
        const id = await this.repo.insert(newToken, trx);
        p.token = { ...token, id };
        if (!(await this.deps.enrollments.claim(trx, user, id, now))) throw new LostClaim();
        return this.deps.oob.persist(trx, p);
      }, { readCommitted: true });
    } catch (e) {
      if (!(e instanceof LostClaim)) throw e;
      const claim = await this.claimOf(user);
      if (!claim) return failed(`auto_enrollment for user ${who} failed: concurrent enrollment`, user);
      return this.joinEnrollment(user, claim.tokenId, choice.type, now);
    }
    // 5. Send; a final failure takes the token back.
    const verdict = await this.deps.oob.deliver(p, outbox);
    if (verdict === 'failed') {
      await this.deps.enrollments.releaseToken(p.token.id);
      await this.repo.delete([p.token.id]);
      logger.warn({ user: who, serial }, 'autoenrollment undone: the one-time code could not be sent');
      return failed(`auto_enrollment for user ${who} failed: the one-time code could not be sent`, user, { serial, tokenType: choice.type });
    }
    logger.info({ user: who, serial, type: choice.type }, 'token autoenrolled');
    return {
      ok: false, reason: 'tokenAutoenrolled', challenges: [this.deps.oob.info(p, p.prompt, undefined, verdict)], user,
      audit: { actionDetail: 'challenge created (token autoenrolled)', user: user.login, realm: user.realm, serial, tokenType: choice.type },
    };
  }

  private async claimOf(user: DirectoryUser): Promise<{ tokenId: number } | undefined> {
    return this.deps.enrollments.claimOf(user);
  }

  /**
   * An autoenrolled token whose first code finally failed after the wait bound is taken
   * back, as when the send fails within the bound: never used, no open challenge left.
   */
  async undoUnused(serial: string): Promise<void> {
    if (await this.deps.enrollments.undoUnused(serial)) this.deps.logger.warn({ serial }, 'autoenrollment undone: the one-time code could not be delivered');
  }

  /** Another request enrolled this user a moment ago: answer with its open challenge, send nothing. */
  private async joinEnrollment(user: DirectoryUser, tokenId: number, type: 'sms' | 'email', now: number): Promise<CheckOutcome> {
    const token = await this.repo.byId(tokenId);
    const sk = subjectKey(user);
    const open = token ? (await this.deps.challenges.open(tokenId, now)).filter((c) => c.subject === sk) : [];
    const newest = open.at(-1);
    if (!token || !newest) return failed(`auto_enrollment for user ${user.login}@${user.realm} failed: concurrent enrollment`, user);
    return {
      ok: false, reason: 'autoenrollJoined', challenges: [this.deps.oob.resent(CHANNELS[token.type as 'sms' | 'email'] ?? CHANNELS[type], token, newest)], user,
      audit: { actionDetail: 'challenge already submitted (concurrent autoenrollment)', user: user.login, realm: user.realm, serial: token.serial, tokenType: token.type },
    };
  }
}
