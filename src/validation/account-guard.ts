import type { ConfigService } from '../config/service.ts';
import type { TokenService } from '../enrollment/tokens.ts';
import { accountOf, type AccountAttempts, type AccountRefusal, type AttemptPolicy } from './account-attempts.ts';
import { fail, type CheckOutcome } from './outcome.ts';
import type { DirectoryUser } from './ports.ts';
import type { Logger } from 'pino';

/** The attempt of one account, reserved by the step that checks a secret (see {@link AccountGuard.guarded}). */
export interface AccountReservation {
  /** Counts the attempt in advance; false = the account is refused (answer `refused`). */
  reserve(): Promise<boolean>;
  refused(): CheckOutcome;
}

/** The answer to an account inside a refusal window or at its hard limit. */
export function refusedOutcome(r: AccountRefusal): CheckOutcome {
  return r.kind === 'locked'
    ? fail('accountLocked', `account locked after ${r.failCount} consecutive failures (an administrator resets it)`, { error: 'account locked' })
    : fail('accountThrottled', 'account throttled after consecutive failures: try again later', { error: 'too many failed attempts: try again later' });
}

/** The attempt policy from runtime config (bounds and defaults: config/catalogue.ts). */
export function attemptPolicy(config: Pick<ConfigService, 'number'>): AttemptPolicy {
  return {
    delayAfter: config.number('AccountFailDelayAfter'),
    baseMs: config.number('AccountFailDelayBase') * 1000,
    maxDelayMs: config.number('AccountFailDelayMax') * 1000,
    maxFail: config.number('AccountMaxFail'),
    maxParallel: config.number('AccountMaxParallel'),
  };
}

/**
 * Failed attempts per account (B.2 #12-#14) around one validation: refused accounts cost
 * no check and no write; the attempt is reserved before any secret is checked and settled
 * by the outcome. Unknown accounts get the same work (B.2 #9).
 */
export class AccountGuard {
  constructor(
    private readonly attempts: AccountAttempts,
    private readonly tokens: TokenService,
    private readonly config: ConfigService,
    /** Where a failed reset after a success goes (the success stands). @default undefined */
    private readonly logger?: Pick<Logger, 'warn'>,
  ) {}

  /**
   * Runs one attempt of an account under its failure limit: `run` reserves the attempt
   * (itself, or with the token reservations in one commit) before any secret is checked.
   * A success resets the account, a challenge, a replay or an infrastructure error gives
   * the attempt back, any other failure counts.
   */
  async guarded(user: DirectoryUser, now: number, run: (account: AccountReservation) => Promise<CheckOutcome>): Promise<CheckOutcome> {
    const key = accountOf(user);
    const policy = attemptPolicy(this.config);
    const refusal = await this.attempts.refusal(key, now, policy);
    if (refusal) return refusedOutcome(refusal);
    let reserved = false;
    const account: AccountReservation = {
      reserve: async () => (reserved = await this.attempts.reserve(key, now, policy)),
      refused: () => refusedOutcome({ kind: 'throttled', failCount: 0, retryAt: now }),
    };
    let out: CheckOutcome;
    try {
      out = await run(account);
    } catch (e) {
      if (reserved) await this.attempts.release(key).catch(() => undefined);
      throw e;
    }
    if (!reserved) return out;
    if (out.ok) {
      // the code is used already (committed on PostgreSQL and MariaDB): a failed reset of the
      // account's failures leaves them counted, and the success stands rather than ERR2008
      await this.attempts.succeeded(key).catch((e: unknown) => this.logger?.warn({ err: e }, 'login accepted; the account\'s failures not reset'));
    } else if (out.challenges.length > 0 || out.unavailable || out.notAGuess) await this.attempts.release(key);
    else await this.attempts.failed(key, now, policy);
    return out;
  }

  /**
   * The work of a failed attempt for an account that does not exist, so "user not found"
   * cannot be told from "wrong password" by its time (B.2 #9): the token and account reads,
   * one token's CPU work, then a reservation round and a settlement round of writes (on one
   * sentinel row).
   */
  async unknownAccount(now: number, pass: string): Promise<void> {
    await this.tokens.repository.find({ owner: { resolver: '', userId: '\u0000' } });
    this.tokens.decoyCheck(pass, now);
    await this.attempts.decoyAttempt(now, attemptPolicy(this.config));
  }
}
