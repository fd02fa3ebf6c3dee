import type { Logger } from 'pino';
import type { ConfigService } from '../config/service.ts';
import { OtpdError, UserStoreUnavailableError } from '../errors.ts';
import { canonicalType, tokenType } from '../tokens/registry.ts';
import type { TokenService } from '../enrollment/tokens.ts';
import type { Token } from '../tokens/types.ts';
import type { Clock } from '../util/clock.ts';
import type { Challenge, ChallengeRepository } from './challenges.ts';
import { accountOf, type AccountAttempts, type AccountRefusal, type AttemptPolicy } from './account-attempts.ts';
import type { DirectoryUser, PolicyPort, PolicySubject, UserPort } from './ports.ts';

/** One authentication request, the same for HTTP and RADIUS. */
export interface CheckRequest {
  user?: string;
  realm?: string;
  pass?: string;
  serial?: string;
  /** Answer to this challenge (`transactionid` or `state`). */
  transactionId?: string;
  client: string;
  tokenType?: string;
  /** `data` / `message`: SMS text override. */
  message?: string;
  /** `challenge` parameter: with check_s and no pass, asks for a challenge (policy trigger_sms). */
  challenge?: string;
  /** Which entry point asks: check_s has no user and never autoenrolls. */
  entry: 'check' | 'simplecheck' | 'check_s' | 'samlcheck' | 'radius';
}

export interface ChallengeInfo {
  transactionId: string;
  message: string;
  /** sms/email carry `state` (= transaction id); HMAC challenges do not. */
  state?: string;
  serial: string;
  tokenType: string;
  description: string;
  info?: string;
  expiresAt: number;
}

export interface CheckOutcome {
  ok: boolean;
  challenges: ChallengeInfo[];
  /** For the audit row: never secrets. */
  audit: { user?: string; realm?: string; serial?: string; tokenType?: string; actionDetail: string; info?: string };
  user?: DirectoryUser | null;
  /** Details for `detail_on_fail` / autoenrollment errors. */
  error?: string;
  /** A user store could not be asked: the answer is an error, never "authenticated". */
  unavailable?: boolean;
  /**
   * A failure that was no guess — no secret was checked (every token locked, inactive or not
   * allowed) or a replay of the value just accepted: it spends no attempt of the account.
   */
  notAGuess?: boolean;
  /** A failure that went the whole way (tokens reserved and checked): its time sets the failure floor. */
  fullCheck?: boolean;
}

/**
 * Recent durations of failures that checked a token, and the floor every failure answer is
 * held to: their 90th percentile, at most 50 ms. Only full checks feed it, so a flood of
 * unknown names cannot pull it below what a wrong OTP takes.
 */
export class FailureTimes {
  private readonly samples = new Float64Array(64);
  private count = 0;
  private cached = 0;
  private dirty = false;

  record(ms: number): void {
    this.samples[this.count++ % this.samples.length] = ms;
    this.dirty = true;
  }

  floor(): number {
    if (this.dirty) {
      const n = Math.min(this.count, this.samples.length);
      const sorted = Array.from(this.samples.subarray(0, n)).sort((a, b) => a - b);
      this.cached = Math.min(50, sorted[Math.floor(n * 0.9)] ?? 0);
      this.dirty = false;
    }
    return this.cached;
  }
}

/** The attempt of one account, reserved by the step that checks a secret (see `guarded`). */
interface AccountReservation {
  /** Counts the attempt in advance; false = the account is refused (answer `refused`). */
  reserve(): Promise<boolean>;
  refused(): CheckOutcome;
}

/** What a challenge-capable token type (sms, email) plugs in: creating and answering challenges. */
export interface ChallengeHandler {
  create(input: ChallengeInput): Promise<{ ok: true; challenge: ChallengeInfo } | { ok: false; reason: string }>;
  /** Does `otp` answer this open challenge of the token? Constant time. */
  matches(token: Token, challenge: Challenge, otp: string): boolean;
  /** After a successful answer to one of this handler's challenges (e.g. `autosms`). */
  succeeded?(input: ChallengeInput): Promise<void>;
  /** May this token get a challenge without a PIN (check_s + `challenge`, e.g. policy trigger_sms)? */
  triggerWithoutPin?(token: Token, subject: PolicySubject): boolean;
}

export interface ChallengeInput {
  token: Token;
  user: DirectoryUser | null;
  subject: PolicySubject;
  request: CheckRequest;
  now: number;
}

/** Called when a resolved user owns no token at all (autoenrollment plugs in here). */
export type NoTokenHook = (input: { user: DirectoryUser; subject: PolicySubject; request: CheckRequest; pass: string }) => Promise<CheckOutcome | null>;

