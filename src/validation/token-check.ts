import type { ConfigService } from '../config/service.ts';
import type { TokenService } from '../enrollment/tokens.ts';
import { requireTokenType } from '../tokens/registry.ts';
import type { Token } from '../tokens/types.ts';
import type { Metrics } from '../util/metrics.ts';
import type { Logger } from 'pino';
import { usageLimits } from '../tokens/usage.ts';
import type { AccountReservation } from './account-guard.ts';
import type { ChallengeRepository } from './challenges.ts';
import { classifyWith, type Classification, type PinCheck } from './classify.ts';
import { planFinish } from './finish-plan.ts';
import { fail, serialsOf, type ChallengeInfo, type CheckOutcome, type CheckRequest } from './outcome.ts';
import { challengeCapable } from './policies.ts';
import type { ChallengeHandler, DirectoryUser, PolicyPort, PolicySubject, UserPort } from './ports.ts';
import { screenTokens } from './select.ts';
import type { Reason } from './reasons.ts';
import type { OtpPinMode } from './split.ts';

export interface TokenCheckDeps {
  tokens: TokenService;
  challenges: ChallengeRepository;
  config: ConfigService;
  users: UserPort;
  policies: PolicyPort;
  /** By token type (sms, email). */
  challengeHandlers: ReadonlyMap<string, ChallengeHandler>;
  /** Challenges created here and answers to open challenges are counted. @default undefined */
  metrics?: Metrics;
  /** Where a failed write after a success goes (the success stands). @default undefined */
  logger?: Pick<Logger, 'warn'>;
}

/** One request's tokens and what it knows about them by the time secrets are checked. */
export interface TokenCheckInput {
  tokens: Token[];
  user: DirectoryUser | null;
  subject: PolicySubject;
  request: CheckRequest;
  pass: string;
  now: number;
  mode: OtpPinMode;
  /** The account's attempt, reserved in the same round as the tokens' (none without a user). */
  account?: AccountReservation;
}

/**
 * Checks a pass against a request's tokens: screen, reserve, classify each token, then
 * finish with conditional writes (spec 2.2, 2.3).
 *
 * Lockout under concurrency: before an OTP is checked, each candidate token reserves one
 * attempt (`fail_count + 1 WHERE fail_count < max_fail`), so a burst never buys more
 * guesses than MaxFail allows. A success resets the count; a triggered challenge, or a
 * token that did not match the PIN while another did, gets its reservation back.
 */
export class TokenCheck {
  constructor(private readonly deps: TokenCheckDeps) {}

  async check(input: TokenCheckInput): Promise<CheckOutcome> {
    const { tokens: all, user, subject, account } = input;
    const repo = this.deps.tokens.repository;
    const { candidates, locked, skipped } = screenTokens(all, user, this.deps.policies, subject, input.now);
    // Every token locked, disabled or refused: nothing will be checked, so no attempt is
    // reserved (no write, no HMAC): a cheap refusal.
    if (candidates.length === 0) return this.nothingChecked(locked, skipped, all);
    // The account's attempt and one attempt per token, reserved in one commit round before any
    // secret is checked.
    const [accountOk, ...won] = await Promise.all([account ? account.reserve() : true, ...candidates.map((t) => repo.reserveAttempt(t.id, usageLimits(t).authMax))]);
    const reserved = candidates.filter((_, i) => won[i]);
    if (account && !accountOk) {
      await repo.releaseAttempt(reserved.map((t) => t.id));
      return account.refused();
    }
    locked.push(...candidates.filter((_, i) => !won[i]));
    // Nothing was checked. A copy of a valid OTP can land here too, while parallel copies hold
    // the token's attempts: counting it against the account would race the winner's reset.
    if (reserved.length === 0) return this.nothingChecked(locked, skipped, all);
    try {
      const out = await this.checkReserved({ ...input, tokens: reserved });
      return out.ok || out.notAGuess || out.challenges.length > 0 ? out : { ...out, fullCheck: true };
    } catch (e) {
      // an infrastructure error (user store, database) spends no attempt
      await repo.releaseAttempt(reserved.map((t) => t.id)).catch(() => undefined);
      throw e;
    }
  }

