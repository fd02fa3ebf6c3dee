import type { Logger } from 'pino';
import type { ConfigService } from '../config/service.ts';
import { OtpdError, UserStoreUnavailableError } from '../errors.ts';
import { isDatabaseUnavailable } from '../store/unavailable.ts';
import { canonicalType } from '../tokens/registry.ts';
import type { TokenService } from '../enrollment/tokens.ts';
import type { Token } from '../tokens/types.ts';
import { usageRefusal } from '../tokens/usage.ts';
import type { Clock } from '../util/clock.ts';
import type { Metrics } from '../util/metrics.ts';
import type { AccountAttempts } from './account-attempts.ts';
import { answer } from './answer.ts';
import { AccountGuard, type AccountReservation } from './account-guard.ts';
import type { ChallengeRepository } from './challenges.ts';
import { FailureTimes } from './failure-times.ts';
import { accept, fail, serialsOf, type ChallengeInfo, type CheckOutcome, type CheckRequest } from './outcome.ts';
import { otppinMode, tokenRefusal } from './policies.ts';
import type { ChallengeHandler, DirectoryUser, ForwardPort, NoTokenHook, PolicyPort, PolicySubject, UserPort } from './ports.ts';
import type { Reason } from './reasons.ts';
import { ownedBy } from './select.ts';
import { TokenCheck } from './token-check.ts';
import { checkStatus, type StatusRequest, type TransactionStatus } from './status.ts';

export interface ValidationDeps {
  tokens: TokenService;
  challenges: ChallengeRepository;
  attempts: AccountAttempts;
  config: ConfigService;
  clock: Clock;
  logger: Logger;
  users: UserPort;
  policies: PolicyPort;
  /** Challenge handlers of the out-of-band token types, by type (sms, email). @default none */
  challengeHandlers?: ReadonlyMap<string, ChallengeHandler>;
  /** What a user who owns no token gets first (autoenrollment). @default none */
  noToken?: NoTokenHook;
  /** Policy forward_server (a switch-over from LinOTP). @default none: the policy then fails closed */
  forward?: ForwardPort;
  /** Outcomes by reason, challenges created and answered are counted here. @default undefined */
  metrics?: Metrics;
}

/**
 * Takes over a failure's hold (the failure floor, B.2 #9): the caller answers only once `until`
 * resolved, and may finish its own durable work meanwhile (the audit row, in the same commit as
 * the failure's writes instead of one after the hold). Without one, check waits itself.
 */
export type AnswerHold = (until: Promise<void>) => void;

/** The tokens a request names, or why none may be checked. */
interface Selection {
  tokens: Token[];
  /** A serial or check_s user that names no usable token: a try like a wrong password. */
  mismatch?: { reason: Reason; detail: string };
  /** The owner of a serial-only request's token. */
  user: DirectoryUser | null;
}

/**
 * The validation pipeline of spec 2, shared by /validate/* and RADIUS: resolve the user,
 * select tokens, look up the policies, then let {@link TokenCheck} classify every token
 * (split, classify: pure steps) and finish with conditional writes, under the account's
 * attempt limit. The outcome carries a reason code for the audit; api/ and radius/ turn
 * it into their answers (answer.ts).
 */
export class ValidationService {
  private readonly failureTimes = new FailureTimes();
  private readonly guard: AccountGuard;
  private readonly tokenCheck: TokenCheck;
  private readonly challengeHandlers: ReadonlyMap<string, ChallengeHandler>;

  constructor(private readonly deps: ValidationDeps) {
    this.challengeHandlers = deps.challengeHandlers ?? new Map();
    this.guard = new AccountGuard(deps.attempts, deps.tokens, deps.config, deps.logger);
    this.tokenCheck = new TokenCheck({ ...deps, challengeHandlers: this.challengeHandlers });
  }

  async check(req: CheckRequest, hold?: AnswerHold): Promise<CheckOutcome> {
    return this.withFailureFloor(() => this.runSafely(req), hold);
  }

  /** spec 1.3.6 `/validate/check_status` (validation/status.ts), with the failure floor of check. */
  async checkStatus(req: StatusRequest, hold?: AnswerHold): Promise<{ outcome: CheckOutcome; transactions: TransactionStatus[] }> {
    let transactions: TransactionStatus[] = [];
    const outcome = await this.withFailureFloor(async () => {
      try {
        const res = await checkStatus({ ...this.deps, guard: this.guard }, req, this.deps.clock.now());
        transactions = res.transactions;
        return res.outcome;
      } catch (e) {
        if (e instanceof UserStoreUnavailableError) return fail('userStoreUnavailable', 'user store unavailable', { unavailable: true, audit: { info: e.message } });
        throw e;
      }
    }, hold);
    return { outcome, transactions };
  }