type Classified =
  | { kind: 'valid'; token: Token; matched: number; next: number; challenge?: Challenge }
  | { kind: 'pin'; token: Token; challenges: Challenge[] }
  | { kind: 'challenge'; token: Token }
  | { kind: 'invalid'; token: Token; challenges: Challenge[] };

const OTPPIN: Record<string, 0 | 1 | 2 | 3> = { '0': 0, token_pin: 0, '1': 1, password: 1, '2': 2, only_otp: 2, '3': 3, ignore_pin: 3 };

const fail = (actionDetail: string, extra: Partial<CheckOutcome> = {}): CheckOutcome => ({ ok: false, challenges: [], audit: { actionDetail }, ...extra });

/**
 * The validation pipeline of spec 2: resolve the user, select tokens, look up the
 * policies, classify every token (valid / PIN matched / challenge / invalid),
 * then finish with conditional writes. Shared by /validate/* and RADIUS.
 *
 * Lockout under concurrency: before an OTP is checked, each candidate token
 * reserves one attempt (`fail_count + 1 WHERE fail_count < max_fail`), so a
 * burst never buys more guesses than MaxFail allows. A success resets the count;
 * a triggered challenge, or a token that did not match the PIN while another did,
 * gets its reservation back.
 */
export class ValidationService {
  readonly challengeHandlers = new Map<string, ChallengeHandler>();
  private readonly failureTimes = new FailureTimes();
  noTokenHook: NoTokenHook | undefined;

  constructor(
    private readonly tokens: TokenService,
    private readonly challenges: ChallengeRepository,
    private readonly attempts: AccountAttempts,
    private readonly config: ConfigService,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly users: () => UserPort | undefined,
    private readonly policies: () => PolicyPort,
  ) {}

  async check(req: CheckRequest): Promise<CheckOutcome> {
    const started = performance.now();
    const outcome = await this.runSafely(req);
    // A failure answers no sooner than a wrong OTP usually takes (B.2 #9), so its time does not
    // say whether the user exists, the token is locked or the account is throttled.
    if (!outcome.ok && outcome.challenges.length === 0 && !outcome.unavailable) {
      const elapsed = performance.now() - started;
      if (outcome.fullCheck) this.failureTimes.record(elapsed);
      const wait = this.failureTimes.floor() - elapsed;
      if (wait >= 0.5) await new Promise((resolve) => setTimeout(resolve, Math.round(wait)));
    }
    return outcome;
  }

  private async runSafely(req: CheckRequest): Promise<CheckOutcome> {
    try {
      return await this.run(req);
    } catch (e) {
      if (e instanceof UserStoreUnavailableError) {
        this.logger.warn({ err: e }, 'validation failed: user store unavailable');
        return fail('user store unavailable', { unavailable: true, audit: { actionDetail: 'user store unavailable', info: e.message, user: req.user, realm: req.realm } });
      }
      if (e instanceof OtpdError) return fail(e.message, { error: e.message, audit: { actionDetail: e.message, user: req.user, realm: req.realm } });
      this.logger.error({ err: e }, 'validation failed');
      return fail('internal error', { audit: { actionDetail: 'internal error', info: (e as Error).name, user: req.user, realm: req.realm } });
    }
  }

  private async run(req: CheckRequest): Promise<CheckOutcome> {
    const now = this.clock.now();
    const policies = this.policies();
    let user: DirectoryUser | null = null;
    let login = '';
    let realm = '';
    if (req.user !== undefined && req.user !== '') {
      const users = this.users();
      if (users) {
        ({ login, realm } = users.splitUser(req.user, req.realm));
        const setrealm = policies.value('authorization', 'setrealm', { login, realm, client: req.client });
        if (typeof setrealm === 'string' && setrealm !== '') realm = setrealm.toLowerCase();
        user = await users.findUser(login, realm);
      } else {
        login = req.user;
        realm = (req.realm ?? '').toLowerCase();
      }
      if (!user) {
        if (this.config.bool('PassOnUserNotFound')) return { ok: true, challenges: [], audit: { user: login, realm, actionDetail: 'user not found, accepted by PassOnUserNotFound' } };
        // the same work a failure of a known account does, so the answer is no oracle (B.2 #9)
        await this.unknownAccount(now, req.pass ?? '');
        return fail('User not found', { audit: { user: login, realm, actionDetail: 'User not found' } });
      }
    }

    // Select tokens. A token authenticates only its owner: with user and serial, the serial
    // must belong to that user; with a serial alone, its owner is the user.
    let tokens: Token[];
    let mismatch: string | undefined;
    if (req.serial !== undefined && req.serial !== '') {
      const t = await this.tokens.repository.bySerial(req.serial);
      tokens = t ? [t] : [];
      if (user && t && !ownedBy(t, user)) {
        tokens = [];
        mismatch = 'serial does not belong to the user';
      } else if (!user && t && t.userId !== '') {
        user = await this.ownerOf(t);
        if (!user) {
          await this.unknownAccount(now, req.pass ?? '');
          return fail('token owner not found', { audit: { serial: t.serial, tokenType: t.type, actionDetail: 'token owner not found' } });
        }
      }
    } else if (user) {
      tokens = await this.tokens.repository.find({ owner: { resolver: user.resolver, userId: user.userId } });
      if (req.entry === 'check_s' && tokens.length !== 1) {
        // spec 1.3.3: check_s with a user uses the user's single token
        mismatch = tokens.length === 0 ? 'No token found!' : 'More than one token found!';
        tokens = [];
      }
    } else {
      return fail('Missing parameter: user or serial');
    }
    if (req.tokenType) tokens = tokens.filter((t) => t.type === canonicalType(req.tokenType!));

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
      return withBase(fail('user is not authorized by the authorization policies', { error: 'user is not authorized (authorize policy)' }));
    }
    const mode = this.otppinMode(subject, realms);