  /** No token's secret was checked: no guess (the account's attempt, if reserved, is given back). */
  private nothingChecked(locked: Token[], skipped: { reason: Reason; detail: string }, all: Token[]): CheckOutcome {
    if (locked.length > 0) return fail('tokenLocked', 'Failcounter exceeded', { notAGuess: true, audit: serialsOf(locked) });
    return fail(skipped.reason, skipped.detail, { notAGuess: true, audit: serialsOf(all) });
  }

  private async checkReserved(input: TokenCheckInput): Promise<CheckOutcome> {
    const { tokens: reserved, user, subject, request, now, mode } = input;
    const repo = this.deps.tokens.repository;
    const classified: Classification[] = [];
    const check = this.firstFactorChecker(user);
    for (const t of reserved) classified.push(await this.classifyToken(t, input, check));

    const plan = planFinish(classified, mode);
    const involved = reserved.map((t) => t.id);
    switch (plan.kind) {
      case 'ambiguous':
        return fail('multipleMatches', 'Multiple valid tokens found!', { audit: serialsOf(plan.valid.map((v) => v.token)) });
      case 'success': {
        const v = plan.valid;
        const audit = { serial: v.token.serial, tokenType: v.token.type };
        // A challenge answer is single use: only the request that closes the challenge may succeed.
        // A parallel copy of the value just accepted lost the race: a replay, not a guess (no attempt spent).
        if (v.challenge && !(await this.deps.challenges.close(v.challenge.id, true))) {
          await repo.releaseAttempt(involved);
          return fail('challengeAlreadyAnswered', 'wrong otp value (challenge already answered)', { notAGuess: true, audit });
        }
        if (v.challenge) this.deps.metrics?.challengeAnswered(v.token.type, 'valid');
        if (!(await repo.consume(v.token.id, v.matched, v.next, now, usageLimits(v.token).successMax))) {
          await repo.releaseAttempt(involved);
          return fail('replay', 'wrong otp value (already used)', { notAGuess: true, audit });
        }
        // The code is used from here on: on PostgreSQL and MariaDB the write above is committed
        // (on SQLite the request's unit of work fails as a whole when its group does). What
        // follows is housekeeping; its failure (the database going away mid-request) must not
        // answer the accepted code as ERR2008, whose retry is then refused as a replay
        // (test/faults/database-restart.test.ts).
        try {
          // locked tokens were skipped, not involved: a success on another token does not unlock them
          await repo.resetFail(involved.filter((id) => id !== v.token.id));
          await this.deps.challenges.deleteExpired(involved, now);
          const handler = v.challenge ? this.deps.challengeHandlers.get(v.token.type) : undefined;
          if (handler?.succeeded) await handler.succeeded({ token: v.token, user, subject, request, now });
        } catch (e) {
          this.deps.logger?.warn({ err: e, serial: v.token.serial }, 'code accepted; a write after it failed (fail counters of other tokens, expired challenges)');
        }
        const who = user ? `user '${user.login}'@'${user.realm}' successfully authenticated.` : `token ${v.token.serial} successfully authenticated.`;
        return { ok: true, reason: 'authenticated', challenges: [], audit: { actionDetail: who, ...audit } };
      }
      case 'challenge': {
        await repo.releaseAttempt(involved);
        const created: ChallengeInfo[] = [];
        let error: string | undefined;
        for (const t of plan.tokens) {
          const res = await this.createChallenge(t, user, subject, request, now);
          if (res.ok) created.push(res.challenge);
          else error = res.reason;
        }
        if (created.length === 0) return fail('challengeFailed', error ?? 'challenge could not be created', { error, notSent: true, audit: { actionDetail: error ?? 'challenge failed', ...serialsOf(plan.tokens) } });
        return { ok: false, reason: 'challengeCreated', challenges: created, audit: { actionDetail: 'challenge created', ...serialsOf(created.map((c) => ({ serial: c.serial, type: c.tokenType }))) } };
      }
      case 'wrongOtp': {
        await repo.releaseAttempt(involved.filter((id) => !plan.tokens.some((t) => t.id === id)));
        await this.recordChallengeFailures(plan.challenges, reserved);
        return fail('wrongOtp', 'wrong otp value', { audit: serialsOf(plan.tokens) });
      }
      case 'wrongFirstFactor':
        await repo.releaseAttempt(involved.filter((id) => !plan.compared.some((t) => t.id === id)));
        await this.recordChallengeFailures(plan.challenges, reserved);
        return fail(plan.reason, plan.detail, { audit: serialsOf(plan.compared) });
      case 'replay':
        // e.g. a parallel copy of a login that arrives after the winner finished
        await repo.releaseAttempt(involved);
        return fail('replay', 'wrong otp value (already used)', { notAGuess: true, audit: serialsOf(plan.tokens) });
      case 'notOpen':
        // e.g. a copy of an answer that arrives after the winner closed the challenge
        await repo.releaseAttempt(involved);
        return fail('challengeNotOpen', 'wrong otp value (no open challenge for this transaction)', { notAGuess: true, audit: serialsOf(plan.tokens) });
    }
  }