  private async withFailureFloor(run: () => Promise<CheckOutcome>, hold?: AnswerHold): Promise<CheckOutcome> {
    const started = performance.now();
    const outcome = this.counted(await run());
    // A failure answers no sooner than a wrong OTP usually takes (B.2 #9), so its time does not
    // say whether the user exists, the token is locked or the account is throttled.
    if (!outcome.ok && outcome.challenges.length === 0 && !outcome.unavailable) {
      const elapsed = performance.now() - started;
      if (outcome.fullCheck) this.failureTimes.record(elapsed);
      const wait = this.failureTimes.floor() - elapsed;
      if (wait >= 0.5) {
        const until = new Promise<void>((resolve) => setTimeout(resolve, Math.round(wait)));
        if (hold) hold(until);
        else await until;
      }
    }
    return outcome;
  }

  private async runSafely(req: CheckRequest): Promise<CheckOutcome> {
    try {
      return await this.run(req);
    } catch (e) {
      const who = { user: req.user, realm: req.realm };
      if (e instanceof UserStoreUnavailableError) {
        // the store's own error line says why; this one ties the refused request to it
        this.deps.logger.warn({ resolver: e.resolver, reason: e.reason }, `authentication not possible: user store '${e.resolver}' unavailable: ${e.reason}`);
        return fail('userStoreUnavailable', 'user store unavailable', { unavailable: true, audit: { info: e.message, ...who } });
      }
      if (e instanceof OtpdError) return fail('requestRefused', e.message, { error: e.message, audit: who });
      if (isDatabaseUnavailable(e)) {
        // an outage, never a refusal: no attempt is spent (the writes could not happen anyway)
        this.deps.logger.warn({ err: e }, 'validation failed: database unavailable');
        return fail('databaseUnavailable', 'database unavailable', { unavailable: true, audit: { info: (e as Error).message, ...who } });
      }
      this.deps.logger.error({ err: e }, 'validation failed');
      return fail('internalError', 'internal error', { audit: { info: (e as Error).name, ...who } });
    }
  }

  private async run(req: CheckRequest): Promise<CheckOutcome> {
    const now = this.deps.clock.now();
    const { policies } = this.deps;
    let user: DirectoryUser | null = null;
    let login = '';
    let realm = '';
    if (req.user !== undefined && req.user !== '') {
      ({ login, realm } = this.deps.users.splitUser(req.user, req.realm));
      const setrealm = policies.value('authorization', 'setrealm', { login, realm, client: req.client });
      if (typeof setrealm === 'string' && setrealm !== '') realm = setrealm.toLowerCase();
      user = await this.deps.users.findUser(login, realm);
      if (!user) {
        if (this.deps.config.bool('PassOnUserNotFound')) return accept('passOnUserNotFound', { user: login, realm, actionDetail: 'user not found, accepted by PassOnUserNotFound' });
        // the same work a failure of a known account does, so the answer is no oracle (B.2 #9)
        await this.guard.unknownAccount(now, req.pass ?? '');
        return fail('userNotFound', 'User not found', { audit: { user: login, realm } });
      }
    }

    const selected = await this.selectTokens(req, user, now);
    if ('ok' in selected) return selected;
    const { tokens, mismatch } = selected;
    user = selected.user;

    // Policies are those of the token owner; an unassigned token uses its token realm(s).
    const unassigned = !user && tokens.length === 1 ? tokens[0] : undefined;
    const subject: PolicySubject = user
      ? { login: user.login, realm: user.realm, resolver: user.resolver, client: req.client, userInfo: user.info }
      : { login: '', realm: unassigned?.realms[0] ?? realm, client: req.client };
    const base = { user: user?.login ?? login, realm: user?.realm ?? subject.realm };
    const withBase = (o: CheckOutcome): CheckOutcome => ({ ...o, user, audit: { ...base, ...o.audit } });

    const realms = unassigned && unassigned.realms.length > 1 ? unassigned.realms : [subject.realm];
    const authorized = (r: string) => policies.has('authorization', 'authorize', { ...subject, realm: r });
    if (policies.anyPolicy('authorization', 'authorize') && !realms.every(authorized)) {
      return withBase(fail('notAuthorized', 'user is not authorized by the authorization policies', { error: 'user is not authorized (authorize policy)' }));
    }
    const mode = req.entry === 'userservice' ? 2 : otppinMode(policies, subject, realms);
    // spec 2.1 step 2: forward_server without forward_on_no_token forwards every request of the user
    const forwardTo = user ? this.forwardTarget(subject, req) : undefined;
    if (forwardTo !== undefined && !policies.has('authentication', 'forward_on_no_token', subject)) {
      return withBase(await this.forwardRequest(req, forwardTo));
    }

    if (tokens.length === 0 && mismatch) {
      // a try like a wrong password, with the same work: the account's attempt is spent
      const out = fail(mismatch.reason, mismatch.detail, { audit: { serial: req.serial } });
      if (!user) return withBase(out);
      return withBase(await this.guard.guarded(user, now, async (account) => ((await account.reserve()) ? out : account.refused())));
    }
    if (tokens.length === 0) {
      if (!user) {
        // an unknown serial costs what a wrong OTP costs: its existence is no oracle either
        await this.guard.unknownAccount(now, req.pass ?? '');
        return withBase(fail('noTokenFound', 'no token found'));
      }
      if (req.entry === 'check_s') return withBase(fail('noTokenFound', 'No token found!'));
      if (req.entry === 'userservice') return withBase(fail('noTokenAssigned', 'User has no tokens assigned'));
      const owner = user;
      return withBase(await this.guard.guarded(owner, now, (account) => this.noToken(owner, subject, req, account)));
    }
    if (req.pass === undefined && req.entry === 'check_s' && req.challenge !== undefined && tokens.length === 1) {
      const triggered = await this.triggerWithoutPin(tokens[0], user, subject, req, now);
      if (triggered) return withBase(triggered);
    }
    if (req.pass === undefined) return withBase(fail('missingPass', "Missing parameter: 'pass'"));
    const input = { tokens, subject, request: req, pass: req.pass, now, mode };
    if (!user) return withBase(await this.tokenCheck.check({ ...input, user: null }));
    const owner = user;
    return withBase(await this.guard.guarded(owner, now, (account) => this.tokenCheck.check({ ...input, user: owner, account })));
  }

