import type { UserDirectory } from '../users/directory.ts';
import type { DirectoryUser } from '../users/types.ts';
import type { Clock } from '../util/clock.ts';
import type { AccountGuard } from '../validation/account-guard.ts';
import { FailureTimes } from '../validation/failure-times.ts';
import { accept, fail, type CheckOutcome } from '../validation/outcome.ts';

export interface LoginRequest {
  login: string;
  realm: string;
  password: string;
  client: string;
}

/** How a `/userservice/login` ended: `user` only when the password was right. */
export type LoginOutcome = { outcome: CheckOutcome; user?: DirectoryUser };

/**
 * The user-store password check of `/userservice/login`, under the same per-account attempt
 * limit as `/validate/check` (validation/account-guard.ts): a throttled or locked account is
 * refused before its password is checked, a wrong password spends an attempt, an unknown user
 * gets the same answer and the decoy work of an unknown account.
 */
export class UserLogin {
  private readonly failureTimes = new FailureTimes();

  constructor(private readonly deps: { users: UserDirectory; guard: AccountGuard; clock: Clock }) {}

  /** LinOTP `_identify_user`: the named realm if it exists, else the default realm; the directory splits `login@realm` when the login is not found there. */
  async identify(login: string, realm: string): Promise<DirectoryUser | null> {
    const users = this.deps.users;
    const named = realm.trim().toLowerCase();
    // a realm that exists is the only one asked (a user of realm A is not found through B's name)
    const target = named && users.realmExists(named) ? named : (users.defaultRealm() ?? '');
    return users.findUser(login, target);
  }

  /**
   * With `secondFactorFollows` (selfservice mfa_login) a right password is not yet a success
   * for the account's failure count: its attempt is given back, and only the second factor
   * resets the count, so a known password does not buy fresh OTP guesses.
   */
  async checkPassword(req: LoginRequest, opts: { secondFactorFollows?: (user: DirectoryUser) => boolean } = {}): Promise<LoginOutcome> {
    const started = performance.now();
    const out = await this.check(req, opts);
    // A refusal answers no sooner than a wrong password usually takes (B.2 #9): an unknown user
    // or a throttled account is not told apart by the time the directory's bind did not take.
    if (!out.user && !out.outcome.unavailable) {
      const elapsed = performance.now() - started;
      if (out.outcome.reason === 'wrongPassword') this.failureTimes.record(elapsed);
      const wait = this.failureTimes.floor() - elapsed;
      if (wait >= 0.5) await new Promise((resolve) => setTimeout(resolve, Math.round(wait)));
    }
    return out;
  }

  private async check(req: LoginRequest, opts: { secondFactorFollows?: (user: DirectoryUser) => boolean }): Promise<LoginOutcome> {
    const now = this.deps.clock.now();
    const user = await this.identify(req.login, req.realm);
    if (!user) {
      await this.deps.guard.unknownAccount(now, req.password);
      return { outcome: fail('userNotFound', 'user not found') };
    }
    const audit = { user: user.login, realm: user.realm };
    let good = false;
    const outcome = await this.deps.guard.guarded(user, now, async (account) => {
      if (!(await account.reserve())) return account.refused();
      good = await this.deps.users.checkPassword(user, req.password);
      if (!good) return fail('wrongPassword', 'wrong user-store password', { audit });
      const actionDetail = 'user-store password verified';
      return opts.secondFactorFollows?.(user)
        ? fail('credentialsVerified', actionDetail, { notAGuess: true, audit: { ...audit, actionDetail } })
        : accept('authenticated', { ...audit, actionDetail });
    });
    return good && (outcome.ok || outcome.reason === 'credentialsVerified') ? { outcome, user } : { outcome };
  }
}