  /** The classify step for one token, with its open challenges read first (only where a challenge can be answered). */
  private async classifyToken(t: Token, input: TokenCheckInput, check: (q: PinCheck) => Promise<boolean>): Promise<Classification> {
    const { user, subject, request, pass, now, mode } = input;
    const handler = this.deps.challengeHandlers.get(t.type);
    const capable = challengeCapable(this.deps.policies, t, subject);
    const tid = request.transactionId?.split('.')[0];
    // An answer to a challenge: the pass is the bare OTP (or PIN+OTP).
    const open = capable ? await this.deps.challenges.open(t.id, now, tid) : [];
    const subjectKey = user ? `${user.login}@${user.realm}` : '';
    // opened once per token and request: a wrong OTP checks it twice (the window, then the value accepted last)
    let seed: Buffer | undefined;
    return classifyWith({
      token: t, type: requireTokenType(t.type), pass, mode, now,
      prependPin: this.deps.config.bool('PrependPin'),
      hasUser: user !== null,
      challengeCapable: capable,
      answersTransaction: tid !== undefined,
      openChallenges: open.filter((c) => c.subject === subjectKey),
      seed: () => (seed ??= this.deps.tokens.secretOf(t)),
      matchesChallenge: handler && ((ch, otp) => handler.matches(t, ch, otp)),
    }, (q) => (q.against === 'tokenPin' ? this.deps.tokens.checkPinUpgrading(t, q.pin) : check(q)));
  }

  /** The user-store password checks of one request, each asked once (spec 2.4: memoised per request). */
  private firstFactorChecker(user: DirectoryUser | null): (q: PinCheck) => Promise<boolean> {
    const memo = new Map<string, Promise<boolean>>();
    return (q) => {
      if (!user) return Promise.resolve(false);
      let p = memo.get(q.pin);
      if (!p) memo.set(q.pin, (p = this.deps.users.checkPassword(user, q.pin)));
      return p;
    };
  }

  /** Wrong answers to open challenges; `tokens` name the challenges' token types for the metrics. */
  private async recordChallengeFailures(challenges: { id: number; tokenId: number }[], tokens: Token[]): Promise<void> {
    const maxAttempts = this.deps.config.number('ChallengeMaxAttempts');
    for (const ch of challenges) {
      await this.deps.challenges.recordFailure(ch.id, maxAttempts);
      this.deps.metrics?.challengeAnswered(tokens.find((t) => t.id === ch.tokenId)?.type ?? 'unknown', 'wrong');
    }
  }

  /** A challenge for a token: its handler's (sms, email), or a prompt for the token's own OTP (challenge_response). */
  private async createChallenge(token: Token, user: DirectoryUser | null, subject: PolicySubject, req: CheckRequest, now: number): Promise<{ ok: true; challenge: ChallengeInfo } | { ok: false; reason: string }> {
    const handler = this.deps.challengeHandlers.get(token.type);
    if (handler) return handler.create({ token, user, subject, request: req, now });
    const config = this.deps.config;
    const transactionId = this.deps.challenges.newTransactionId(config.number('TransactionIdLength'));
    const validity = config.number('DefaultChallengeValidityTime');
    const prompt = config.string(`${token.type.toUpperCase()}_CHALLENGE_PROMPT`) || (token.type === 'hmac' ? 'Please enter your otp value: ' : 'Otp:');
    const expiresAt = now + validity * 1000;
    await this.deps.challenges.insert({
      transactionId, tokenId: token.id, serial: token.serial, subject: user ? `${user.login}@${user.realm}` : '', otpHash: '', counter: -1,
      message: prompt, client: req.client, createdAt: now, expiresAt, data: {},
    });
    this.deps.metrics?.challengeCreated(token.type);
    return { ok: true, challenge: { transactionId, message: prompt, serial: token.serial, tokenType: token.type, description: token.description, expiresAt } };
  }
}