  /**
   * Selects the tokens. A token authenticates only its owner: with user and serial, the serial
   * must belong to that user; with a serial alone, its owner is the user. check_s with a user
   * uses the user's single token (spec 1.3.3). An outcome when there is neither a user nor a
   * serial, or the serial's owner cannot be found.
   */
  private async selectTokens(req: CheckRequest, user: DirectoryUser | null, now: number): Promise<Selection | CheckOutcome> {
    const repo = this.deps.tokens.repository;
    let selection: Selection;
    if (req.serial !== undefined && req.serial !== '') {
      const t = await repo.bySerial(req.serial);
      selection = { tokens: t ? [t] : [], user };
      if (user && t && !ownedBy(t, user)) {
        selection = { tokens: [], user, mismatch: { reason: 'ownerMismatch', detail: 'serial does not belong to the user' } };
      } else if (!user && t && t.userId !== '') {
        const owner = await this.ownerOf(t);
        if (!owner) {
          await this.guard.unknownAccount(now, req.pass ?? '');
          return fail('tokenOwnerNotFound', 'token owner not found', { audit: { serial: t.serial, tokenType: t.type } });
        }
        selection = { tokens: [t], user: owner };
      }
    } else if (user) {
      const tokens = await repo.find({ owner: { resolver: user.resolver, userId: user.userId } });
      selection = { tokens, user };
      if (req.entry === 'check_s' && tokens.length !== 1) {
        const mismatch = tokens.length === 0
          ? { reason: 'noTokenFound' as const, detail: 'No token found!' }
          : { reason: 'notSingleToken' as const, detail: 'More than one token found!' };
        selection = { tokens: [], user, mismatch };
      }
    } else {
      return fail('missingUserOrSerial', 'Missing parameter: user or serial');
    }
    const wanted = req.tokenType;
    if (wanted) selection.tokens = selection.tokens.filter((t) => t.type === canonicalType(wanted));
    return selection;
  }

  /** The owner of an assigned token, in the first of the token's realms that holds the owner's resolver. */
  private async ownerOf(t: Token): Promise<DirectoryUser | null> {
    const realmsOfResolver = this.deps.users.realmsOfResolver(t.resolver);
    const realm = t.realms.find((r) => realmsOfResolver.includes(r)) ?? realmsOfResolver[0];
    if (realm === undefined) return null;
    return this.deps.users.findById(t.resolver, t.userId, realm);
  }