    if (tokens.length === 0 && mismatch) {
      // a try like a wrong password, with the same work: the account's attempt is spent
      const out = fail(mismatch, { audit: { actionDetail: mismatch, serial: req.serial } });
      if (!user) return withBase(out);
      return withBase(await this.guarded(user, now, async (account) => ((await account.reserve()) ? out : account.refused())));
    }
    if (tokens.length === 0) {
      if (!user) {
        // an unknown serial costs what a wrong OTP costs: its existence is no oracle either
        await this.unknownAccount(now, req.pass ?? '');
        return withBase(fail('no token found'));
      }
      if (req.entry === 'check_s') return withBase(fail('No token found!'));
      return withBase(await this.guarded(user, now, (account) => this.noToken(user!, subject, req, account)));
    }
    if (req.pass === undefined && req.entry === 'check_s' && req.challenge !== undefined && tokens.length === 1) {
      // spec 1.3.3: a challenge request without a PIN (policy trigger_sms), for the owner's policies
      const t = tokens[0];
      const handler = this.challengeHandlers.get(t.type);
      if (t.active && t.failCount < t.maxFail && !this.tokenNotAuthorized(t, subject) && handler?.triggerWithoutPin?.(t, subject)) {
        const res = await handler.create({ token: t, user, subject, request: req, now });
        if (res.ok) return withBase({ ok: false, challenges: [res.challenge], audit: { actionDetail: 'challenge created', serial: t.serial, tokenType: t.type } });
        return withBase(fail(res.reason, { audit: { actionDetail: res.reason, serial: t.serial, tokenType: t.type } }));
      }
    }
    if (req.pass === undefined) return withBase(fail("Missing parameter: 'pass'"));
    const pass = req.pass;
    if (!user) return withBase(await this.checkTokens(tokens, null, subject, req, pass, now, mode, undefined));
    return withBase(await this.guarded(user, now, (account) => this.checkTokens(tokens, user, subject, req, pass, now, mode, account)));
  }

  /**
   * Runs one attempt of an account under its failure limit (B.2 #12-#14): refused accounts
   * cost no check and no write; `run` reserves the attempt (itself, or with the token
   * reservations in one commit) before any secret is checked. A success resets the
   * account, a challenge, a replay or an infrastructure error gives the attempt back.
   */
  private async guarded(user: DirectoryUser, now: number, run: (account: AccountReservation) => Promise<CheckOutcome>): Promise<CheckOutcome> {
    const key = accountOf(user);
    const policy = this.attemptPolicy();
    const refusal = await this.attempts.refusal(key, now, policy);
    if (refusal) return this.refusedOutcome(refusal);
    let reserved = false;
    const account: AccountReservation = {
      reserve: async () => (reserved = await this.attempts.reserve(key, now, policy)),
      refused: () => this.refusedOutcome({ kind: 'throttled', failCount: 0, retryAt: now }),
    };
    let out: CheckOutcome;
    try {
      out = await run(account);
    } catch (e) {
      if (reserved) await this.attempts.release(key).catch(() => undefined);
      throw e;
    }
    if (!reserved) return out;
    if (out.ok) await this.attempts.succeeded(key);
    else if (out.challenges.length > 0 || out.unavailable || out.notAGuess) await this.attempts.release(key);
    else await this.attempts.failed(key, now, policy);
    return out;
  }

  /**
   * The work of a failed attempt for an account that does not exist, so "user not found"
   * cannot be told from "wrong password" by its time (B.2 #9): the token and account reads,
   * one token's CPU work, then a reservation round and a settlement round of writes (on one
   * sentinel row).
   */
  private async unknownAccount(now: number, pass: string): Promise<void> {
    await this.tokens.repository.find({ owner: { resolver: '', userId: '\u0000' } });
    this.tokens.decoyCheck(pass, now);
    await this.attempts.decoyAttempt(now, this.attemptPolicy());
  }

  private refusedOutcome(r: AccountRefusal): CheckOutcome {
    const detail = r.kind === 'locked'
      ? `account locked after ${r.failCount} consecutive failures (an administrator resets it)`
      : 'account throttled after consecutive failures: try again later';
    return fail(detail, { error: r.kind === 'locked' ? 'account locked' : 'too many failed attempts: try again later' });
  }

  private attemptPolicy(): AttemptPolicy {
    return {
      delayAfter: this.config.number('AccountFailDelayAfter'),
      baseMs: this.config.number('AccountFailDelayBase') * 1000,
      maxDelayMs: this.config.number('AccountFailDelayMax') * 1000,
      maxFail: this.config.number('AccountMaxFail'),
      maxParallel: this.config.number('AccountMaxParallel'),
    };
  }

  /** The owner of an assigned token, in the first of the token's realms that holds the owner's resolver. */
  private async ownerOf(t: Token): Promise<DirectoryUser | null> {
    const users = this.users();
    if (!users) return null;
    const realmsOfResolver = users.realmsOfResolver(t.resolver);
    const realm = t.realms.find((r) => realmsOfResolver.includes(r)) ?? realmsOfResolver[0];
    if (realm === undefined) return null;
    return users.findById(t.resolver, t.userId, realm);
  }

  /**
   * An empty answer to an out-of-band challenge (RADIUS): asks the token's handler again
   * for the same user, which resends outside the blocking window and reuses the open
   * challenge inside it. Only open, unexpired challenges of this user count; the first
   * factor was checked when the challenge was created.
   */
  async resend(req: { user: string; realm?: string; transactionId: string; client: string }): Promise<CheckOutcome> {
    try {
      const users = this.users();
      if (!users) return fail('User not found');
      const { login, realm } = users.splitUser(req.user, req.realm);
      const user = await users.findUser(login, realm);
      if (!user) return fail('User not found', { audit: { user: login, realm, actionDetail: 'User not found' } });
      const now = this.clock.now();
      const subjectKey = `${user.login}@${user.realm}`;
      const subject: PolicySubject = { login: user.login, realm: user.realm, resolver: user.resolver, client: req.client, userInfo: user.info };
      const open = (await this.challenges.byTransaction(req.transactionId.split('.')[0])).filter((c) => c.status === 'open' && c.expiresAt > now && c.subject === subjectKey);
      const created: ChallengeInfo[] = [];
      for (const c of open) {
        const token = await this.tokens.repository.byId(c.tokenId);
        const handler = token && this.challengeHandlers.get(token.type);
        if (!token || !handler || !token.active || token.failCount >= token.maxFail) continue;
        const res = await handler.create({ token, user, subject, request: { user: req.user, client: req.client, entry: 'radius' }, now });
        if (res.ok) created.push(res.challenge);
      }
      const audit = { user: user.login, realm: user.realm, ...serialsOf(created.map((c) => ({ serial: c.serial, type: c.tokenType }))) };
      if (created.length === 0) return fail('no open challenge to resend', { user, audit: { ...audit, actionDetail: 'no open challenge to resend' } });
      return { ok: false, challenges: created, user, audit: { ...audit, actionDetail: 'challenge resent' } };
    } catch (e) {
      if (e instanceof UserStoreUnavailableError) return fail('user store unavailable', { unavailable: true, audit: { actionDetail: 'user store unavailable', info: e.message } });
      throw e;
    }
  }

  /** spec 2.1 step 5: autoenrollment, PassOnUserNoToken, passthru, passOnNoToken. */
  private async noToken(user: DirectoryUser, subject: PolicySubject, req: CheckRequest, account: AccountReservation): Promise<CheckOutcome> {
    const policies = this.policies();
    // every answer below may check the directory password: it is an attempt of the account
    if (!(await account.reserve())) return account.refused();
    let autoenrollError: string | undefined;
    if (this.noTokenHook && req.pass !== undefined && req.entry !== 'check_s') {
      const out = await this.noTokenHook({ user, subject, request: req, pass: req.pass });
      if (out && (out.ok || out.challenges.length > 0)) return out;
      autoenrollError = out?.error;
    }
    if (this.config.bool('PassOnUserNoToken')) return { ok: true, challenges: [], audit: { actionDetail: 'accepted by PassOnUserNoToken' } };
    if (policies.has('authentication', 'passthru', subject)) {
      const okPw = req.pass !== undefined && req.pass !== '' && (await this.users()!.checkPassword(user, req.pass));
      return okPw
        ? { ok: true, challenges: [], audit: { actionDetail: 'Authenticated against Resolver' } }
        : fail('passthru: wrong user password', { error: autoenrollError });
    }
    if (policies.has('authentication', 'passOnNoToken', subject)) {
      return { ok: true, challenges: [], audit: { actionDetail: 'Authenticated by passOnNoToken policy' } };
    }
    return fail(autoenrollError ?? 'User has no tokens assigned', { error: autoenrollError });
  }

  /**
   * The otppin mode for the subject. An unassigned token in several realms takes the
   * strictest of its realms' modes (1, then 0, then 3 and 2), so no realm is weakened.
   */
  private otppinMode(subject: PolicySubject, realms: string[] = [subject.realm]): 0 | 1 | 2 | 3 {
    const modes = realms.map((realm) => {
      const v = this.policies().value('authentication', 'otppin', { ...subject, realm });
      return v === undefined ? 0 : OTPPIN[String(v)] ?? 0;
    });
    for (const m of [1, 0, 3, 2] as const) if (modes.includes(m)) return m;
    return 0;
  }

  /**
   * authorization `tokentype` (space list, `*` = all) and `serial` (regular expression): a
   * token outside them neither authenticates nor gets a challenge. otpd checks before the OTP,
   * so a refused token's OTP is not used up (LinOTP checks after a success). The reason, or null.
   */
  private tokenNotAuthorized(t: Token, subject: PolicySubject): string | null {
    const policies = this.policies();
    const types = policies.value('authorization', 'tokentype', subject);
    if (typeof types === 'string' && types.trim() !== '') {
      const allowed = types.toLowerCase().split(/[\s,]+/).filter(Boolean).map((x) => (x === '*' ? x : canonicalType(x)));
      if (!allowed.includes('*') && !allowed.includes(t.type)) return 'token type not allowed by the authorization policy';
    }
    const serial = policies.value('authorization', 'serial', subject);
    if (typeof serial === 'string' && serial !== '') {
      let re: RegExp;
      try {
        re = new RegExp(serial);
      } catch {
        return 'serial not allowed by the authorization policy';
      }
      if (!re.test(t.serial)) return 'serial not allowed by the authorization policy';
    }
    return null;
  }

  /** challenge_response policy lists this type (or `*`): PIN only triggers a challenge. */
  private challengeCapable(token: Token, subject: PolicySubject): boolean {
    const type = tokenType(token.type);
    if (type?.mode === 'challenge') return true;
    const v = this.policies().value('authentication', 'challenge_response', subject);
    if (typeof v !== 'string') return false;
    const types = v.toLowerCase().split(/[\s,]+/);
    return types.includes('*') || types.includes(token.type);
  }

  private async checkTokens(
    all: Token[], user: DirectoryUser | null, subject: PolicySubject, req: CheckRequest, pass: string, now: number,
    mode: 0 | 1 | 2 | 3, account: AccountReservation | undefined,
  ): Promise<CheckOutcome> {
    const repo = this.tokens.repository;
    let reason = 'no token found';
    const candidates: Token[] = [];
    const locked: Token[] = [];
    for (const t of all) {
      if (user && t.realms.length > 0 && !t.realms.includes(user.realm)) { reason = 'Realm mismatch for token and user'; continue; }
      if (!tokenType(t.type)) { reason = `unknown token type ${t.type}`; continue; }
      if (!t.active) { reason = 'Token inactive'; continue; }
      const refused = this.tokenNotAuthorized(t, subject);
      if (refused) { reason = refused; continue; }
      // a locked token costs no HMAC and no write (B.2 #15); the reservation below re-checks it
      if (t.failCount >= t.maxFail) { locked.push(t); continue; }
      candidates.push(t);
    }
    // The account's attempt and one attempt per token, reserved in one commit round before any
    // secret is checked (see class comment).
    const [accountOk, ...won] = await Promise.all([account ? account.reserve() : true, ...candidates.map((t) => repo.reserveAttempt(t.id))]);
    const reserved = candidates.filter((_, i) => won[i]);
    if (!accountOk) {
      await repo.releaseAttempt(reserved.map((t) => t.id));
      return account!.refused();
    }
    locked.push(...candidates.filter((_, i) => !won[i]));
    if (reserved.length === 0) {
      // Nothing was checked. A copy of a valid OTP can land here too, while parallel copies hold
      // the token's attempts: counting it against the account would race the winner's reset.
      if (locked.length > 0) return fail('Failcounter exceeded', { notAGuess: true, audit: { actionDetail: 'Failcounter exceeded', ...serialsOf(locked) } });
      return fail(reason, { notAGuess: true, audit: { actionDetail: reason, ...serialsOf(all) } });
    }
    try {
      const out = await this.checkReserved(reserved, user, subject, req, pass, now, mode);
      return out.ok || out.notAGuess || out.challenges.length > 0 ? out : { ...out, fullCheck: true };
    } catch (e) {
      // an infrastructure error (user store, database) spends no attempt
      await repo.releaseAttempt(reserved.map((t) => t.id)).catch(() => undefined);
      throw e;
    }
  }

  private async checkReserved(
    reserved: Token[], user: DirectoryUser | null, subject: PolicySubject, req: CheckRequest, pass: string, now: number, mode: 0 | 1 | 2 | 3,
  ): Promise<CheckOutcome> {
    const repo = this.tokens.repository;
    const tid = req.transactionId?.split('.')[0];

    const passwordMemo = new Map<string, Promise<boolean>>();
    const storePassword = (pin: string): Promise<boolean> => {
      if (!user || pin === '') return Promise.resolve(false);
      let p = passwordMemo.get(pin);
      if (!p) passwordMemo.set(pin, (p = this.users()!.checkPassword(user, pin)));
      return p;
    };
    const pinOk = async (t: Token, pin: string): Promise<boolean> => {
      // Autoenrolled tokens (tokeninfo pin_source=store, no PIN set) take the user-store password as PIN.
      if (mode === 0) return t.info.pin_source === 'store' && t.pinHash === '' ? storePassword(pin) : this.tokens.checkPin(t, pin);
      if (mode === 1) return storePassword(pin);
      // spass has nothing but its PIN: "only the OTP" or "ignore the PIN" must not make it an open door
      if (t.type === 'spass') return this.tokens.checkPin(t, pin);
      return mode === 2 ? pin === '' : true;
    };

    const classified: Classified[] = [];
    for (const t of reserved) classified.push(await this.classify(t, user, subject, pass, tid, now, mode, pinOk));

    const valid = classified.filter((c): c is Extract<Classified, { kind: 'valid' }> => c.kind === 'valid');
    const involved = reserved.map((t) => t.id);
    if (valid.length > 1) {
      return fail('multiple token match error', { audit: { actionDetail: 'Multiple valid tokens found!', ...serialsOf(valid.map((v) => v.token)) } });
    }
    if (valid.length === 1) {
      const v = valid[0];
      // A challenge answer is single use: only the request that closes the challenge may succeed.
      // A parallel copy of the value just accepted lost the race: a replay, not a guess (no attempt spent).
      if (v.challenge && !(await this.challenges.close(v.challenge.id, true))) {
        await repo.releaseAttempt(involved);
        return fail('wrong otp value', { notAGuess: true, audit: { actionDetail: 'wrong otp value (challenge already answered)', serial: v.token.serial, tokenType: v.token.type } });
      }
      const won = await repo.consume(v.token.id, v.matched, v.next, now);
      if (!won) {
        await repo.releaseAttempt(involved);
        return fail('wrong otp value', { notAGuess: true, audit: { actionDetail: 'wrong otp value (already used)', serial: v.token.serial, tokenType: v.token.type } });
      }
      // locked tokens were skipped, not involved: a success on another token does not unlock them
      await repo.resetFail(involved.filter((id) => id !== v.token.id));
      await this.challenges.deleteExpired(involved, now);
      const handler = v.challenge ? this.challengeHandlers.get(v.token.type) : undefined;
      if (handler?.succeeded) await handler.succeeded({ token: v.token, user, subject, request: req, now });
      const who = user ? `user '${user.login}'@'${user.realm}' successfully authenticated.` : `token ${v.token.serial} successfully authenticated.`;
      return { ok: true, challenges: [], audit: { actionDetail: who, serial: v.token.serial, tokenType: v.token.type } };
    }
    const triggering = classified.filter((c) => c.kind === 'challenge');
    if (triggering.length > 0) {
      await repo.releaseAttempt(involved);
      const created: ChallengeInfo[] = [];
      let error: string | undefined;
      for (const c of triggering) {
        const res = await this.createChallenge(c.token, user, subject, req, now);
        if (res.ok) created.push(res.challenge);
        else error = res.reason;
      }
      if (created.length === 0) return fail(error ?? 'challenge could not be created', { error, audit: { actionDetail: error ?? 'challenge failed', ...serialsOf(triggering.map((c) => c.token)) } });
      return { ok: false, challenges: created, audit: { actionDetail: 'challenge created', ...serialsOf(created.map((c) => ({ serial: c.serial, type: c.tokenType }))) } };
    }
    const pinMatching = classified.filter((c): c is Extract<Classified, { kind: 'pin' }> => c.kind === 'pin');
    const maxAttempts = this.config.number('ChallengeMaxAttempts');
    if (pinMatching.length > 0) {
      await repo.releaseAttempt(involved.filter((id) => !pinMatching.some((p) => p.token.id === id)));
      for (const p of pinMatching) for (const ch of p.challenges) await this.challenges.recordFailure(ch.id, maxAttempts);
      return fail('wrong otp value', { audit: { actionDetail: 'wrong otp value', ...serialsOf(pinMatching.map((p) => p.token)) } });
    }
    for (const c of classified) if (c.kind === 'invalid') for (const ch of c.challenges) await this.challenges.recordFailure(ch.id, maxAttempts);
    const detail = mode === 1 ? 'wrong user password -1' : 'wrong otp pin -1';
    return fail(detail, { audit: { actionDetail: detail, ...serialsOf(reserved) } });
  }

  private async classify(
    t: Token, user: DirectoryUser | null, subject: PolicySubject, pass: string, tid: string | undefined,
    now: number, mode: 0 | 1 | 2 | 3, pinOk: (t: Token, pin: string) => Promise<boolean>,
  ): Promise<Classified> {
    const type = tokenType(t.type)!;
    const handler = this.challengeHandlers.get(t.type);
    const capable = this.challengeCapable(t, subject);
    // An answer to a challenge: the pass is the bare OTP (or PIN+OTP).
    const open = capable ? await this.challenges.open(t.id, now, tid) : [];
    const subjectKey = user ? `${user.login}@${user.realm}` : '';
    const mine = open.filter((c) => c.subject === subjectKey);
    if (tid !== undefined && capable) {
      if (mine.length === 0) return { kind: 'invalid', token: t, challenges: [] };
      // The bare OTP, or PIN + OTP when the pass is longer: one reading per pass, so the
      // OTP window is computed once (B.2 #5).
      if (mode === 2 || pass.length <= this.otpLength(t)) {
        return (await this.answer(t, mine, pass, now, handler)) ?? { kind: 'invalid', token: t, challenges: mine };
      }
      const split = this.split(t, pass, mode);
      if (await pinOk(t, split.pin)) {
        return (await this.answer(t, mine, split.otp, now, handler)) ?? { kind: 'pin', token: t, challenges: mine };
      }
      return { kind: 'invalid', token: t, challenges: mine };
    }
    if (type.mode === 'challenge') {
      // challenge-only token: PIN+OTP against its open challenges, or PIN alone triggers one
      const split = this.split(t, pass, mode);
      if (mine.length > 0 && split.otp !== '') {
        const m = await this.answer(t, mine, split.otp, now, handler);
        if (m && (await pinOk(t, split.pin))) return m;
        if (m) return { kind: 'invalid', token: t, challenges: mine };
      }
      // under otppin=2 there is no PIN: whatever is not the code asks for one (LinOTP's only_otp)
      if (await pinOk(t, mode === 2 ? '' : pass)) return { kind: 'challenge', token: t };
      if (mine.length > 0 && split.otp !== '' && (await pinOk(t, split.pin))) return { kind: 'pin', token: t, challenges: mine };
      return { kind: 'invalid', token: t, challenges: mine };
    }
    // authenticate(): PIN + OTP in one step
    const split = this.split(t, pass, mode);
    if (mode === 1) {
      // OTP first, so a wrong OTP costs no directory bind (spec 2.4)
      const match = this.matchOtp(t, split.otp, now);
      if (match && (await pinOk(t, split.pin))) return { kind: 'valid', token: t, ...match };
      if (capable && (await pinOk(t, pass))) return { kind: 'challenge', token: t };
      if (match) return { kind: 'invalid', token: t, challenges: [] };
      return (await pinOk(t, split.pin)) ? { kind: 'pin', token: t, challenges: [] } : { kind: 'invalid', token: t, challenges: [] };
    }
    const pinMatches = await pinOk(t, split.pin);
    // the OTP is checked whether or not the PIN matched: no timing difference tells which was wrong
    const match = this.matchOtp(t, split.otp, now);
    if (pinMatches && match) return { kind: 'valid', token: t, ...match };
    if (capable && (await pinOk(t, mode === 2 ? '' : pass)) && (mode !== 2 || pass === '')) return { kind: 'challenge', token: t };
    if (pinMatches) return { kind: 'pin', token: t, challenges: [] };
    return { kind: 'invalid', token: t, challenges: [] };
  }

  /**
   * Does `otp` match the token? `matched`/`next` feed the conditional single-use write
   * (`counter <= matched`). Tokens without an OTP (spass, pw) match an empty OTP and keep
   * their counter, so the write always holds for them.
   */
  private matchOtp(t: Token, otp: string, now: number): { matched: number; next: number } | null {
    const type = tokenType(t.type)!;
    if (!type.hasOtp) return otp === '' ? { matched: t.counter, next: t.counter } : null;
    const m = type.verify(t, this.tokens.secretOf(t), otp, now);
    if (!m) return null;
    // a static value (pw) keeps the counter; an OTP moves it past the matched value
    return m.nextCounter > t.counter ? { matched: m.nextCounter - 1, next: m.nextCounter } : { matched: t.counter, next: t.counter };
  }

  /** Checks `otp` against open challenges; the first that matches wins. An OTP window is computed once. */
  private async answer(t: Token, open: Challenge[], otp: string, now: number, handler: ChallengeHandler | undefined): Promise<Classified | null> {
    if (handler) {
      for (const ch of open) if (handler.matches(t, ch, otp)) return { kind: 'valid', token: t, matched: t.counter, next: t.counter, challenge: ch };
      return null;
    }
    const match = open.length > 0 ? this.matchOtp(t, otp, now) : null;
    return match ? { kind: 'valid', token: t, ...match, challenge: open[0] } : null;
  }

  private otpLength(t: Token): number {
    return tokenType(t.type)!.mode === 'challenge' ? Number(t.info.otplen ?? t.otplen) : t.otplen;
  }

  /** spec 2.4: PIN first (PrependPin) or OTP first; otppin=2 means the whole pass is the OTP. */
  private split(t: Token, pass: string, mode: 0 | 1 | 2 | 3): { pin: string; otp: string } {
    const type = tokenType(t.type)!;
    if (!type.hasOtp && type.mode !== 'challenge') return { pin: pass, otp: '' };
    const len = this.otpLength(t);
    if (mode === 2) return { pin: '', otp: pass };
    if (pass.length < len) return { pin: pass, otp: '' };
    const prepend = this.config.bool('PrependPin');
    return prepend ? { pin: pass.slice(0, pass.length - len), otp: pass.slice(pass.length - len) } : { pin: pass.slice(len), otp: pass.slice(0, len) };
  }

  private async createChallenge(token: Token, user: DirectoryUser | null, subject: PolicySubject, req: CheckRequest, now: number): Promise<{ ok: true; challenge: ChallengeInfo } | { ok: false; reason: string }> {
    const handler = this.challengeHandlers.get(token.type);
    if (handler) return handler.create({ token, user, subject, request: req, now });
    const transactionId = this.challenges.newTransactionId(this.config.number('TransactionIdLength'));
    const validity = this.config.number('DefaultChallengeValidityTime');
    const prompt = this.config.string(`${token.type.toUpperCase()}_CHALLENGE_PROMPT`) || (token.type === 'hmac' ? 'Please enter your otp value: ' : 'Otp:');
    const expiresAt = now + validity * 1000;
    await this.challenges.insert({
      transactionId, tokenId: token.id, serial: token.serial, subject: user ? `${user.login}@${user.realm}` : '', otpHash: '', counter: -1,
      message: prompt, client: req.client, createdAt: now, expiresAt, data: {},
    });
    return { ok: true, challenge: { transactionId, message: prompt, serial: token.serial, tokenType: token.type, description: token.description, expiresAt } };
  }

  /** spec 1.3.1: the `detail` of a value-false answer that triggered challenges. */
  static challengeDetail(challenges: ChallengeInfo[]): Record<string, unknown> | undefined {
    if (challenges.length === 0) return undefined;
    const one = (c: ChallengeInfo) => ({
      transactionid: c.transactionId,
      message: c.message,
      ...(c.state !== undefined ? { state: c.state } : {}),
      ...(c.info !== undefined ? { info: c.info } : {}),
      linotp_tokenserial: c.serial,
      linotp_tokentype: c.tokenType,
      linotp_tokendescription: c.description,
    });
    if (challenges.length === 1) return one(challenges[0]);
    return {
      challenges: Object.fromEntries(challenges.map((c) => [c.serial, one(c)])),
      transactionid: challenges[0].transactionId.slice(0, 14),
      message: 'Multiple challenges submitted.',
    };
  }
}

function serialsOf(tokens: { serial: string; type: string }[]): { serial: string; tokenType: string } {
  return { serial: tokens.map((t) => t.serial).join(','), tokenType: [...new Set(tokens.map((t) => t.type))].join(',') };
}

/** A token is the user's own: assigned to this directory user (resolver + user id). */
function ownedBy(t: Token, user: DirectoryUser): boolean {
  return t.userId !== '' && t.userId === user.userId && t.resolver === user.resolver;
}