  /**
   * spec 1.3.3: check_s + `challenge` without a pass asks for a challenge without a PIN
   * (policy trigger_sms), for the owner's policies. Null when the token may not be triggered so.
   */
  private async triggerWithoutPin(t: Token, user: DirectoryUser | null, subject: PolicySubject, req: CheckRequest, now: number): Promise<CheckOutcome | null> {
    const handler = this.challengeHandlers.get(t.type);
    if (!t.active || t.failCount >= t.maxFail || tokenRefusal(this.deps.policies, t, subject) || usageRefusal(t, now) || !handler?.triggerWithoutPin?.(t, subject)) return null;
    const res = await handler.create({ token: t, user, subject, request: req, now });
    const audit = { serial: t.serial, tokenType: t.type };
    if (res.ok) return { ok: false, reason: 'challengeCreated', challenges: [res.challenge], audit: { actionDetail: 'challenge created', ...audit } };
    return fail('challengeFailed', res.reason, { audit, notSent: true });
  }

  /**
   * The self-service login's second step without an OTP (spec 1.6): the login verified the
   * user-store password, so a challenge is created without a PIN, on the named token or else on
   * every usable out-of-band token of the user. Tokens that are locked, disabled or refused by the
   * authorization policies get none. A usable HOTP/TOTP token needs no challenge: the user enters
   * its current code (reason `otpRequired`).
   */
  async triggerSecondFactor(user: DirectoryUser, serial: string | undefined, client: string): Promise<CheckOutcome> {
    const now = this.deps.clock.now();
    const subject: PolicySubject = { login: user.login, realm: user.realm, resolver: user.resolver, client, userInfo: user.info };
    const base = { user: user.login, realm: user.realm };
    let tokens = await this.deps.tokens.repository.find({ owner: { resolver: user.resolver, userId: user.userId } });
    if (serial !== undefined && serial !== '') tokens = tokens.filter((t) => t.serial === serial);
    if (tokens.length === 0) return fail(serial ? 'ownerMismatch' : 'noTokenAssigned', serial ? 'serial does not belong to the user' : 'User has no tokens assigned', { user, audit: { ...base, serial } });
    const usable = tokens.filter((t) => t.active && t.failCount < t.maxFail && !tokenRefusal(this.deps.policies, t, subject) && !usageRefusal(t, now));
    if (usable.length === 0) return fail('tokenLocked', 'no usable token: disabled, locked or not authorized', { user, audit: { ...base, ...serialsOf(tokens) } });
    const outOfBand = usable.filter((t) => this.challengeHandlers.has(t.type));
    if (outOfBand.length === 0) return fail('otpRequired', 'enter the current code of the token', { user, audit: { ...base, ...serialsOf(usable) } });
    const created: ChallengeInfo[] = [];
    let error: string | undefined;
    for (const t of outOfBand) {
      const res = await this.challengeHandlers.get(t.type)!.create({ token: t, user, subject, request: { user: user.login, realm: user.realm, client, entry: 'userservice' }, now });
      if (res.ok) created.push(res.challenge);
      else error = res.reason;
    }
    if (created.length === 0) return fail('challengeFailed', error ?? 'challenge could not be created', { user, notSent: true, error, audit: { ...base, ...serialsOf(outOfBand) } });
    return { ok: false, reason: 'challengeCreated', challenges: created, user, audit: { ...base, actionDetail: 'challenge created', ...serialsOf(created.map((c) => ({ serial: c.serial, type: c.tokenType }))) } };
  }

  /**
   * An empty answer to an out-of-band challenge (RADIUS): asks the token's handler again
   * for the same user, which resends outside the blocking window and reuses the open
   * challenge inside it. Only open, unexpired challenges of this user count; the first
   * factor was checked when the challenge was created.
   */
  async resend(req: { user: string; realm?: string; transactionId: string; client: string }): Promise<CheckOutcome> {
    return this.counted(await this.resendUncounted(req));
  }

  /** Counts an outcome by its reason code and what it means for the caller. */
  private counted(outcome: CheckOutcome): CheckOutcome {
    this.deps.metrics?.validation(outcome.reason, answer(outcome).kind);
    return outcome;
  }

  private async resendUncounted(req: { user: string; realm?: string; transactionId: string; client: string }): Promise<CheckOutcome> {
    try {
      const { login, realm } = this.deps.users.splitUser(req.user, req.realm);
      const user = await this.deps.users.findUser(login, realm);
      if (!user) return fail('userNotFound', 'User not found', { audit: { user: login, realm } });
      const now = this.deps.clock.now();
      const subjectKey = `${user.login}@${user.realm}`;
      const subject: PolicySubject = { login: user.login, realm: user.realm, resolver: user.resolver, client: req.client, userInfo: user.info };
      const open = (await this.deps.challenges.byTransaction(req.transactionId.split('.')[0])).filter((c) => c.status === 'open' && c.expiresAt > now && c.subject === subjectKey);
      const created: ChallengeInfo[] = [];
      for (const c of open) {
        const token = await this.deps.tokens.repository.byId(c.tokenId);
        const handler = token && this.challengeHandlers.get(token.type);
        if (!token || !handler || !token.active || token.failCount >= token.maxFail || usageRefusal(token, now)) continue;
        const res = await handler.create({ token, user, subject, request: { user: req.user, client: req.client, entry: 'radius' }, now });
        if (res.ok) created.push(res.challenge);
      }
      const audit = { user: user.login, realm: user.realm, ...serialsOf(created.map((c) => ({ serial: c.serial, type: c.tokenType }))) };
      if (created.length === 0) return fail('noOpenChallenge', 'no open challenge to resend', { user, audit });
      return { ok: false, reason: 'challengeResent', challenges: created, user, audit: { ...audit, actionDetail: 'challenge resent' } };
    } catch (e) {
      if (e instanceof UserStoreUnavailableError) return fail('userStoreUnavailable', 'user store unavailable', { unavailable: true, audit: { info: e.message } });
      throw e;
    }
  }

  /** The forward_server value for this request, or undefined (no policy, or an entry that never forwards). */
  private forwardTarget(subject: PolicySubject, req: CheckRequest): string | undefined {
    if (req.entry === 'check_s' || req.entry === 'userservice') return undefined;
    const v = this.deps.policies.value('authentication', 'forward_server', subject);
    return typeof v === 'string' && v.trim() !== '' ? v : undefined;
  }

  private async forwardRequest(req: CheckRequest, target: string): Promise<CheckOutcome> {
    if (!this.deps.forward) return fail('forwardUnavailable', 'forward_server: no forwarder in this process', { unavailable: true });
    return this.deps.forward(req, target);
  }

  /** spec 2.1 step 5: autoenrollment, PassOnUserNoToken, passthru, passOnNoToken, forward_on_no_token. */
  private async noToken(user: DirectoryUser, subject: PolicySubject, req: CheckRequest, account: AccountReservation): Promise<CheckOutcome> {
    const { policies } = this.deps;
    // every answer below may check the directory password: it is an attempt of the account
    if (!(await account.reserve())) return account.refused();
    let autoenrollError: string | undefined;
    let notSent: boolean | undefined;
    if (this.deps.noToken && req.pass !== undefined && req.entry !== 'check_s') {
      const out = await this.deps.noToken({ user, subject, request: req, pass: req.pass });
      if (out && (out.ok || out.challenges.length > 0)) return out;
      autoenrollError = out?.error;
      notSent = out?.notSent;
    }
    if (this.deps.config.bool('PassOnUserNoToken')) return accept('passOnUserNoToken', { actionDetail: 'accepted by PassOnUserNoToken' });
    if (policies.has('authentication', 'passthru', subject)) {
      const okPw = req.pass !== undefined && req.pass !== '' && (await this.deps.users.checkPassword(user, req.pass));
      return okPw
        ? accept('passthru', { actionDetail: 'Authenticated against Resolver' })
        : fail('passthruWrongPassword', 'passthru: wrong user password', { error: autoenrollError });
    }
    if (policies.has('authentication', 'passOnNoToken', subject)) {
      return accept('passOnNoToken', { actionDetail: 'Authenticated by passOnNoToken policy' });
    }
    // spec 2.1 step 5.6: forward_on_no_token sends the users otpd has no token for to the old server
    const forwardTo = this.forwardTarget(subject, req);
    if (forwardTo !== undefined && policies.has('authentication', 'forward_on_no_token', subject)) {
      const out = await this.forwardRequest(req, forwardTo);
      // the old server decided, not this account's password: only its refusal is a failed try here
      return out;
    }
    return autoenrollError !== undefined
      ? fail('autoenrollFailed', autoenrollError, { error: autoenrollError, ...(notSent ? { notSent } : {}) })
      : fail('noTokenAssigned', 'User has no tokens assigned', { error: autoenrollError });
  }
}
